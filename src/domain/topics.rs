//! What a group is about: condition names, tags, standard condition codes
//! (ICD-10, ICD-11, ORPHA, SNOMED CT), languages and a region. Parsed and
//! bounded here, for local edits and for remote actor documents alike, and
//! the relevance of a group to a search.

use std::fmt;

pub const MAX_CONDITIONS: usize = 10;
pub const MAX_TAGS: usize = 10;
pub const MAX_CODES: usize = 10;
pub const MAX_LANGUAGES: usize = 5;
const MAX_CONDITION_CHARS: usize = 100;
const MAX_TAG_CHARS: usize = 50;

/// A standard code system, by the URI FHIR uses for it (what travels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeSystem {
    Icd10,
    Icd11,
    Orpha,
    Snomed,
}

impl CodeSystem {
    pub const ALL: [CodeSystem; 4] = [
        CodeSystem::Icd10,
        CodeSystem::Icd11,
        CodeSystem::Orpha,
        CodeSystem::Snomed,
    ];

    /// The short name people type: `icd10:G70.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeSystem::Icd10 => "icd10",
            CodeSystem::Icd11 => "icd11",
            CodeSystem::Orpha => "orpha",
            CodeSystem::Snomed => "snomed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CodeSystem::Icd10 => "ICD-10",
            CodeSystem::Icd11 => "ICD-11",
            CodeSystem::Orpha => "ORPHA",
            CodeSystem::Snomed => "SNOMED CT",
        }
    }

    /// The system URI on the wire (HL7 FHIR's names for these systems).
    pub fn uri(self) -> &'static str {
        match self {
            CodeSystem::Icd10 => "http://hl7.org/fhir/sid/icd-10",
            CodeSystem::Icd11 => "http://id.who.int/icd/release/11/mms",
            CodeSystem::Orpha => "http://www.orpha.net",
            CodeSystem::Snomed => "http://snomed.info/sct",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace(['-', ' ', '_'], "");
        match s.as_str() {
            "icd10" => Some(CodeSystem::Icd10),
            "icd11" => Some(CodeSystem::Icd11),
            "orpha" | "orphanet" | "orphacode" => Some(CodeSystem::Orpha),
            "snomed" | "snomedct" | "sct" => Some(CodeSystem::Snomed),
            _ => None,
        }
    }

    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.uri() == uri.trim())
    }

    /// The code in its canonical spelling, or None when it is not one.
    pub fn normalize(self, code: &str) -> Option<String> {
        let c = code.trim();
        match self {
            CodeSystem::Icd10 => {
                let c = c.to_ascii_uppercase();
                let (head, tail) = c.split_once('.').unwrap_or((&c, ""));
                let b = head.as_bytes();
                let ok_head = b.len() == 3
                    && b[0].is_ascii_uppercase()
                    && b[1].is_ascii_digit()
                    && b[2].is_ascii_alphanumeric();
                let ok_tail = tail.len() <= 4 && tail.bytes().all(|x| x.is_ascii_alphanumeric());
                (ok_head && ok_tail && !(c.contains('.') && tail.is_empty())).then_some(c)
            }
            CodeSystem::Icd11 => {
                let c = c.to_ascii_uppercase();
                let ok = (4..=20).contains(&c.len())
                    && c.bytes().all(|x| x.is_ascii_alphanumeric() || x == b'.')
                    && c.as_bytes()[0].is_ascii_alphanumeric();
                ok.then_some(c)
            }
            CodeSystem::Orpha => {
                let digits = c
                    .strip_prefix("ORPHA:")
                    .or_else(|| c.strip_prefix("orpha:"))
                    .unwrap_or(c);
                let ok =
                    (1..=7).contains(&digits.len()) && digits.bytes().all(|x| x.is_ascii_digit());
                ok.then(|| format!("ORPHA:{}", digits.trim_start_matches('0')))
                    .filter(|s| s != "ORPHA:")
            }
            CodeSystem::Snomed => {
                let ok = (6..=18).contains(&c.len()) && c.bytes().all(|x| x.is_ascii_digit());
                ok.then(|| c.to_string())
            }
        }
    }
}

/// A condition code: `orpha:589` is `Code { Orpha, "ORPHA:589" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Code {
    pub system: CodeSystem,
    pub code: String,
}

impl Code {
    /// `system:code` as people type it (`icd10:G70.0`, `ORPHA:589`).
    pub fn parse(input: &str) -> Result<Code, String> {
        let input = input.trim();
        let (system, code) = input.split_once(':').ok_or_else(|| {
            format!(
                "'{input}' is not a code: write it as system:code, e.g. icd10:G70.0 or orpha:589"
            )
        })?;
        let system = CodeSystem::parse(system).ok_or_else(|| {
            format!("unknown code system '{system}': use icd10, icd11, orpha or snomed")
        })?;
        let code = system
            .normalize(code)
            .ok_or_else(|| format!("'{}' is not a valid {} code", code.trim(), system.label()))?;
        Ok(Code { system, code })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.system {
            CodeSystem::Orpha => f.write_str(&self.code),
            s => write!(f, "{}:{}", s.as_str(), self.code),
        }
    }
}

/// What a group is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    pub conditions: Vec<String>,
    pub tags: Vec<String>,
    pub codes: Vec<Code>,
    pub languages: Vec<String>,
    pub region: Option<String>,
}

/// Split what was typed in a form field: commas or new lines.
pub fn split_list(input: &str) -> Vec<String> {
    input
        .split([',', '\n'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn dedup<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

pub fn condition(s: &str) -> Result<String, String> {
    let s = super::content::sanitize_plain(s, MAX_CONDITION_CHARS + 1);
    let s = s.trim();
    if s.is_empty() {
        return Err("a condition name cannot be empty".into());
    }
    if s.chars().count() > MAX_CONDITION_CHARS {
        return Err(format!(
            "a condition name has at most {MAX_CONDITION_CHARS} characters"
        ));
    }
    Ok(s.to_string())
}

/// A tag: letters, digits and `_`, stored lowercase without `#`.
pub fn tag(s: &str) -> Result<String, String> {
    let t = s.trim().trim_start_matches('#').to_lowercase();
    if t.is_empty()
        || t.chars().count() > MAX_TAG_CHARS
        || !t.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return Err(format!(
            "'{}' is not a tag: letters, digits and _ only, at most {MAX_TAG_CHARS}",
            s.trim()
        ));
    }
    Ok(t)
}

/// A language tag (BCP 47, the common shapes: `en`, `de`, `pt-BR`).
pub fn language(s: &str) -> Result<String, String> {
    let s = s.trim();
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or_default();
    let ok_primary =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
    let rest: Vec<&str> = parts.collect();
    let ok_rest = rest.len() <= 2
        && rest
            .iter()
            .all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !ok_primary || !ok_rest {
        return Err(format!(
            "'{s}' is not a language code: use e.g. en, de or pt-BR"
        ));
    }
    let mut out = primary.to_ascii_lowercase();
    for p in rest {
        out.push('-');
        if p.len() == 2 {
            out.push_str(&p.to_ascii_uppercase());
        } else {
            out.push_str(p);
        }
    }
    Ok(out)
}

/// A country (ISO 3166-1 alpha-2, `DE`) or subdivision (ISO 3166-2, `FR-IDF`).
pub fn region(s: &str) -> Result<String, String> {
    let r = s.trim().to_ascii_uppercase();
    let (country, sub) = r.split_once('-').unwrap_or((&r, ""));
    let ok = country.len() == 2
        && country.bytes().all(|b| b.is_ascii_uppercase())
        && (!r.contains('-')
            || ((1..=3).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric())));
    if !ok {
        return Err(format!(
            "'{}' is not a region: use a country code like DE, or a subdivision like FR-IDF",
            s.trim()
        ));
    }
    Ok(r)
}

impl Topics {
    /// From a form or API request: every entry must be valid (the first
    /// error is the answer), and there are at most so many of each.
    pub fn parse(
        conditions: &[String],
        tags: &[String],
        codes: &[String],
        languages: &[String],
        region_in: Option<&str>,
    ) -> Result<Topics, String> {
        let limit = |what: &str, n: usize, max: usize| {
            if n > max {
                Err(format!("a group has at most {max} {what}"))
            } else {
                Ok(())
            }
        };
        limit("conditions", conditions.len(), MAX_CONDITIONS)?;
        limit("tags", tags.len(), MAX_TAGS)?;
        limit("codes", codes.len(), MAX_CODES)?;
        limit("languages", languages.len(), MAX_LANGUAGES)?;
        Ok(Topics {
            conditions: dedup(
                conditions
                    .iter()
                    .map(|c| condition(c))
                    .collect::<Result<_, _>>()?,
            ),
            tags: dedup(tags.iter().map(|t| tag(t)).collect::<Result<_, _>>()?),
            codes: dedup(
                codes
                    .iter()
                    .map(|c| Code::parse(c))
                    .collect::<Result<_, _>>()?,
            ),
            languages: dedup(
                languages
                    .iter()
                    .map(|l| language(l))
                    .collect::<Result<_, _>>()?,
            ),
            region: match region_in.map(str::trim).filter(|r| !r.is_empty()) {
                Some(r) => Some(region(r)?),
                None => None,
            },
        })
    }

    /// From another server's actor document: what is valid is kept, what is
    /// not is dropped, and no more than the limits are read.
    pub fn lenient(
        conditions: &[String],
        tags: &[String],
        codes: &[(String, String)],
        languages: &[String],
        region_in: Option<&str>,
    ) -> Topics {
        Topics {
            conditions: dedup(
                conditions
                    .iter()
                    .filter_map(|c| condition(c).ok())
                    .take(MAX_CONDITIONS)
                    .collect(),
            ),
            tags: dedup(
                tags.iter()
                    .filter_map(|t| tag(t).ok())
                    .take(MAX_TAGS)
                    .collect(),
            ),
            codes: dedup(
                codes
                    .iter()
                    .filter_map(|(system, code)| {
                        let system = CodeSystem::from_uri(system)?;
                        Some(Code {
                            system,
                            code: system.normalize(code)?,
                        })
                    })
                    .take(MAX_CODES)
                    .collect(),
            ),
            languages: dedup(
                languages
                    .iter()
                    .filter_map(|l| language(l).ok())
                    .take(MAX_LANGUAGES)
                    .collect(),
            ),
            region: region_in.and_then(|r| region(r).ok()),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Topics::default()
    }
}

/// What a search is matched against: a group's names and its topics.
pub struct Searchable<'a> {
    pub name: &'a str,
    pub title: &'a str,
    pub summary: &'a str,
    pub topics: &'a Topics,
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == ':' || c == '_'))
        .map(|w| w.trim_matches('.').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// How well a group answers `query` (0: not at all). A code typed exactly
/// (`G70.0`, `icd10:G70.0`, `ORPHA:589`, `589`) beats a condition named
/// exactly, which beats a condition or tag containing every word, which beats
/// the group's name and title, which beat its description.
pub fn relevance(query: &str, g: &Searchable<'_>) -> u32 {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return 1;
    }
    let code_hit = g.topics.codes.iter().any(|c| {
        let code = c.code.to_lowercase();
        let bare = code.trim_start_matches("orpha:");
        q == code
            || q == bare
            || q == format!("{}:{}", c.system.as_str(), bare)
            || q == c.to_string().to_lowercase()
    });
    let mut score = 0;
    if code_hit {
        score += 1000;
    }
    let qw = words(&q);
    if qw.is_empty() {
        return score;
    }
    let all_in = |text: &str| {
        let tw = words(text);
        qw.iter()
            .all(|w| tw.iter().any(|t| t.starts_with(w.as_str())))
    };
    let some_in = |text: &str| {
        let tw = words(text);
        qw.iter()
            .filter(|w| tw.iter().any(|t| t.starts_with(w.as_str())))
            .count() as u32
    };
    for c in &g.topics.conditions {
        if c.to_lowercase() == q {
            score += 500;
        } else if all_in(c) {
            score += 200;
        } else {
            score += 20 * some_in(c);
        }
    }
    let joined = qw.join("");
    for t in &g.topics.tags {
        if *t == joined {
            score += 300;
        } else if qw.iter().any(|w| t.contains(w.as_str())) {
            score += 40;
        }
    }
    for (text, full, part) in [(g.title, 150, 15), (g.name, 120, 15)] {
        if all_in(text) {
            score += full;
        } else {
            score += part * some_in(text);
        }
    }
    if all_in(g.summary) {
        score += 50;
    } else {
        score += 5 * some_in(g.summary);
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_parsed_and_normalised() {
        let c = Code::parse("icd10: g70.0").expect("icd10");
        assert_eq!((c.system, c.code.as_str()), (CodeSystem::Icd10, "G70.0"));
        assert_eq!(c.to_string(), "icd10:G70.0");
        let o = Code::parse("orpha:0589").expect("orpha");
        assert_eq!(o.code, "ORPHA:589");
        assert_eq!(Code::parse("ORPHA:589").expect("pasted").code, "ORPHA:589");
        assert_eq!(
            Code::parse("orpha:ORPHA:589").expect("both").code,
            "ORPHA:589"
        );
        assert!(Code::parse("snomed:91637004").is_ok());
        assert!(Code::parse("icd10:G7").is_err());
        assert!(Code::parse("icd10:G70.").is_err());
        assert!(Code::parse("mesh:D009157").is_err());
        assert!(Code::parse("G70.0").is_err());
        assert!(Code::parse("snomed:12ab").is_err());
    }

    #[test]
    fn topics_are_bounded_and_checked() {
        let many: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert!(Topics::parse(&[], &many, &[], &[], None).is_err());
        let t = Topics::parse(
            &["Myasthenia gravis".into(), "Myasthenia gravis".into()],
            &["#MG".into(), "rare_disease".into()],
            &["orpha:589".into()],
            &["EN".into(), "pt-br".into()],
            Some("fr-idf"),
        )
        .expect("valid");
        assert_eq!(t.conditions, vec!["Myasthenia gravis"]);
        assert_eq!(t.tags, vec!["mg", "rare_disease"]);
        assert_eq!(t.languages, vec!["en", "pt-BR"]);
        assert_eq!(t.region.as_deref(), Some("FR-IDF"));
        assert!(Topics::parse(&[], &["no spaces".into()], &[], &[], None).is_err());
        assert!(Topics::parse(&[], &[], &[], &["english".into()], None).is_err());
        assert!(Topics::parse(&[], &[], &[], &[], Some("Germany")).is_err());
    }

    #[test]
    fn remote_topics_keep_what_is_valid() {
        let t = Topics::lenient(
            &["".into(), "Lupus".into()],
            &["ok".into(), "not ok".into()],
            &[
                ("http://www.orpha.net".into(), "ORPHA:536".into()),
                ("http://example.com/codes".into(), "X".into()),
                ("http://hl7.org/fhir/sid/icd-10".into(), "<script>".into()),
            ],
            &["xx-".into(), "de".into()],
            Some("nowhere"),
        );
        assert_eq!(t.conditions, vec!["Lupus"]);
        assert_eq!(t.tags, vec!["ok"]);
        assert_eq!(t.codes.len(), 1);
        assert_eq!(t.languages, vec!["de"]);
        assert_eq!(t.region, None);
    }

    #[test]
    fn relevance_ranks_codes_then_conditions_then_names() {
        let mg = Topics {
            conditions: vec!["Myasthenia gravis".into()],
            codes: vec![Code::parse("icd10:G70.0").expect("code")],
            ..Default::default()
        };
        let none = Topics::default();
        let by_condition = Searchable {
            name: "mg_north",
            title: "MG North",
            summary: "",
            topics: &mg,
        };
        let by_title = Searchable {
            name: "mg",
            title: "Myasthenia gravis chat",
            summary: "",
            topics: &none,
        };
        let by_summary = Searchable {
            name: "muscles",
            title: "Muscles",
            summary: "<p>We talk about myasthenia gravis.</p>",
            topics: &none,
        };
        let other = Searchable {
            name: "lupus",
            title: "Lupus",
            summary: "",
            topics: &none,
        };
        let q = "myasthenia gravis";
        let (a, b, c, d) = (
            relevance(q, &by_condition),
            relevance(q, &by_title),
            relevance(q, &by_summary),
            relevance(q, &other),
        );
        assert!(a > b && b > c && c > d, "{a} {b} {c} {d}");
        assert_eq!(d, 0);
        for q in ["G70.0", "icd10:g70.0", "g70.0"] {
            assert!(relevance(q, &by_condition) >= 1000, "{q}");
            assert_eq!(relevance(q, &by_title), 0, "{q}");
        }
        assert!(
            relevance("myasth", &by_condition) > 0,
            "a word's beginning is enough"
        );
    }
}
