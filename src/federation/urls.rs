//! The URLs of this instance's actors, objects and activities, in one place.

use url::Url;

#[derive(Debug, Clone)]
pub struct Urls {
    base: Url,
}

impl Urls {
    /// `scheme` is "http" only in dev mode.
    pub fn new(scheme: &str, domain: &str) -> Result<Self, url::ParseError> {
        Ok(Urls {
            base: Url::parse(&format!("{scheme}://{domain}/"))?,
        })
    }

    fn join(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        u.set_path(path);
        u
    }

    pub fn base(&self) -> &Url {
        &self.base
    }
    pub fn group(&self, name: &str) -> Url {
        self.join(&format!("/groups/{name}"))
    }
    pub fn person(&self, name: &str) -> Url {
        self.join(&format!("/users/{name}"))
    }
    pub fn instance_actor(&self) -> Url {
        self.join("/actor")
    }
    pub fn shared_inbox(&self) -> Url {
        self.join("/inbox")
    }
    /// A hashtag's page (the tag is percent-encoded).
    pub fn tag(&self, tag: &str) -> Url {
        let mut u = self.join("/tags/");
        if let Ok(mut seg) = u.path_segments_mut() {
            seg.pop_if_empty().push(tag);
        }
        u
    }
    pub fn post(&self, id: i64) -> Url {
        self.join(&format!("/posts/{id}"))
    }
    /// A fresh id for an outgoing activity.
    pub fn new_activity(&self, kind: &str) -> Url {
        self.join(&format!(
            "/activities/{}/{}",
            kind.to_ascii_lowercase(),
            uuid::Uuid::new_v4()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() -> Result<(), url::ParseError> {
        let u = Urls::new("http", "localhost:8080")?;
        assert_eq!(u.group("ms").as_str(), "http://localhost:8080/groups/ms");
        assert_eq!(u.person("al").as_str(), "http://localhost:8080/users/al");
        assert_eq!(u.post(7).as_str(), "http://localhost:8080/posts/7");
        assert!(
            u.new_activity("Follow")
                .as_str()
                .starts_with("http://localhost:8080/activities/follow/")
        );
        Ok(())
    }
}
