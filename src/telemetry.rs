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
        LogFormat::Text { colour } => builder
            .with_ansi(colour)
            .fmt_fields(one_line_fields())
            .try_init(),
    };
}

/// Plain-text fields with every control character escaped (`\n`, `\r`, `\u{1b}`, ...), so
/// text from outside (a shop's or ERPNext's answer in an error) can neither start a forged log
/// line nor send escape codes to a terminal.
pub fn one_line_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let raw = format!("{value:?}");
        let text = one_line(&raw);
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{field}={text}")
        }
    })
    .delimited(" ")
}

/// `text` with its control characters escaped.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
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

    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_newline_in_outside_text_cannot_forge_a_plain_text_log_line() {
        let buf = Buffer::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .fmt_fields(one_line_fields())
            .finish();
        let answer = "500 oops\n2026-12-03T12:00:00Z  INFO shoprelay: admin signed in\r\u{1b}[31m";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(reason = %answer, "push failed: {answer}");
        });
        let text = String::from_utf8(buf.0.lock().expect("buffer").clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("oops\\n2026"), "{text}");
        assert!(text.contains("\\u{1b}[31m"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }

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
