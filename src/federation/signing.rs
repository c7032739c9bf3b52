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
