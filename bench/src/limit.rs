//! The limit every figure is compared with: RSA-2048 verify and sign
//! operations per second on one core, with the crates Kindred uses
//! (rsa 0.9 PKCS#1 v1.5 + sha2), timed on one thread.

use std::time::{Duration, Instant};

use rsa::{
    RsaPrivateKey,
    pkcs1v15::{Signature, SigningKey, VerifyingKey},
    signature::{Signer, Verifier},
};
use sha2::Sha256;

use crate::error::Result;

#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub verify_per_sec: f64,
    pub sign_per_sec: f64,
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
    let sign_per_sec = rate(budget, || {
        let _ = signer.sign(text);
    });
    if verifier.verify(text, &sig).is_err() {
        return crate::error::fail("RSA self-check failed: a fresh signature does not verify");
    }
    Ok(Limit {
        verify_per_sec,
        sign_per_sec,
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
