//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default given by the subcommand), and
//! errors printed with their causes.
//! Plain text, coloured only when stderr is a terminal (a log file gets no escape codes), or one
//! JSON object per line with `SHOPRELAY_LOG_FORMAT=json`. No line carries a secret: tokens,
//! API secrets, webhook secrets and signatures are never passed to the log (see `Secret`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text; `colour` adds ANSI colours.
    Text { colour: bool },
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The format for `SHOPRELAY_LOG_FORMAT` (`json`, or anything else for text) and whether
    /// stderr is a terminal.
    pub fn choose(setting: Option<&str>, terminal: bool) -> Self {
        match setting.map(|s| s.trim().to_ascii_lowercase()) {
            Some(s) if s == "json" => Self::Json,
            _ => Self::Text { colour: terminal },
        }
    }
}

/// Installs the subscriber for the process. Call once, from `main`.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let format = LogFormat::choose(
        std::env::var("SHOPRELAY_LOG_FORMAT").ok().as_deref(),
        std::io::stderr().is_terminal(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text { colour } => builder.with_ansi(colour).try_init(),
    };
}

/// The error and its causes, joined, for logs and answers.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_json_when_asked() {
        assert_eq!(
            LogFormat::choose(None, false),
            LogFormat::Text { colour: false }
        );
        assert_eq!(
            LogFormat::choose(None, true),
            LogFormat::Text { colour: true }
        );
        assert_eq!(LogFormat::choose(Some("JSON"), true), LogFormat::Json);
        assert_eq!(
            LogFormat::choose(Some("text"), false),
            LogFormat::Text { colour: false }
        );
    }
}
