//! ActivityStreams objects we serve and accept: actors and posts, with their
//! conversions to and from rows, plus lenient JSON helpers for what peers send.

pub mod actor;
pub mod post;

use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use url::Url;

/// Accept a single value or an array (peers send both); unknown shapes give an
/// empty list rather than rejecting the whole object.
pub fn one_or_many<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
where
    T: DeserializeOwned,
    D: Deserializer<'de>,
{
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|i| serde_json::from_value(i).ok())
            .collect(),
        serde_json::Value::Null => vec![],
        other => serde_json::from_value(other)
            .map(|x| vec![x])
            .unwrap_or_default(),
    })
}

/// A property that may be an id or an embedded object with an `id`.
pub fn id_of(v: &serde_json::Value) -> Option<Url> {
    match v {
        serde_json::Value::String(s) => Url::parse(s).ok(),
        serde_json::Value::Object(m) => m
            .get("id")
            .and_then(|i| i.as_str())
            .and_then(|s| Url::parse(s).ok()),
        _ => None,
    }
}

/// The `@context` of posts and activities: ActivityStreams plus the terms
/// Mastodon uses that it lacks, so JSON-LD processors (Fedify, Misskey) keep
/// the content warning flag and hashtags.
pub fn object_context() -> serde_json::Value {
    serde_json::json!([
        "https://www.w3.org/ns/activitystreams",
        {
            "sensitive": "as:sensitive",
            "Hashtag": "as:Hashtag"
        }
    ])
}

pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// All the spellings of the public audience seen in the wild.
pub fn is_public(s: &str) -> bool {
    crate::domain::rules::is_publicly_addressed(std::iter::once(s))
}

/// "host" or "host:port": how we name a remote instance (ports matter in dev mode).
pub fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// `a` and `b` must share an origin (scheme, host and port — the library's
/// own check ignores ports, which tells instances on one host apart).
pub fn require_same_origin(a: &Url, b: &Url) -> Result<(), crate::error::AppError> {
    if same_origin(a, b) {
        Ok(())
    } else {
        Err(crate::error::AppError::bad_request(format!(
            "{a} and {b} are on different hosts"
        )))
    }
}

/// Same origin = same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && authority(a) == authority(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "one_or_many")]
        to: Vec<String>,
    }

    #[test]
    fn one_or_many_accepts_every_shape() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::from_str::<T>(r#"{"to":"a"}"#)?.to, vec!["a"]);
        assert_eq!(
            serde_json::from_str::<T>(r#"{"to":["a","b"]}"#)?.to,
            vec!["a", "b"]
        );
        assert!(serde_json::from_str::<T>(r#"{}"#)?.to.is_empty());
        assert!(serde_json::from_str::<T>(r#"{"to":null}"#)?.to.is_empty());
        assert_eq!(
            serde_json::from_str::<T>(r#"{"to":["a",{"x":1}]}"#)?.to,
            vec!["a"]
        );
        Ok(())
    }

    #[test]
    fn origins_compare_host_and_port() -> Result<(), url::ParseError> {
        let a = Url::parse("http://localhost:1/x")?;
        let b = Url::parse("http://LOCALHOST:1/y")?;
        let c = Url::parse("http://localhost:2/x")?;
        assert!(same_origin(&a, &b));
        assert!(!same_origin(&a, &c));
        assert!(is_public("as:Public") && is_public("Public") && is_public(PUBLIC));
        assert_eq!(
            id_of(&serde_json::json!({"id": "https://a.example/1"})).map(String::from),
            Some("https://a.example/1".to_string())
        );
        Ok(())
    }
}
