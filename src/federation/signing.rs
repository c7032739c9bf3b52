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
pub(crate) fn lower_priority() {
    // SAFETY: setpriority only reads its integer arguments. On Linux the nice
    // value is per thread, and PRIO_PROCESS with 0 names the calling thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    if rc != 0 {
        tracing::debug!("cannot lower the signing thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_priority() {}

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
                // Not base64: kept empty (it never verifies), so the keyId still
                // names the sender for the rate limit and the policy.
                "signature" => {
                    signature = Some(
                        base64::engine::general_purpose::STANDARD
                            .decode(v)
                            .unwrap_or_default(),
                    )
                }
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

/// How long a signature's `(created)` stays good, as the federation library
/// and Mastodon have it.
const SIGNATURE_LIFETIME_SECS: i64 = 3600;

/// Check a signed request against `public_key_pem`: the signature must cover
/// `(request-target)`, `host` and `date` (or `(created)`), must not have
/// expired (`expires` past, `(created)` over an hour old), and must verify as
/// RSA-SHA256 (`rsa-sha256`, or `hs2019` with an RSA key). The caller checks
/// what its kind of request needs beyond that (an inbox POST: `digest`).
///
/// Verified with ring, several times faster than the `rsa` crate; the key
/// may be 1,024 to 8,192 bits, as `rsa` and Mastodon take.
pub fn verify(
    sig: &SignatureHeader,
    headers: &axum::http::HeaderMap,
    method: &str,
    path_and_query: &str,
    public_key_pem: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), &'static str> {
    use ring::signature::{RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, UnparsedPublicKey};
    let has = |h: &str| sig.headers.iter().any(|x| x == h);
    if !(has("(request-target)") && has("host") && (has("date") || has("(created)"))) {
        return Err("the signature must cover (request-target), host and date");
    }
    let seconds = |v: &Option<String>| v.as_deref().and_then(|s| s.trim().parse::<i64>().ok());
    let now_secs = now.timestamp();
    if seconds(&sig.expires).is_some_and(|e| e < now_secs) {
        return Err("the signature has expired");
    }
    if seconds(&sig.created).is_some_and(|c| c + SIGNATURE_LIFETIME_SECS < now_secs) {
        return Err("the signature was created over an hour ago");
    }
    let text = signing_string(sig, headers, method, path_and_query)?;
    let der = rsa_public_key_der(public_key_pem).ok_or("the signer's key is not an RSA key")?;
    UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, der)
        .verify(text.as_bytes(), &sig.signature)
        .map_err(|_| "the signature does not verify")
}

/// The draft's signing string: one `name: value` line per signed header, in
/// the signature's order; a header sent more than once is joined with ", ".
fn signing_string(
    sig: &SignatureHeader,
    headers: &axum::http::HeaderMap,
    method: &str,
    path_and_query: &str,
) -> Result<String, &'static str> {
    let mut text = String::with_capacity(256);
    for (i, h) in sig.headers.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(h);
        text.push_str(": ");
        match h.as_str() {
            "(request-target)" => {
                text.push_str(&method.to_ascii_lowercase());
                text.push(' ');
                text.push_str(path_and_query);
            }
            "(created)" => text.push_str(
                sig.created
                    .as_deref()
                    .ok_or("(created) signed but missing")?,
            ),
            "(expires)" => text.push_str(
                sig.expires
                    .as_deref()
                    .ok_or("(expires) signed but missing")?,
            ),
            name => {
                let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
                let first = values.next().ok_or("a signed header is missing")?;
                text.push_str(first);
                for v in values {
                    text.push_str(", ");
                    text.push_str(v);
                }
            }
        }
    }
    Ok(text)
}

/// An RSA public key's PKCS#1 DER (what ring takes), from a PEM in either
/// form actors publish: SPKI (`BEGIN PUBLIC KEY`, Mastodon and most) or
/// PKCS#1 (`BEGIN RSA PUBLIC KEY`). None for anything else, including keys
/// of other algorithms.
pub fn rsa_public_key_der(pem: &str) -> Option<Vec<u8>> {
    use rsa::pkcs8::{
        der::{Decode, Document},
        spki::SubjectPublicKeyInfoRef,
    };
    let (label, doc) = Document::from_pem(pem.trim()).ok()?;
    match label {
        "RSA PUBLIC KEY" => Some(doc.as_bytes().to_vec()),
        "PUBLIC KEY" => {
            let info = SubjectPublicKeyInfoRef::from_der(doc.as_bytes()).ok()?;
            (info.algorithm.oid == rsa::pkcs1::ALGORITHM_OID)
                .then(|| info.subject_public_key.as_bytes().map(<[u8]>::to_vec))
                .flatten()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

    const DATE: &str = "Sun, 22 Nov 2026 10:00:00 GMT";

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc2822(DATE)
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or_default()
    }

    /// A fresh RSA-2048 key and its public key as SPKI PEM.
    fn new_key() -> (rsa::RsaPrivateKey, String) {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .unwrap_or_else(|e| panic!("key: {e}"));
        let public = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default();
        (private, public)
    }

    #[test]
    fn our_signatures_verify_and_tampering_does_not() {
        let (private, public) = new_key();
        let pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap_or_else(|e| panic!("pem: {e}"));
        let key = Key::from_pem("https://a.example/actor", &pem).unwrap_or_else(|e| panic!("{e}"));
        let date = DATE;
        let value = get_signature(&key, "/groups/g/outbox", "b.example", date)
            .unwrap_or_else(|e| panic!("{e}"));
        let sig = SignatureHeader::parse(&value).unwrap_or_else(|| panic!("unparsed"));
        assert_eq!(sig.key_id, "https://a.example/actor#main-key");
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("b.example"));
        h.insert("date", HeaderValue::from_static(date));
        assert_eq!(
            verify(&sig, &h, "GET", "/groups/g/outbox", &public, now()),
            Ok(())
        );
        assert!(verify(&sig, &h, "GET", "/groups/h/outbox", &public, now()).is_err());
        h.insert("host", HeaderValue::from_static("c.example"));
        assert!(verify(&sig, &h, "GET", "/groups/g/outbox", &public, now()).is_err());
        let weak = SignatureHeader {
            headers: vec!["date".into()],
            ..sig
        };
        assert!(verify(&weak, &h, "GET", "/groups/g/outbox", &public, now()).is_err());

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
        assert_eq!(verify(&sig, &h, "POST", "/inbox", &public, now()), Ok(()));
        h.insert(
            "digest",
            HeaderValue::from_str(&digest(b"{}")).unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(verify(&sig, &h, "POST", "/inbox", &public, now()).is_err());
    }

    /// Signatures made by another implementation (the `rsa` crate, as the
    /// federation library and many servers sign) verify; keys come in both
    /// PEM forms; expiry, a wrong key, a key of another kind and a junk
    /// signature are refused, each with its reason.
    #[test]
    fn other_signers_keys_and_expiry() {
        use rsa::{
            pkcs1::EncodeRsaPublicKey,
            pkcs1v15::SigningKey,
            signature::{SignatureEncoding, Signer as _},
        };
        let (private, spki) = new_key();
        let pkcs1 = private
            .to_public_key()
            .to_pkcs1_pem(LineEnding::LF)
            .unwrap_or_default();
        let (_, other) = new_key();
        let text = format!("(request-target): post /inbox\nhost: b.example\ndate: {DATE}");
        let signature = SigningKey::<Sha256>::new(private)
            .sign(text.as_bytes())
            .to_vec();
        let sig = SignatureHeader {
            key_id: "https://a.example/actor#main-key".into(),
            headers: vec!["(request-target)".into(), "host".into(), "date".into()],
            signature,
            created: None,
            expires: None,
        };
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("b.example"));
        h.insert("date", HeaderValue::from_static(DATE));
        let check =
            |sig: &SignatureHeader, key: &str, at| verify(sig, &h, "POST", "/inbox", key, at);

        assert_eq!(check(&sig, &spki, now()), Ok(()));
        assert_eq!(check(&sig, &pkcs1, now()), Ok(()));
        assert_eq!(
            check(&sig, &other, now()),
            Err("the signature does not verify")
        );

        let ed25519 = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        assert_eq!(
            check(&sig, ed25519, now()),
            Err("the signer's key is not an RSA key")
        );
        assert_eq!(
            check(&sig, "not a key", now()),
            Err("the signer's key is not an RSA key")
        );

        let expired = SignatureHeader {
            expires: Some((now().timestamp() - 1).to_string()),
            ..sig.clone()
        };
        assert_eq!(
            check(&expired, &spki, now()),
            Err("the signature has expired")
        );
        let stale = SignatureHeader {
            created: Some((now().timestamp() - 3601).to_string()),
            ..sig.clone()
        };
        assert_eq!(
            check(&stale, &spki, now()),
            Err("the signature was created over an hour ago")
        );

        // A signature value that is not base64 is read as empty: the header
        // still names its keyId, and it never verifies.
        let junk = SignatureHeader::parse(
            r#"keyId="https://a.example/actor#main-key",headers="(request-target) host date",signature="x!""#,
        )
        .unwrap_or_else(|| panic!("unparsed"));
        assert_eq!(junk.key_id, "https://a.example/actor#main-key");
        assert!(junk.signature.is_empty());
        assert_eq!(
            check(&junk, &spki, now()),
            Err("the signature does not verify")
        );
    }
}
