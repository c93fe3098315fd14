//! The one exponential backoff with jitter: how long a loop waits after failing again (the
//! worker loops while the store or a peer fails, the order queue while ERPNext is unavailable).
//! Pure: the caller passes the jitter, so a test can pin it.

use std::time::Duration;

/// Delay before retry number `attempt` (1 for the first retry): `base * 2^(attempt-1)`, capped
/// at `max`, then "equal jitter": a uniform value between half and all of it. `jitter` is in
/// [0, 1).
pub fn backoff(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(32);
    let full = base.saturating_mul(1u32 << exp.min(31)).min(max);
    let j = jitter.clamp(0.0, 1.0);
    full.mul_f64(0.5 + 0.5 * j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jitters_within_half() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(60);
        assert_eq!(backoff(1, base, max, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(2, base, max, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff(4, base, max, 1.0), Duration::from_millis(4000));
        assert_eq!(backoff(30, base, max, 1.0), max);
        assert_eq!(backoff(1000, base, max, 1.0), max);
        assert_eq!(backoff(2, base, max, 0.0), Duration::from_millis(500));
        for j in [0.0, 0.3, 0.99] {
            let d = backoff(3, base, max, j);
            assert!(d >= Duration::from_millis(1000) && d <= Duration::from_millis(2000));
        }
    }
}
