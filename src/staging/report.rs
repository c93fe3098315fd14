//! What `staging-test` prints: one line per step with PASS, FAIL or SKIP and the time it took;
//! a failing step says what was expected, what was found and the likely cause; then a verdict.

use std::time::Duration;

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the text says what was seen.
    Pass(String),
    /// Not as it should be.
    Fail {
        expected: String,
        found: String,
        cause: String,
    },
    /// Not checked, and why.
    Skip(String),
}

/// A failed step: what was expected, what was found, and the likely cause.
pub(crate) fn fail(
    expected: impl Into<String>,
    found: impl Into<String>,
    cause: impl Into<String>,
) -> Outcome {
    Outcome::Fail {
        expected: expected.into(),
        found: found.into(),
        cause: cause.into(),
    }
}

/// One step of the cycle and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLine {
    /// 1 to 6 for the cycle's steps; None for setup and cleanup.
    pub number: Option<u8>,
    pub title: String,
    pub outcome: Outcome,
    pub took: Duration,
}

impl StepLine {
    /// `PASS  2. title: detail  (1.3 s)` and, for a failure, indented expected / found / cause
    /// lines.
    pub fn render(&self) -> String {
        let label = match self.number {
            Some(n) => format!("{n}. {}", self.title),
            None => self.title.clone(),
        };
        let took = format!("({:.1} s)", self.took.as_secs_f64());
        match &self.outcome {
            Outcome::Pass(detail) => format!("  PASS  {label}: {detail}  {took}"),
            Outcome::Skip(why) => format!("  SKIP  {label}: {why}  {took}"),
            Outcome::Fail {
                expected,
                found,
                cause,
            } => format!(
                "  FAIL  {label}  {took}\n        expected: {expected}\n        found:    {found}\n        likely cause: {cause}"
            ),
        }
    }

    /// True for a failure.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }
}

/// Every line of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<StepLine>,
}

impl Report {
    /// The line of cycle step `n` (1 to 6).
    pub fn step(&self, n: u8) -> Option<&StepLine> {
        self.lines.iter().find(|l| l.number == Some(n))
    }

    /// True when nothing failed (skips allowed).
    pub fn passed(&self) -> bool {
        !self.lines.iter().any(StepLine::failed)
    }

    /// `verdict: PASS (6 passed, 0 skipped)` or `verdict: FAIL (step 4 failed; ...)`.
    pub fn verdict(&self) -> String {
        let count = |f: fn(&Outcome) -> bool| {
            self.lines
                .iter()
                .filter(|l| l.number.is_some() && f(&l.outcome))
                .count()
        };
        let passed = count(|o| matches!(o, Outcome::Pass(_)));
        let skipped = count(|o| matches!(o, Outcome::Skip(_)));
        if self.passed() {
            format!(
                "verdict: PASS ({passed} passed, {skipped} skipped): the relay, ERPNext and the shop work together"
            )
        } else {
            let failed: Vec<String> = self
                .lines
                .iter()
                .filter(|l| l.failed())
                .map(|l| match l.number {
                    Some(n) => format!("step {n}"),
                    None => l.title.clone(),
                })
                .collect();
            format!(
                "verdict: FAIL ({} failed: {}; {passed} passed, {skipped} skipped)",
                failed.len(),
                failed.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reads_as_expected_found_and_cause() {
        let line = StepLine {
            number: Some(4),
            title: "the shop's level dropped".into(),
            outcome: Outcome::Fail {
                expected: "8".into(),
                found: "10".into(),
                cause: "the shop refused the push".into(),
            },
            took: Duration::from_millis(1300),
        };
        let text = line.render();
        assert!(
            text.starts_with("  FAIL  4. the shop's level dropped  (1.3 s)"),
            "{text}"
        );
        assert!(
            text.contains("expected: 8")
                && text.contains("found:    10")
                && text.contains("likely cause: the shop refused")
        );
        let report = Report { lines: vec![line] };
        assert!(!report.passed());
        assert!(
            report
                .verdict()
                .starts_with("verdict: FAIL (1 failed: step 4;"),
            "{}",
            report.verdict()
        );
    }

    #[test]
    fn skips_do_not_fail_the_run() {
        let report = Report {
            lines: vec![
                StepLine {
                    number: Some(1),
                    title: "order".into(),
                    outcome: Outcome::Pass("202".into()),
                    took: Duration::ZERO,
                },
                StepLine {
                    number: Some(6),
                    title: "shop shows it".into(),
                    outcome: Outcome::Skip("no read endpoint".into()),
                    took: Duration::ZERO,
                },
            ],
        };
        assert!(report.passed());
        assert!(
            report.verdict().contains("1 passed, 1 skipped"),
            "{}",
            report.verdict()
        );
        assert_eq!(report.step(6).map(|l| l.failed()), Some(false));
    }
}
