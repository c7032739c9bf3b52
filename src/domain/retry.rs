//! When to retry a delivery, and when to give up.

use chrono::{DateTime, Duration, Utc};

/// Capped exponential backoff: `base · 2^(attempt-1)`, at most `max`, then
/// ±25 % jitter from `jitter` (a number in [0, 1)) so retries don't stampede.
pub fn backoff_delay(attempt: i32, base_secs: i64, max_secs: i64, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).clamp(0, 30) as u32;
    let raw = base_secs.saturating_mul(1_i64 << exp).min(max_secs).max(1);
    let factor = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
    Duration::milliseconds(((raw as f64) * 1000.0 * factor) as i64)
}

/// A delivery first queued at `created` is given up after `window_hours`.
pub fn window_exceeded(created: DateTime<Utc>, now: DateTime<Utc>, window_hours: i64) -> bool {
    now - created > Duration::hours(window_hours)
}

/// What an inbox's answer means for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// A final refusal (4xx other than 401, 408, 429): never retried.
    Refused,
    /// Try again later: 5xx, 401 (keys may be refreshing), 408, 429, redirects.
    Retry,
}

pub fn classify(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        401 | 408 | 429 => Outcome::Retry,
        400..=499 => Outcome::Refused,
        _ => Outcome::Retry,
    }
}

/// `Retry-After` as seconds or an HTTP date, relative to `now`; None when
/// absent, unreadable or in the past.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return (secs > 0).then(|| Duration::seconds(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    let d = at - now;
    (d > Duration::zero()).then_some(d)
}

/// The wait before the next attempt: our backoff, or longer when the remote
/// asked for it — but never more than `cap` (a remote cannot park our queue).
pub fn next_delay(backoff: Duration, retry_after: Option<Duration>, cap: Duration) -> Duration {
    match retry_after {
        Some(r) if r > backoff => r.min(cap).max(backoff),
        _ => backoff,
    }
}

/// The per-instance circuit breaker: after `threshold` failures in a row the
/// instance is left alone for `base`, doubling with each further failure (each
/// failed probe), up to `max`. None: keep sending.
pub fn breaker_open_for(
    failures: i32,
    threshold: i32,
    base_secs: i64,
    max_secs: i64,
) -> Option<Duration> {
    if threshold <= 0 || failures < threshold {
        return None;
    }
    let steps = u32::try_from(failures - threshold)
        .unwrap_or(u32::MAX)
        .min(30);
    let secs = base_secs
        .max(1)
        .saturating_mul(1i64 << steps)
        .min(max_secs.max(1));
    Some(Duration::seconds(secs))
}

/// Does this answer say the instance is down or overloaded (as opposed to up
/// and answering, even with a refusal)? `None`: no answer at all.
pub fn counts_against_instance(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s >= 500 || s == 408 || s == 429,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_with_bounded_jitter() {
        let mid = |a| backoff_delay(a, 30, 3600, 0.5).num_seconds();
        assert_eq!(mid(1), 30);
        assert_eq!(mid(2), 60);
        assert_eq!(mid(3), 120);
        assert_eq!(mid(10), 3600);
        assert_eq!(mid(1000), 3600);
        let lo = backoff_delay(2, 30, 3600, 0.0).num_milliseconds();
        let hi = backoff_delay(2, 30, 3600, 0.999).num_milliseconds();
        assert_eq!(lo, 45_000);
        assert!((74_900..=75_000).contains(&hi), "{hi}");
    }

    #[test]
    fn breaker_opens_after_threshold_and_backs_off() {
        assert_eq!(breaker_open_for(4, 5, 60, 3600), None);
        assert_eq!(
            breaker_open_for(5, 5, 60, 3600),
            Some(Duration::seconds(60))
        );
        assert_eq!(
            breaker_open_for(6, 5, 60, 3600),
            Some(Duration::seconds(120))
        );
        assert_eq!(
            breaker_open_for(50, 5, 60, 3600),
            Some(Duration::seconds(3600))
        );
        assert_eq!(breaker_open_for(50, 0, 60, 3600), None, "0 turns it off");
        assert!(counts_against_instance(None));
        assert!(counts_against_instance(Some(503)));
        assert!(counts_against_instance(Some(429)));
        assert!(!counts_against_instance(Some(401)));
        assert!(!counts_against_instance(Some(410)));
    }

    #[test]
    fn window() {
        let t0 = Utc::now();
        assert!(!window_exceeded(t0, t0 + Duration::hours(71), 72));
        assert!(window_exceeded(t0, t0 + Duration::hours(73), 72));
    }

    #[test]
    fn statuses_and_retry_after() {
        assert_eq!(classify(202), Outcome::Delivered);
        assert_eq!(classify(403), Outcome::Refused);
        assert_eq!(classify(410), Outcome::Refused);
        for s in [401, 408, 429, 500, 502, 503, 302] {
            assert_eq!(classify(s), Outcome::Retry, "{s}");
        }
        let now = Utc::now();
        assert_eq!(parse_retry_after("120", now), Some(Duration::seconds(120)));
        assert_eq!(parse_retry_after("0", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        let later = (now + Duration::seconds(600)).to_rfc2822();
        let d = parse_retry_after(&later, now).map(|d| d.num_seconds());
        assert!(d.is_some_and(|d| (599..=600).contains(&d)), "{d:?}");
        let cap = Duration::hours(6);
        let b = Duration::seconds(30);
        assert_eq!(next_delay(b, None, cap), b);
        assert_eq!(next_delay(b, Some(Duration::seconds(10)), cap), b);
        assert_eq!(
            next_delay(b, Some(Duration::seconds(900)), cap),
            Duration::seconds(900)
        );
        assert_eq!(next_delay(b, Some(Duration::days(30)), cap), cap);
    }
}
