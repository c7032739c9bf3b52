//! The limit every figure is compared with: RSA-2048 verify and sign
//! operations per second on one core, with the crates Kindred uses for each,
//! timed on one thread. Both are ring 0.17: verify PKCS#1 v1.5 with SHA-256
//! (`RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY`, the key as PKCS#1 DER,
//! as Kindred reads it from the actor's PEM), sign with Kindred's own signer.
//! The same verify with the rsa 0.9 crate (+ sha2), which Kindred verified
//! with before, is timed too, for comparison only.

use std::time::{Duration, Instant};

use ring::signature::{
    RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use rsa::{
    RsaPrivateKey,
    pkcs1::EncodeRsaPublicKey,
    pkcs1v15::{Signature, SigningKey, VerifyingKey},
    pkcs8::EncodePrivateKey,
    signature::{SignatureEncoding, Signer, Verifier},
};
use sha2::Sha256;

use crate::error::{Error, Result, fail};

#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Verify with ring: what Kindred verifies inbound signatures with.
    pub verify_per_sec: f64,
    /// Sign with ring: what Kindred signs with.
    pub sign_per_sec: f64,
    /// The same verify with the rsa crate (what Kindred verified with before
    /// it moved to ring; nothing in Kindred uses it now): for comparison only.
    pub rsa_verify_per_sec: f64,
}

/// Time each operation for about `secs` seconds (on the calling thread).
pub fn measure(secs: f64) -> Result<Limit> {
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
    let signer = SigningKey::<Sha256>::new(key.clone());
    let verifier = VerifyingKey::<Sha256>::new(key.to_public_key());
    let text = b"(request-target): post /inbox\nhost: localhost:8080\ndate: Tue, 01 Dec 2026 10:00:00 GMT\ndigest: SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let sig: Signature = signer.sign(text);
    let budget = Duration::from_secs_f64(secs.max(0.2));

    let der = key.to_pkcs8_der()?;
    let pair = RsaKeyPair::from_pkcs8(der.as_bytes())
        .map_err(|e| Error(format!("ring cannot read the key: {e}")))?;
    let rng = ring::rand::SystemRandom::new();
    let mut out = vec![0; pair.public().modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &rng, text, &mut out)
        .map_err(|e| Error(format!("ring cannot sign: {e}")))?;
    // The public key as Kindred verifies with it: PKCS#1 DER (what the
    // actor's PEM holds, unwrapped), the same bytes whichever crate writes it.
    let public_der = pair.public().as_ref().to_vec();
    if key.to_public_key().to_pkcs1_der()?.as_bytes() != public_der.as_slice() {
        return fail("ring and rsa disagree on the public key's PKCS#1 DER");
    }
    let public =
        UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, public_der);

    // Self-checks: ring's signature is the same PKCS#1 v1.5 signature rsa
    // makes, and each crate verifies it.
    if out != sig.to_vec() {
        return fail("ring and rsa disagree on a signature");
    }
    if verifier.verify(text, &sig).is_err() {
        return fail("RSA self-check failed: rsa does not verify a fresh signature");
    }
    if public.verify(text, &out).is_err() {
        return fail("RSA self-check failed: ring does not verify a fresh signature");
    }

    let verify_per_sec = rate(budget, || {
        let _ = public.verify(text, &out).is_ok();
    });
    let mut scratch = vec![0; pair.public().modulus_len()];
    let sign_per_sec = rate(budget, || {
        let _ = pair.sign(&RSA_PKCS1_SHA256, &rng, text, &mut scratch);
    });
    let rsa_verify_per_sec = rate(budget, || {
        let _ = verifier.verify(text, &sig).is_ok();
    });
    Ok(Limit {
        verify_per_sec,
        sign_per_sec,
        rsa_verify_per_sec,
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
