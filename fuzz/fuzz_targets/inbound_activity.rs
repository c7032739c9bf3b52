//! Incoming activity parsing and verification, as the inbox does it before
//! any I/O: the signature header's parsing and required coverage, the Date
//! check, the Digest check, the activity's dispatch type, and a Create's post turned into
//! sanitised HTML and tags. No input may panic, hang or grow without bound.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use kindred::federation::{
    activities::InboxActivity,
    inbox::{check_date, check_digest, check_signed_headers},
    objects::post::{PostJson, body_from_json},
    signing::{SignatureHeader, verify},
};
use libfuzzer_sys::fuzz_target;

/// A fixed RSA public key (verification must fail cleanly, never panic).
const KEY: &str = include_str!("../../tests/fixtures/fuzz_public_key.pem");

fuzz_target!(|data: &[u8]| {
    // First line: the Signature header; second: Date; the rest: the body.
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let sig = parts.next().unwrap_or_default();
    let date = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();

    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(sig) {
        headers.insert("signature", v);
    }
    if let Ok(v) = HeaderValue::from_bytes(date) {
        headers.insert("date", v.clone());
        headers.insert("host", v.clone());
        headers.insert("digest", v);
    }
    let _ = check_date(&headers, chrono::Utc::now(), 300);
    let _ = check_digest(&headers, body);
    if let Some(parsed) = std::str::from_utf8(sig)
        .ok()
        .and_then(SignatureHeader::parse)
    {
        let _ = check_signed_headers(&parsed);
        let _ = verify(&parsed, &headers, "POST", "/inbox", KEY, chrono::Utc::now());
    }

    if let Ok(activity) = serde_json::from_slice::<InboxActivity>(body) {
        let _ = serde_json::to_vec(&activity);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let object = value.get("object").cloned().unwrap_or(value);
        if let Ok(post) = serde_json::from_value::<PostJson>(object) {
            let b = body_from_json(&post);
            assert!(
                !b.html.contains("<script"),
                "sanitiser let a script through"
            );
            assert!(b.tags.len() <= 50);
        }
    }
});
