//! Outbound HTTP clients: one builder for ERPNext and the shop, with a sensitive
//! Authorization header (never logged), a timeout and our User-Agent; and the one encoder of a
//! URL path segment (or query value) that both clients, and their tools, put names into URLs
//! with.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

/// Why a client could not be built. Never contains the credential.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error("the {what} contains characters not allowed in an HTTP header")]
    InvalidCredential { what: &'static str },
    #[error("the HTTP client could not be built")]
    Build(#[source] reqwest::Error),
}

/// A client that sends `Authorization: <authorization>` on every request.
pub(crate) fn authorized_client(
    authorization: &str,
    what: &'static str,
    timeout_secs: u64,
) -> Result<reqwest::Client, ClientSetupError> {
    let mut auth = HeaderValue::from_str(authorization)
        .map_err(|_| ClientSetupError::InvalidCredential { what })?;
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(timeout_secs))
        .user_agent(concat!("shoprelay/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ClientSetupError::Build)
}

/// Percent-encodes one URL path segment (everything but unreserved characters).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
