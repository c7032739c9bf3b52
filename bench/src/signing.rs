//! RSA-2048 keys and draft-cavage HTTP signatures, the way Mastodon signs a
//! POST: `rsa-sha256` over `(request-target) host date digest`.

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::{
    RsaPrivateKey,
    pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding},
};
use sha2::{Digest, Sha256};

use crate::error::Result;

/// A key pair: the signer (ring: the load generator should not be slower
/// than the server) and the public key as PEM (for actor documents).
pub struct Key {
    signer: RsaKeyPair,
    rng: ring::rand::SystemRandom,
    pub public_pem: String,
}

impl Key {
    /// A fresh RSA-2048 key pair (slow: 0.1–1 s).
    pub fn generate() -> Result<Key> {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
        let public_pem = private.to_public_key().to_public_key_pem(LineEnding::LF)?;
        let der = private.to_pkcs8_der()?;
        let signer = RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| crate::error::Error(format!("ring cannot read the key: {e}")))?;
        Ok(Key {
            signer,
            rng: ring::rand::SystemRandom::new(),
            public_pem,
        })
    }

    /// Base64 signature over `text` (empty if ring refuses, which it does
    /// not for its own key).
    pub fn sign(&self, text: &[u8]) -> String {
        let mut out = vec![0; self.signer.public().modulus_len()];
        match self
            .signer
            .sign(&RSA_PKCS1_SHA256, &self.rng, text, &mut out)
        {
            Ok(()) => STANDARD.encode(out),
            Err(_) => String::new(),
        }
    }
}

/// The headers of a signed POST of `body` to `path` on `host`.
pub struct Signed {
    pub date: String,
    pub digest: String,
    pub signature: String,
}

pub fn sign_post(key: &Key, key_id: &str, host: &str, path: &str, body: &[u8]) -> Signed {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let digest = format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)));
    let text =
        format!("(request-target): post {path}\nhost: {host}\ndate: {date}\ndigest: {digest}");
    let signature = format!(
        r#"keyId="{key_id}",algorithm="rsa-sha256",headers="(request-target) host date digest",signature="{}""#,
        key.sign(text.as_bytes())
    );
    Signed {
        date,
        digest,
        signature,
    }
}

/// `n` key pairs made on blocking threads.
pub async fn generate_keys(n: usize) -> Result<Vec<std::sync::Arc<Key>>> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn_blocking(Key::generate);
    }
    let mut keys = Vec::with_capacity(n);
    while let Some(k) = tasks.join_next().await {
        keys.push(std::sync::Arc::new(k??));
    }
    Ok(keys)
}
