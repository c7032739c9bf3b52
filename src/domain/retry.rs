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
    fn window() {
        let t0 = Utc::now();
        assert!(!window_exceeded(t0, t0 + Duration::hours(71), 72));
        assert!(window_exceeded(t0, t0 + Duration::hours(73), 72));
    }
}
