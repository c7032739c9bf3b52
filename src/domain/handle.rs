//! Local names and `@name@host` handles.

/// Local group and user names: lowercase ASCII letters, digits, `_` and `-`,
/// 1–64 characters, starting and ending with a letter or digit. No look-alike
/// letters from other scripts can get in.
pub fn validate_local_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a name has 1 to 64 characters".into());
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if !name.chars().all(ok_char) {
        return Err(format!(
            "'{name}' may contain only lowercase letters a-z, digits, '_' and '-'"
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c != '-');
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err("a name cannot start or end with '-'".into());
    }
    Ok(())
}

/// A handle as typed by a user: `name`, `@name`, `name@host` or `@name@host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub name: String,
    /// None for a local name.
    pub host: Option<String>,
}

impl Handle {
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let s = s.strip_prefix('@').unwrap_or(s);
        let s = s.strip_prefix("acct:").unwrap_or(s);
        let (name, host) = match s.split_once('@') {
            Some((n, h)) => (n, Some(h)),
            None => (s, None),
        };
        if name.is_empty() || name.len() > 256 || name.contains(['/', '?', '#', ' ']) {
            return Err(format!("'{input}' is not a valid handle"));
        }
        let host = match host {
            None => None,
            Some(h) => {
                let h = h.trim_end_matches('.').to_ascii_lowercase();
                let valid = !h.is_empty()
                    && h.len() <= 255
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
                if !valid {
                    return Err(format!("'{input}' has an invalid host"));
                }
                Some(h)
            }
        };
        Ok(Handle {
            name: name.to_lowercase(),
            host,
        })
    }

    /// True when the handle names this instance (no host, or our own domain).
    pub fn is_local(&self, our_domain: &str) -> bool {
        self.host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(our_domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names() {
        assert!(validate_local_name("ms-support").is_ok());
        assert!(validate_local_name("alice_2").is_ok());
        assert!(validate_local_name("").is_err());
        assert!(validate_local_name("Alice").is_err());
        assert!(validate_local_name("-x").is_err());
        assert!(validate_local_name("x-").is_err());
        // Cyrillic 'а' looks like Latin 'a'.
        assert!(validate_local_name("diаbetes").is_err());
        assert!(validate_local_name(&"a".repeat(65)).is_err());
        assert!(validate_local_name("a b").is_err());
    }

    #[test]
    fn handles() {
        let h = Handle::parse("@MS-Support@Kindred.Example.").expect("valid");
        assert_eq!(h.name, "ms-support");
        assert_eq!(h.host.as_deref(), Some("kindred.example"));
        assert!(!h.is_local("other.example"));
        assert!(h.is_local("kindred.example"));
        let h = Handle::parse("epilepsy").expect("valid");
        assert!(h.host.is_none() && h.is_local("x"));
        assert_eq!(
            Handle::parse("acct:a@localhost:8080")
                .expect("valid")
                .host
                .as_deref(),
            Some("localhost:8080")
        );
        assert!(Handle::parse("@").is_err());
        assert!(Handle::parse("a@b/c").is_err());
        assert!(Handle::parse("a@").is_err());
        assert!(Handle::parse("a/b").is_err());
    }
}
