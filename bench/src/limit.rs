//! The limit every figure is compared with: RSA-2048 verify and sign
//! operations per second on one core, with the crates Kindred uses for each
//! (verify: rsa 0.9 PKCS#1 v1.5 + sha2, inside the federation library; sign:
//! ring 0.17, Kindred's own signer), timed on one thread.

use std::time::{Duration, Instant};

use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::{
    RsaPrivateKey,
    pkcs1v15::{Signature, SigningKey, VerifyingKey},
    pkcs8::EncodePrivateKey,
    signature::{SignatureEncoding, Signer, Verifier},
};
use sha2::Sha256;

use crate::error::Result;

#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub verify_per_sec: f64,
    pub sign_per_sec: f64,
    /// The same verify with ring (not what receives; for comparison only:
    /// see PERFORMANCE.md, "verifying with ring").
    pub ring_verify_per_sec: f64,
}

/// Time each operation for about `secs` seconds (on the calling thread).
pub fn measure(secs: f64) -> Result<Limit> {
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    let signer = SigningKey::<Sha256>::new(key.clone());
    let verifier = VerifyingKey::<Sha256>::new(key.to_public_key());
    let text = b"(request-target): post /inbox\nhost: localhost:8080\ndate: Tue, 01 Dec 2026 10:00:00 GMT\ndigest: SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let sig: Signature = signer.sign(text);
    let budget = Duration::from_secs_f64(secs.max(0.2));

    let verify_per_sec = rate(budget, || {
        let _ = verifier.verify(text, &sig).is_ok();
    });
    let der = key.to_pkcs8_der()?;
    let pair = RsaKeyPair::from_pkcs8(der.as_bytes())
        .map_err(|e| crate::error::Error(format!("ring cannot read the key: {e}")))?;
    let rng = ring::rand::SystemRandom::new();
    let mut out = vec![0; pair.public().modulus_len()];
    let sign_per_sec = rate(budget, || {
        let _ = pair.sign(&RSA_PKCS1_SHA256, &rng, text, &mut out);
    });
    // ring's signature is the same PKCS#1 v1.5 signature rsa makes.
    if out != signer.sign(text).to_vec() {
        return crate::error::fail("ring and rsa disagree on a signature");
    }
    if verifier.verify(text, &sig).is_err() {
        return crate::error::fail("RSA self-check failed: a fresh signature does not verify");
    }
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        pair.public().as_ref().to_vec(),
    );
    if public.verify(text, &out).is_err() {
        return crate::error::fail("ring cannot verify its own signature");
    }
    let ring_verify_per_sec = rate(budget, || {
        let _ = public.verify(text, &out).is_ok();
    });
    Ok(Limit {
        verify_per_sec,
        sign_per_sec,
        ring_verify_per_sec,
    })
}

fn rate(budget: Duration, mut op: impl FnMut()) -> f64 {
    op(); // warm up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..8 {
            op();
        }
        n += 8;
    }
    n as f64 / start.elapsed().as_secs_f64()
}
