//! Our signed GETs in the draft-cavage form Mastodon checks: `rsa-sha256` over
//! `(request-target) host date`. The federation library signs fetches before
//! `Host` and `Date` exist (so neither is covered, and Mastodon in secure mode
//! refuses them); this client middleware re-signs every outgoing GET with the
//! instance actor's key. POSTs are left as the library signs them (`host`,
//! `date` and `digest` covered).

use axum::http::{Extensions, HeaderValue};
use base64::Engine;
use reqwest_middleware::{Middleware, Next};
use rsa::{
    RsaPrivateKey,
    pkcs1v15::SigningKey,
    pkcs8::DecodePrivateKey,
    signature::{SignatureEncoding, Signer},
};
use sha2::Sha256;

use crate::error::AppError;

pub struct SignGets {
    key_id: String,
    key: SigningKey<Sha256>,
}

impl SignGets {
    /// `actor_id`'s `#main-key`, from its PKCS#8 PEM private key.
    pub fn new(actor_id: &str, private_key_pem: &str) -> Result<Self, AppError> {
        let key = RsaPrivateKey::from_pkcs8_pem(private_key_pem)
            .map_err(|e| AppError::internal(format!("instance key: {e}")))?;
        Ok(SignGets {
            key_id: format!("{actor_id}#main-key"),
            key: SigningKey::new(key),
        })
    }

    /// The `Signature` header value for a GET of `path_and_query` on `host`.
    pub fn signature(&self, path_and_query: &str, host: &str, date: &str) -> String {
        let signing = format!("(request-target): get {path_and_query}\nhost: {host}\ndate: {date}");
        let sig = self.key.sign(signing.as_bytes());
        format!(
            r#"keyId="{}",algorithm="rsa-sha256",headers="(request-target) host date",signature="{}""#,
            self.key_id,
            base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
        )
    }
}

#[async_trait::async_trait]
impl Middleware for SignGets {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if req.method() == reqwest::Method::GET {
            let url = req.url().clone();
            // `host[:port]`, as the Host header carries it.
            let host = super::objects::authority(&url);
            let date = chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            let mut target = url.path().to_string();
            if let Some(q) = url.query() {
                target.push('?');
                target.push_str(q);
            }
            let sig = self.signature(&target, &host, &date);
            let headers = req.headers_mut();
            for (name, value) in [("host", host), ("date", date), ("signature", sig)] {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            }
        }
        next.run(req, extensions).await
    }
}

/// The parts of a draft-cavage `Signature` header we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub key_id: String,
    pub headers: Vec<String>,
    pub signature: Vec<u8>,
    pub created: Option<String>,
    pub expires: Option<String>,
}

impl SignatureHeader {
    pub fn parse(value: &str) -> Option<Self> {
        let mut key_id = None;
        let mut headers = None;
        let mut signature = None;
        let (mut created, mut expires) = (None, None);
        for part in value.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            let v = v.trim().trim_matches('"');
            match k.trim() {
                "keyId" => key_id = Some(v.to_string()),
                "headers" => {
                    headers = Some(v.split_whitespace().map(str::to_ascii_lowercase).collect())
                }
                "signature" => signature = base64::engine::general_purpose::STANDARD.decode(v).ok(),
                "created" => created = Some(v.to_string()),
                "expires" => expires = Some(v.to_string()),
                _ => {}
            }
        }
        Some(SignatureHeader {
            key_id: key_id?,
            // The draft's default list is `date` alone.
            headers: headers.unwrap_or_else(|| vec!["date".into()]),
            signature: signature?,
            created,
            expires,
        })
    }
}

/// Check a signed GET against `public_key_pem`: the signature must cover
/// `(request-target)`, `host` and `date` (or `(created)`), and verify as
/// RSA-SHA256 (`rsa-sha256` or `hs2019` with an RSA key).
pub fn verify_get(
    sig: &SignatureHeader,
    headers: &axum::http::HeaderMap,
    method: &str,
    path_and_query: &str,
    public_key_pem: &str,
) -> Result<(), &'static str> {
    use rsa::{
        RsaPublicKey,
        pkcs1::DecodeRsaPublicKey,
        pkcs1v15::{Signature, VerifyingKey},
        pkcs8::DecodePublicKey,
        signature::Verifier,
    };
    let has = |h: &str| sig.headers.iter().any(|x| x == h);
    if !(has("(request-target)") && has("host") && (has("date") || has("(created)"))) {
        return Err("the signature must cover (request-target), host and date");
    }
    let mut lines = Vec::with_capacity(sig.headers.len());
    for h in &sig.headers {
        let value = match h.as_str() {
            "(request-target)" => format!("{} {path_and_query}", method.to_ascii_lowercase()),
            "(created)" => sig.created.clone().ok_or("(created) signed but missing")?,
            "(expires)" => sig.expires.clone().ok_or("(expires) signed but missing")?,
            name => {
                let values: Vec<&str> = headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                if values.is_empty() {
                    return Err("a signed header is missing");
                }
                values.join(", ")
            }
        };
        lines.push(format!("{h}: {value}"));
    }
    let key = RsaPublicKey::from_public_key_pem(public_key_pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(public_key_pem))
        .map_err(|_| "the signer's key is not an RSA key")?;
    let signature =
        Signature::try_from(sig.signature.as_slice()).map_err(|_| "malformed signature")?;
    VerifyingKey::<Sha256>::new(key)
        .verify(lines.join("\n").as_bytes(), &signature)
        .map_err(|_| "the signature does not verify")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};

    #[test]
    fn our_signed_gets_verify_and_tampering_does_not() {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .unwrap_or_else(|e| panic!("key: {e}"));
        let public = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default();
        let signer = SignGets {
            key_id: "https://a.example/actor#main-key".into(),
            key: SigningKey::new(private),
        };
        let date = "Sun, 22 Nov 2026 10:00:00 GMT";
        let value = signer.signature("/groups/g/outbox", "b.example", date);
        let sig = SignatureHeader::parse(&value).unwrap_or_else(|| panic!("unparsed"));
        assert_eq!(sig.key_id, "https://a.example/actor#main-key");
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("b.example"));
        h.insert("date", HeaderValue::from_static(date));
        assert_eq!(
            verify_get(&sig, &h, "GET", "/groups/g/outbox", &public),
            Ok(())
        );
        assert!(verify_get(&sig, &h, "GET", "/groups/h/outbox", &public).is_err());
        h.insert("host", HeaderValue::from_static("c.example"));
        assert!(verify_get(&sig, &h, "GET", "/groups/g/outbox", &public).is_err());
        let weak = SignatureHeader {
            headers: vec!["date".into()],
            ..sig
        };
        assert!(verify_get(&weak, &h, "GET", "/groups/g/outbox", &public).is_err());
    }
}
