//! What we sign, and how. Everything we send is signed in the draft-cavage
//! form Mastodon checks, `rsa-sha256`: deliveries (POST) over
//! `(request-target) host date digest`, fetches (GET) over
//! `(request-target) host date`. The federation library signs fetches before
//! `Host` and `Date` exist (so neither is covered, and Mastodon in secure mode
//! refuses them); the client middleware `SignGets` re-signs every outgoing
//! GET with the instance actor's key. Deliveries are signed in
//! `federation::delivery` with `post_headers`.
//!
//! Signing uses `ring` (about five times faster than the `rsa` crate for
//! RSA-2048) on a few dedicated threads (one per core) that run at a lower
//! priority: RSA is most of a fan-out's CPU, and readers of the web pages
//! and API should not wait behind it. Parsed keys are kept per actor.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, mpsc},
};

use axum::http::{Extensions, HeaderValue};
use base64::Engine;
use reqwest_middleware::{Middleware, Next};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// An actor's private key, parsed once, with its `keyId`.
pub struct Key {
    key_id: String,
    pair: RsaKeyPair,
}

impl Key {
    /// `actor_id`'s `#main-key`, from its PKCS#8 PEM private key.
    pub fn from_pem(actor_id: &str, private_key_pem: &str) -> Result<Key, AppError> {
        let bad = |e: String| AppError::internal(format!("private key of {actor_id}: {e}"));
        let (_, der) = rsa::pkcs8::SecretDocument::from_pem(private_key_pem)
            .map_err(|e| bad(e.to_string()))?;
        let pair = RsaKeyPair::from_pkcs8(der.as_bytes()).map_err(|e| bad(e.to_string()))?;
        Ok(Key {
            key_id: format!("{actor_id}#main-key"),
            pair,
        })
    }

    /// The `Signature` header value for `signing_string` over `headers`.
    fn signature(&self, headers: &str, signing_string: &str) -> Result<String, AppError> {
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_string.as_bytes(),
                &mut sig,
            )
            .map_err(|_| AppError::internal("RSA signing failed"))?;
        Ok(format!(
            r#"keyId="{}",algorithm="rsa-sha256",headers="{headers}",signature="{}""#,
            self.key_id,
            base64::engine::general_purpose::STANDARD.encode(sig)
        ))
    }
}

/// `Date` as HTTP sends it, for now.
pub fn http_date() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// `SHA-256=<base64>` of a body, for the `Digest` header.
pub fn digest(body: &[u8]) -> String {
    format!(
        "SHA-256={}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body))
    )
}

/// The `Signature` of a GET of `path_and_query` on `host` (`host[:port]`).
pub fn get_signature(
    key: &Key,
    path_and_query: &str,
    host: &str,
    date: &str,
) -> Result<String, AppError> {
    key.signature(
        "(request-target) host date",
        &format!("(request-target): get {path_and_query}\nhost: {host}\ndate: {date}"),
    )
}

/// The `Signature` of a POST of a body with `digest` to `path_and_query` on
/// `host`.
pub fn post_signature(
    key: &Key,
    path_and_query: &str,
    host: &str,
    date: &str,
    digest: &str,
) -> Result<String, AppError> {
    key.signature(
        "(request-target) host date digest",
        &format!(
            "(request-target): post {path_and_query}\nhost: {host}\ndate: {date}\ndigest: {digest}"
        ),
    )
}

type Job = Box<dyn FnOnce() + Send>;

/// The signing threads and the parsed keys of local actors (this process).
#[derive(Default)]
pub struct Signer {
    keys: Mutex<HashMap<i64, Arc<Key>>>,
    jobs: OnceLock<Mutex<mpsc::Sender<Job>>>,
}

/// Parsed keys kept at most (local actors that send); then the cache starts
/// over.
const MAX_KEYS: usize = 4096;

impl Signer {
    /// Local actor `actor_id`'s parsed key, if kept.
    pub fn cached(&self, actor_id: i64) -> Option<Arc<Key>> {
        self.keys.lock().ok()?.get(&actor_id).cloned()
    }

    /// Keep `actor_id`'s parsed key.
    pub fn keep(&self, actor_id: i64, key: Key) -> Arc<Key> {
        let key = Arc::new(key);
        if let Ok(mut m) = self.keys.lock() {
            if m.len() >= MAX_KEYS {
                m.clear();
            }
            m.insert(actor_id, key.clone());
        }
        key
    }

    /// Run `sign` on a signing thread.
    pub async fn run<T: Send + 'static>(
        &self,
        sign: impl FnOnce() -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(sign());
        });
        self.pool()
            .lock()
            .map_err(|_| AppError::internal("signing queue poisoned"))?
            .send(job)
            .map_err(|_| AppError::internal("signing threads gone"))?;
        rx.await
            .map_err(|_| AppError::internal("signing thread failed"))?
    }

    /// Started on first use: one thread per core this process may use.
    fn pool(&self) -> &Mutex<mpsc::Sender<Job>> {
        self.jobs.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            for i in 0..threads {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("kindred-sign-{i}"))
                    .spawn(move || {
                        lower_priority();
                        loop {
                            let job = match rx.lock() {
                                Ok(r) => r.recv(),
                                Err(_) => return,
                            };
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start a signing thread");
                }
            }
            Mutex::new(tx)
        })
    }
}

/// Nice 10 for the calling thread: under load the scheduler runs request
/// threads first and signing takes what is left; alone it takes a whole core.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: setpriority only reads its integer arguments. On Linux the nice
    // value is per thread, and PRIO_PROCESS with 0 names the calling thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    if rc != 0 {
        tracing::debug!("cannot lower the signing thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Client middleware: every GET is signed by the instance actor.
pub struct SignGets {
    key: Arc<Key>,
    signer: Arc<Signer>,
}

impl SignGets {
    pub fn new(key: Key, signer: Arc<Signer>) -> Self {
        SignGets {
            key: Arc::new(key),
            signer,
        }
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
            let date = http_date();
            let mut target = url.path().to_string();
            if let Some(q) = url.query() {
                target.push('?');
                target.push_str(q);
            }
            let key = self.key.clone();
            let (h, d) = (host.clone(), date.clone());
            let sig = self
                .signer
                .run(move || get_signature(&key, &target, &h, &d))
                .await
                .map_err(reqwest_middleware::Error::middleware)?;
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
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

    #[test]
    fn our_signatures_verify_and_tampering_does_not() {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .unwrap_or_else(|e| panic!("key: {e}"));
        let public = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default();
        let pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap_or_else(|e| panic!("pem: {e}"));
        let key = Key::from_pem("https://a.example/actor", &pem).unwrap_or_else(|e| panic!("{e}"));
        let date = "Sun, 22 Nov 2026 10:00:00 GMT";
        let value = get_signature(&key, "/groups/g/outbox", "b.example", date)
            .unwrap_or_else(|e| panic!("{e}"));
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

        // A delivery's signature covers the body's digest.
        let body = br#"{"type":"Create"}"#;
        let d = digest(body);
        let value =
            post_signature(&key, "/inbox", "b.example", date, &d).unwrap_or_else(|e| panic!("{e}"));
        let sig = SignatureHeader::parse(&value).unwrap_or_else(|| panic!("unparsed"));
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("b.example"));
        h.insert("date", HeaderValue::from_static(date));
        h.insert(
            "digest",
            HeaderValue::from_str(&d).unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(verify_get(&sig, &h, "POST", "/inbox", &public), Ok(()));
        h.insert(
            "digest",
            HeaderValue::from_str(&digest(b"{}")).unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(verify_get(&sig, &h, "POST", "/inbox", &public).is_err());
    }
}
