//! Sign-in for the admin pages: a session cookie signed with `server.admin_token` (so the relay
//! keeps no session table, and changing the token signs everyone out), and the CSRF token that
//! every form carries, derived from the session. The admin token itself only ever travels in
//! the body of the sign-in form, never in a URL or a cookie.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// The cookie's name.
pub(crate) const COOKIE: &str = "shoprelay_admin";
/// How long a sign-in lasts.
pub(crate) const LIFETIME_SECS: u64 = 12 * 3600;

fn mac(token: &Secret, label: &str, parts: &[&str]) -> String {
    // HMAC accepts a key of any length, so new_from_slice cannot fail.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(token.expose().as_bytes()) else {
        return String::new();
    };
    m.update(label.as_bytes());
    for p in parts {
        m.update(b"\x1f");
        m.update(p.as_bytes());
    }
    hex(&m.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two strings in time that depends on neither (both are hashed first, so not even
/// their lengths leak).
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    bool::from(x.ct_eq(&y))
}

/// A new session value, valid until `now_secs + LIFETIME_SECS`.
pub(crate) fn issue(token: &Secret, now_secs: u64) -> String {
    let expires = (now_secs + LIFETIME_SECS).to_string();
    let nonce = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let sig = mac(token, "shoprelay-session", &[&expires, &nonce]);
    format!("{expires}.{nonce}.{sig}")
}

/// True when `value` is a session this token signed and it has not expired.
pub(crate) fn valid(token: &Secret, value: &str, now_secs: u64) -> bool {
    let mut parts = value.splitn(3, '.');
    let (Some(expires), Some(nonce), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let signed = same(sig, &mac(token, "shoprelay-session", &[expires, nonce]));
    signed && expires.parse::<u64>().is_ok_and(|e| e > now_secs)
}

/// A valid session's id (its nonce) and expiry, to sign it out.
pub(crate) fn id_and_expiry(value: &str) -> Option<(&str, u64)> {
    let mut parts = value.splitn(3, '.');
    let expires = parts.next()?.parse().ok()?;
    Some((parts.next()?, expires))
}

/// The CSRF token the forms of `session` carry.
pub(crate) fn csrf(token: &Secret, session: &str) -> String {
    mac(token, "shoprelay-csrf", &[session])
}

/// Every session cookie of a `Cookie` header (a browser may send two of the same name, e.g.
/// one set for another path or by another site on the same host).
pub(crate) fn from_cookie_header(header: &str) -> impl Iterator<Item = &str> {
    header.split(';').filter_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then_some(v)
    })
}

/// The `Set-Cookie` value for a session (None: one that signs out).
pub(crate) fn set_cookie(value: Option<&str>, secure: bool) -> String {
    let (v, age) = match value {
        Some(v) => (v, LIFETIME_SECS),
        None => ("", 0),
    };
    format!(
        "{COOKIE}={v}; Path=/admin; Max-Age={age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_valid_for_its_token_until_it_expires() {
        let t = Secret::new("admin-token-0123456789");
        let s = issue(&t, 1000);
        assert!(valid(&t, &s, 1000));
        assert!(valid(&t, &s, 1000 + LIFETIME_SECS - 1));
        assert!(!valid(&t, &s, 1000 + LIFETIME_SECS));
        assert!(!valid(&Secret::new("another-token"), &s, 1000));
        assert!(!s.contains("admin-token-0123456789"));
    }

    #[test]
    fn a_tampered_session_is_refused() {
        let t = Secret::new("admin-token-0123456789");
        let s = issue(&t, 1000);
        let (exp, rest) = s.split_once('.').expect("dot");
        let later = format!("{}.{rest}", exp.parse::<u64>().expect("n") + 1000);
        assert!(!valid(&t, &later, 1000));
        for junk in ["", ".", "..", "1.2", "x.y.z", "99999999999.a.b"] {
            assert!(!valid(&t, junk, 1000), "{junk}");
        }
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        let t = Secret::new("admin-token-0123456789");
        let (a, b) = (issue(&t, 1), issue(&t, 1));
        assert_ne!(csrf(&t, &a), csrf(&t, &b));
        assert_eq!(csrf(&t, &a), csrf(&t, &a));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_when_asked() {
        let c = set_cookie(Some("v"), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!set_cookie(Some("v"), false).contains("Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
        assert_eq!(
            from_cookie_header("a=1; shoprelay_admin=xyz; b=2; shoprelay_admin=v")
                .collect::<Vec<_>>(),
            ["xyz", "v"]
        );
        assert_eq!(from_cookie_header("a=1").next(), None);
    }
}
