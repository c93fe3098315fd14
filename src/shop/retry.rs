//! Pure retry policy of the shop pushes: which answers are retried, the retry schedule and
//! Retry-After. (The exponential backoff of the relay's own loops is `crate::backoff`.)

use std::time::{Duration, SystemTime};

/// What to do with a shop answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// 2xx: the shop has it.
    Done,
    /// 408, 425, 429, 5xx (and transport errors): try again later.
    Retry,
    /// Any other status: the shop will never accept it; keep it for the admin.
    DeadLetter,
}

/// Classifies an HTTP status as the shop contract says: 2xx done; 408, 425, 429 and 5xx
/// retried; any other status refused for good.
pub fn classify(status: u16) -> Disposition {
    match status {
        200..=299 => Disposition::Done,
        408 | 425 | 429 | 500..=599 => Disposition::Retry,
        _ => Disposition::DeadLetter,
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (relative to `now`).
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// When a failed push is tried again: the delay before each attempt, the first at once
/// (`shop.retry_schedule_secs`). Pure; the attempts made are kept in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    steps: Vec<Duration>,
}

impl RetrySchedule {
    /// A schedule of delays before each attempt; an empty list means one attempt.
    pub fn new(steps: Vec<Duration>) -> Self {
        Self { steps }
    }

    /// How many attempts a push gets before it becomes a dead letter.
    pub fn attempts(&self) -> usize {
        self.steps.len().max(1)
    }

    /// The delay before the next attempt after `attempts` failed ones, or None when the
    /// schedule is exhausted. The shop's `Retry-After` is honoured: never sooner than the
    /// schedule's step, never later than its longest delay.
    pub fn next_delay(&self, attempts: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let step = *self.steps.get(attempts as usize)?;
        let longest = self.steps.iter().copied().max().unwrap_or(step);
        Some(match retry_after {
            Some(ra) => ra.max(step).min(longest.max(step)),
            None => step,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_contract_says() {
        for s in [200, 201, 202, 204] {
            assert_eq!(classify(s), Disposition::Done);
        }
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert_eq!(classify(s), Disposition::Retry, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 410, 413, 422, 301] {
            assert_eq!(classify(s), Disposition::DeadLetter, "{s}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        let schedule = RetrySchedule::new(vec![
            Duration::ZERO,
            Duration::from_millis(100),
            Duration::from_secs(60),
        ]);
        assert_eq!(
            schedule.next_delay(1, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            schedule.next_delay(1, Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(60))
        );
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    #[test]
    fn the_schedule_gives_each_delay_then_ends() {
        let s = RetrySchedule::new(
            [0, 5, 300]
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
        );
        assert_eq!(s.attempts(), 3);
        assert_eq!(s.next_delay(1, None), Some(Duration::from_secs(5)));
        assert_eq!(s.next_delay(2, None), Some(Duration::from_secs(300)));
        assert_eq!(
            s.next_delay(3, None),
            None,
            "three attempts, then a dead letter"
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(5)),
            "Retry-After never makes it sooner"
        );
    }
}
