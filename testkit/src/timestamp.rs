//! Frappe's naive timestamps as the emulated site prints and orders them: `modified` and
//! `creation` look like `2025-06-02 14:05:07.654321` (the fraction only when not zero), in the
//! site's time zone. Converted to and from microseconds since 1970-01-01 00:00 of that zone.

use std::cmp::Ordering;

/// Days before the first of each month in a common year.
const DAYS_BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Leap days in the years before `y` since year 0.
fn leap_days_before(y: i64) -> i64 {
    let p = y - 1;
    p.div_euclid(4) - p.div_euclid(100) + p.div_euclid(400) + 1
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar.
fn days(y: i64, m: usize, d: i64) -> i64 {
    let in_year = DAYS_BEFORE[m - 1] + i64::from(m > 2 && leap(y)) + d - 1;
    (y * 365 + leap_days_before(y) + in_year) - (1970 * 365 + leap_days_before(1970))
}

/// The date `n` days after 1970-01-01.
fn date(n: i64) -> (i64, usize, i64) {
    // A first guess of the year, then corrected by at most a step each way.
    let mut y = 1970 + n.div_euclid(365);
    while days(y, 1, 1) > n {
        y -= 1;
    }
    while days(y + 1, 1, 1) <= n {
        y += 1;
    }
    let in_year = n - days(y, 1, 1);
    let mut m = 12;
    while DAYS_BEFORE[m - 1] + i64::from(m > 2 && leap(y)) > in_year {
        m -= 1;
    }
    let d = in_year - DAYS_BEFORE[m - 1] - i64::from(m > 2 && leap(y)) + 1;
    (y, m, d)
}

/// Microseconds since 1970-01-01 00:00 of a Frappe timestamp (`T` or a space between date and
/// time); None when it is not one.
pub fn micros(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date_part, time_part) = s.split_once([' ', 'T'])?;
    let mut ymd = date_part.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (hms, frac) = time_part.split_once('.').unwrap_or((time_part, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || frac.chars().any(|c| !c.is_ascii_digit()) {
        return None;
    }
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    let us: i64 = frac.parse().ok()?;
    let secs = days(y, usize::try_from(m).ok()?, d) * 86_400 + h * 3600 + mi * 60 + sec;
    Some(secs * 1_000_000 + us)
}

/// The Frappe timestamp `t` microseconds after 1970-01-01 00:00.
pub fn format(t: i64) -> String {
    let (day, rem) = (t.div_euclid(86_400_000_000), t.rem_euclid(86_400_000_000));
    let (y, m, d) = date(day);
    let (s, us) = (rem / 1_000_000, rem % 1_000_000);
    let (h, mi, sec) = (s / 3600, (s / 60) % 60, s % 60);
    if us == 0 {
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{sec:02}")
    } else {
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{sec:02}.{us:06}")
    }
}

/// Two timestamps in time order (as text when one does not parse).
pub fn cmp(a: &str, b: &str) -> Ordering {
    match (micros(a), micros(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_go_there_and_back() {
        assert_eq!(micros("1970-01-01 00:00:00"), Some(0));
        assert_eq!(micros("1970-01-02 00:00:01.5"), Some(86_401_500_000));
        // 2000-02-29 is 11016 days after 1970-01-01.
        assert_eq!(micros("2000-02-29 00:00:00"), Some(11_016 * 86_400_000_000));
        for s in [
            "2025-06-02 14:05:07.654321",
            "2024-12-31 23:59:59",
            "1969-12-31 23:59:59.000001",
            "2100-03-01 00:00:00",
        ] {
            assert_eq!(format(micros(s).expect(s)), s);
        }
        assert_eq!(micros("2025-06-02T14:05:07"), micros("2025-06-02 14:05:07"));
        assert_eq!(micros("not a time"), None);
        assert_eq!(micros("2025-13-01 00:00:00"), None);
        assert_eq!(
            cmp("2025-06-02 14:05:07.9", "2025-06-02 14:05:07.10"),
            Ordering::Greater
        );
    }
}
