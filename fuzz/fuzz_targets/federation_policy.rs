//! The federation policy's parsers: a domain entry as an admin types it, a
//! host matched against it, and a Mastodon block-list CSV read and written
//! back. Whatever is accepted must round-trip.
#![no_main]

use kindred::domain::policy::{DomainEntry, parse_mastodon_csv, write_mastodon_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(entry) = DomainEntry::parse(first) {
        // The canonical form parses to the same entry, and matches itself
        // unless it is a subdomains-only wildcard.
        let again = DomainEntry::parse(&entry.to_string());
        assert_eq!(again.as_ref(), Ok(&entry));
        let shown = entry.to_string();
        if !shown.starts_with("*.") {
            assert!(entry.matches(&shown));
        }
        let _ = entry.matches(rest);
    }
    if let Ok(import) = parse_mastodon_csv(text) {
        let csv = write_mastodon_csv(
            import
                .blocks
                .iter()
                .map(|b| (b.domain.to_string(), b.public_comment.clone()))
                .collect::<Vec<_>>()
                .iter()
                .map(|(d, c)| (d.as_str(), c.as_deref())),
        );
        let back = parse_mastodon_csv(&csv).expect("our own export parses");
        assert_eq!(back.blocks.len(), import.blocks.len());
    }
});
