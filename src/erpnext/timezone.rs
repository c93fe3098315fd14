//! The site's wall clock: ERPNext stamps `modified` with a naive timestamp in the time zone of
//! its System Settings, so the server's HTTP `Date` (UTC) is turned into that zone's local time
//! with the system's time zone database (TZif files under `$TZDIR` or `/usr/share/zoneinfo`,
//! including the POSIX rule at their end for dates past the last listed transition).

use std::path::PathBuf;

use crate::model::{civil_from_days, days_from_civil, Modified};

/// Why a UTC instant could not be turned into the site's local time.
#[derive(Debug, thiserror::Error)]
pub enum TzError {
    #[error("\"{0}\" is not a time zone name")]
    BadName(String),
    #[error("the time zone database has no readable entry {path}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the time zone file for \"{0}\" cannot be read as TZif")]
    Malformed(String),
}

/// Local time of `utc_secs` (seconds since 1970-01-01 UTC) in the IANA zone `zone`, formatted
/// the way Frappe prints `modified` (`YYYY-MM-DD HH:MM:SS`).
pub fn local_time(zone: &str, utc_secs: i64) -> Result<Modified, TzError> {
    let offset = utc_offset(zone, utc_secs)?;
    Ok(Modified::from_micros((utc_secs + offset) * 1_000_000))
}

/// The offset from UTC in seconds (east positive) of `zone` at `utc_secs`.
pub fn utc_offset(zone: &str, utc_secs: i64) -> Result<i64, TzError> {
    let zone = zone.trim();
    if matches!(zone, "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Zulu" | "") {
        return Ok(0);
    }
    let valid = zone
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        && !zone.starts_with('/')
        && !zone.split('/').any(|part| part.is_empty() || part == "..");
    if !valid {
        return Err(TzError::BadName(zone.to_owned()));
    }
    let dir = std::env::var_os("TZDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"));
    let path = dir.join(zone);
    let bytes = std::fs::read(&path).map_err(|source| TzError::Unreadable { path, source })?;
    Tzif::parse(&bytes)
        .and_then(|t| t.offset_at(utc_secs))
        .ok_or_else(|| TzError::Malformed(zone.to_owned()))
}

/// The parts of a TZif file the offset needs.
struct Tzif {
    /// (transition time, index into `offsets`), ascending.
    transitions: Vec<(i64, usize)>,
    /// (UTC offset, is DST) per local time type.
    offsets: Vec<(i64, bool)>,
    /// The POSIX TZ rule for instants after the last transition (version 2 and later).
    footer: Option<String>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn be(&mut self, n: usize) -> Option<i64> {
        let s = self.take(n)?;
        let mut v: i64 = if s.first().is_some_and(|b| b & 0x80 != 0) {
            -1
        } else {
            0
        };
        for b in s {
            v = (v << 8) | i64::from(*b);
        }
        Some(v)
    }

    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.be(4)?).ok()
    }
}

impl Tzif {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let header = |r: &mut Reader<'_>| -> Option<(u8, [usize; 6])> {
            if r.take(4)? != b"TZif" {
                return None;
            }
            let version = *r.take(1)?.first()?;
            r.take(15)?;
            let mut c = [0usize; 6];
            for slot in &mut c {
                *slot = r.count()?;
            }
            Some((version, c))
        };
        let (version, c) = header(&mut r)?;
        // [isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt]
        let block = |r: &mut Reader<'_>, c: [usize; 6], width: usize| -> Option<Tzif> {
            let [isut, isstd, leap, timecnt, typecnt, charcnt] = c;
            let mut times = Vec::with_capacity(timecnt.min(r.bytes.len()));
            for _ in 0..timecnt {
                times.push(r.be(width)?);
            }
            let idx = r.take(timecnt)?;
            let mut offsets = Vec::with_capacity(typecnt.min(r.bytes.len()));
            for _ in 0..typecnt {
                let off = r.be(4)?;
                let dst = *r.take(1)?.first()? != 0;
                r.take(1)?;
                offsets.push((off, dst));
            }
            r.take(charcnt)?;
            r.take(leap.checked_mul(width + 4)?)?;
            r.take(isstd)?;
            r.take(isut)?;
            let transitions = times
                .into_iter()
                .zip(idx.iter().map(|i| usize::from(*i)))
                .filter(|(_, i)| *i < typecnt)
                .collect();
            Some(Tzif {
                transitions,
                offsets,
                footer: None,
            })
        };
        let v1 = block(&mut r, c, 4)?;
        if version < b'2' {
            return Some(v1);
        }
        let (_, c2) = header(&mut r)?;
        let mut v2 = block(&mut r, c2, 8)?;
        let rest = r.bytes.get(r.pos..).unwrap_or_default();
        let text = String::from_utf8_lossy(rest);
        v2.footer = text
            .trim_matches('\n')
            .lines()
            .next()
            .map(str::to_owned)
            .filter(|s| !s.is_empty());
        Some(v2)
    }

    fn offset_at(&self, t: i64) -> Option<i64> {
        let after_last = self.transitions.last().is_none_or(|(last, _)| t >= *last);
        if after_last {
            if let Some(rule) = self.footer.as_deref().and_then(PosixTz::parse) {
                return Some(rule.offset_at(t));
            }
        }
        match self.transitions.iter().rev().find(|(at, _)| *at <= t) {
            Some((_, i)) => self.offsets.get(*i).map(|o| o.0),
            // Before the first transition: the first standard time type.
            None => self
                .offsets
                .iter()
                .find(|o| !o.1)
                .or(self.offsets.first())
                .map(|o| o.0),
        }
    }
}

/// A POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3`; offsets east-positive.
struct PosixTz {
    std: i64,
    dst: Option<(i64, DayRule, i64, DayRule, i64)>,
}

#[derive(Clone, Copy)]
enum DayRule {
    /// Mm.w.d: day `d` (0 Sunday) of week `w` (5: the last) of month `m`.
    Month(i64, i64, i64),
    /// Jn: day 1..365, February 29 never counted.
    Julian1(i64),
    /// n: day 0..365, February 29 counted.
    Julian0(i64),
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn name(&mut self) -> Option<()> {
        if self.eat(b'<') {
            while self.peek()? != b'>' {
                self.i += 1;
            }
            self.i += 1;
            return Some(());
        }
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
        (self.i > start).then_some(())
    }

    fn number(&mut self) -> Option<i64> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(self.s.get(start..self.i)?)
            .ok()?
            .parse()
            .ok()
    }

    /// A number in `range`.
    fn number_in(&mut self, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        self.number().filter(|n| range.contains(n))
    }

    /// `[+-]hh[:mm[:ss]]` in seconds (hours up to 167, as POSIX and TZif allow).
    fn hms(&mut self) -> Option<i64> {
        let sign = if self.eat(b'-') {
            -1
        } else {
            self.eat(b'+');
            1
        };
        let mut secs = self.number_in(0..=167)? * 3600;
        if self.eat(b':') {
            secs += self.number_in(0..=59)? * 60;
            if self.eat(b':') {
                secs += self.number_in(0..=59)?;
            }
        }
        Some(sign * secs)
    }

    fn day_rule(&mut self) -> Option<(DayRule, i64)> {
        let rule = if self.eat(b'M') {
            let m = self.number_in(1..=12)?;
            self.eat(b'.').then_some(())?;
            let w = self.number_in(1..=5)?;
            self.eat(b'.').then_some(())?;
            DayRule::Month(m, w, self.number_in(0..=6)?)
        } else if self.eat(b'J') {
            DayRule::Julian1(self.number_in(1..=365)?)
        } else {
            DayRule::Julian0(self.number_in(0..=365)?)
        };
        let time = if self.eat(b'/') { self.hms()? } else { 7200 };
        Some((rule, time))
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days since 1970-01-01 of the day `rule` names in `year`.
fn rule_day(year: i64, rule: DayRule) -> i64 {
    let jan1 = days_from_civil(year, 1, 1);
    match rule {
        DayRule::Julian1(n) => jan1 + n - 1 + i64::from(is_leap(year) && n >= 60),
        DayRule::Julian0(n) => jan1 + n,
        DayRule::Month(m, w, d) => {
            let first = days_from_civil(year, m, 1);
            let next = if m == 12 {
                days_from_civil(year + 1, 1, 1)
            } else {
                days_from_civil(year, m + 1, 1)
            };
            // 1970-01-01 was a Thursday (4).
            let wday = (first + 4).rem_euclid(7);
            let mut day = first + (d - wday).rem_euclid(7) + (w - 1) * 7;
            while day >= next {
                day -= 7;
            }
            day
        }
    }
}

impl PosixTz {
    fn parse(s: &str) -> Option<Self> {
        let mut c = Cursor {
            s: s.as_bytes(),
            i: 0,
        };
        c.name()?;
        let std = -c.hms()?;
        if c.peek().is_none() {
            return Some(Self { std, dst: None });
        }
        c.name()?;
        let dst_off = match c.peek() {
            Some(b',') | None => std + 3600,
            _ => -c.hms()?,
        };
        if !c.eat(b',') {
            // No rule given: POSIX leaves it to the implementation; keep standard time.
            return Some(Self { std, dst: None });
        }
        let (start, start_t) = c.day_rule()?;
        c.eat(b',').then_some(())?;
        let (end, end_t) = c.day_rule()?;
        Some(Self {
            std,
            dst: Some((dst_off, start, start_t, end, end_t)),
        })
    }

    fn offset_at(&self, t: i64) -> i64 {
        let Some((dst, start, start_t, end, end_t)) = self.dst else {
            return self.std;
        };
        let year = civil_from_days((t + self.std).div_euclid(86_400)).0;
        // The start is given in standard time, the end in daylight time.
        let begins = rule_day(year, start) * 86_400 + start_t - self.std;
        let ends = rule_day(year, end) * 86_400 + end_t - dst;
        let in_dst = if begins < ends {
            begins <= t && t < ends
        } else {
            !(ends <= t && t < begins)
        };
        if in_dst {
            dst
        } else {
            self.std
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        Modified(s.into()).micros().expect("time") / 1_000_000
    }

    #[test]
    fn posix_rules_switch_at_the_right_instants() {
        let berlin = PosixTz::parse("CET-1CEST,M3.5.0,M10.5.0/3").expect("rule");
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(berlin.offset_at(at("2026-03-29 00:59:59")), 3600);
        assert_eq!(berlin.offset_at(at("2026-03-29 01:00:00")), 7200);
        assert_eq!(berlin.offset_at(at("2026-10-25 00:59:59")), 7200);
        assert_eq!(berlin.offset_at(at("2026-10-25 01:00:00")), 3600);
        let sydney = PosixTz::parse("AEST-10AEDT,M10.1.0,M4.1.0/3").expect("rule");
        assert_eq!(sydney.offset_at(at("2026-01-15 00:00:00")), 39_600);
        assert_eq!(sydney.offset_at(at("2026-07-15 00:00:00")), 36_000);
        let kolkata = PosixTz::parse("IST-5:30").expect("rule");
        assert_eq!(kolkata.offset_at(0), 19_800);
        let quoted = PosixTz::parse("<-03>3").expect("rule");
        assert_eq!(quoted.offset_at(0), -10_800);
    }

    mod never_panics {
        use super::super::{PosixTz, Tzif};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn on_arbitrary_rules(rule in "[A-Z<>+0-9:,./MJ-]{0,40}", t in any::<i32>()) {
                if let Some(r) = PosixTz::parse(&rule) {
                    let _ = r.offset_at(i64::from(t));
                }
            }

            #[test]
            fn on_arbitrary_files(mut bytes in prop::collection::vec(any::<u8>(), 0..200), t in any::<i32>()) {
                if bytes.len() >= 5 {
                    bytes[..5].copy_from_slice(b"TZif2");
                }
                if let Some(z) = Tzif::parse(&bytes) {
                    let _ = z.offset_at(i64::from(t));
                }
            }
        }
    }

    #[test]
    fn zone_names_cannot_leave_the_database() {
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "Asia/../../x",
            "a b",
            "Europe//Berlin",
        ] {
            assert!(
                matches!(utc_offset(bad, 0), Err(TzError::BadName(_))),
                "{bad}"
            );
        }
        assert_eq!(utc_offset("UTC", 0).expect("utc"), 0);
    }

    #[test]
    fn the_system_database_gives_local_time_when_it_is_installed() {
        let noon = at("2026-11-26 12:00:00");
        match local_time("Asia/Kolkata", noon) {
            Ok(local) => assert_eq!(local.0, "2026-11-26 17:30:00"),
            Err(TzError::Unreadable { .. }) => {
                eprintln!("no time zone database on this machine; skipped");
                return;
            }
            Err(e) => panic!("{e}"),
        }
        assert_eq!(
            local_time("Europe/Berlin", noon).expect("berlin").0,
            "2026-11-26 13:00:00"
        );
        assert_eq!(
            local_time("Europe/Berlin", at("2026-07-01 12:00:00"))
                .expect("berlin")
                .0,
            "2026-07-01 14:00:00"
        );
        assert_eq!(
            local_time("America/New_York", noon).expect("ny").0,
            "2026-11-26 07:00:00"
        );
        assert!(matches!(
            local_time("Nowhere/Atlantis", noon),
            Err(TzError::Unreadable { .. })
        ));
    }
}
