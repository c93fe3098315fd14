//! Signatures: Frappe's `X-Frappe-Webhook-Signature` (base64 HMAC-SHA256 of the raw body) and
//! Standard Webhooks (`v1,` base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`). Constant time.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. Never carries the secret or the expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Frappe-Webhook-Signature header is missing; enable security on the ERPNext Webhook and set its secret")]
    Missing,
    #[error("the X-Frappe-Webhook-Signature header is not a base64 HMAC-SHA256 value")]
    Malformed,
    #[error(
        "the X-Frappe-Webhook-Signature header does not match the body for any configured secret"
    )]
    Mismatch,
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    }
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // `new_from_slice` only fails for fixed-size-key MACs; HMAC has none. Fall back to an
    // empty key rather than panic.
    <HmacSha256 as Mac>::new(&Default::default())
}

/// The value Frappe puts in `X-Frappe-Webhook-Signature` for `body` signed with `secret`.
pub fn frappe_signature(secret: &str, body: &[u8]) -> String {
    let mut m = mac(secret.as_bytes());
    m.update(body);
    STANDARD.encode(m.finalize().into_bytes())
}

/// Checks a Frappe signature header against every configured secret (rotation), in constant
/// time per secret.
pub fn verify_frappe(
    secrets: &[Secret],
    header: Option<&[u8]>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let text = std::str::from_utf8(header)
        .map_err(|_| SignatureError::Malformed)?
        .trim();
    let given = STANDARD
        .decode(text)
        .map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut ok = false;
    for secret in secrets {
        let mut m = mac(secret.expose().as_bytes());
        m.update(body);
        // verify_slice compares in constant time.
        ok |= m.verify_slice(&given).is_ok();
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The key bytes of a Standard Webhooks secret: `whsec_` + base64 (with or without `=`
/// padding, as the official libraries accept it), or the raw bytes otherwise.
pub fn standard_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD
            .decode(b64)
            .or_else(|_| STANDARD_NO_PAD.decode(b64.trim_end_matches('=')))
            .unwrap_or_else(|_| secret.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

/// The `webhook-signature` value (`v1,<base64>`) for one Standard Webhooks message.
pub fn standard_signature(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut m = mac(&standard_key(secret));
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("v1,{}", STANDARD.encode(m.finalize().into_bytes()))
}

/// `webhook-signature` for every secret, space-separated (several while a secret rotates).
pub fn standard_signatures(secrets: &[Secret], id: &str, timestamp: u64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| standard_signature(s.expose(), id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a Standard Webhooks signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StandardError {
    #[error("the webhook-id, webhook-timestamp or webhook-signature header is missing")]
    Missing,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than {0} seconds from now (replayed, or a clock is wrong)")]
    OutsideTolerance(u64),
    #[error("webhook-signature holds no well-formed `v1,<base64 of 32 bytes>` signature")]
    Malformed,
    #[error("no signature in webhook-signature matches the body for any configured secret")]
    Mismatch,
}

/// Verifies Standard Webhooks headers: the timestamp within `tolerance_secs` of `now_secs`, and
/// at least one `v1,` signature (of several, space-separated) matching any secret, compared in
/// constant time. Bare `v1,`, other versions and wrong lengths never match.
pub fn verify_standard(
    secrets: &[Secret],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
) -> Result<(), StandardError> {
    let (Some(id), Some(ts), Some(sig)) = (id, timestamp, signature) else {
        return Err(StandardError::Missing);
    };
    let ts: u64 = ts.trim().parse().map_err(|_| StandardError::BadTimestamp)?;
    if ts.abs_diff(now_secs) > tolerance_secs {
        return Err(StandardError::OutsideTolerance(tolerance_secs));
    }
    let given: Vec<Vec<u8>> = sig
        .split_whitespace()
        .filter_map(|part| part.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .filter(|raw| raw.len() == 32)
        .collect();
    if given.is_empty() {
        return Err(StandardError::Malformed);
    }
    let mut ok = false;
    for secret in secrets {
        for raw in &given {
            let mut m = mac(&standard_key(secret.expose()));
            m.update(id.as_bytes());
            m.update(b".");
            m.update(ts.to_string().as_bytes());
            m.update(b".");
            m.update(body);
            ok |= m.verify_slice(raw).is_ok();
        }
    }
    if ok {
        Ok(())
    } else {
        Err(StandardError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_vector_of_facts_section_8() {
        let body = br#"{"name": "a1b2c3d4e5", "item_code": "SKU-001", "warehouse": "Stores - ACME", "actual_qty": 42.0, "reserved_qty": 5.0, "projected_qty": 47.0, "modified": "2025-06-02 14:05:07.654321"}"#;
        assert_eq!(
            frappe_signature("s3cret", body),
            "mfxIrjvrVWkgAThj3m3orA7xvVcdqO+TXjK76mLsS2c="
        );
        let secrets = [Secret::new("other"), Secret::new("s3cret")];
        let sig = b"mfxIrjvrVWkgAThj3m3orA7xvVcdqO+TXjK76mLsS2c=";
        assert_eq!(verify_frappe(&secrets, Some(sig), body), Ok(()));
        assert_eq!(
            verify_frappe(&secrets[..1], Some(sig), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_frappe(&secrets, None, body),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_frappe(&secrets, Some(b"sha256=abc"), body),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_frappe(&secrets, Some(b"YWJj"), body),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn an_unpadded_secret_is_the_same_key_as_a_padded_one() {
        // 31 bytes: base64 ends in `==`, which some secret generators leave out.
        let padded = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZQ==";
        assert_eq!(standard_key(padded).len(), 31);
        assert_eq!(
            standard_key(padded),
            standard_key(padded.trim_end_matches('='))
        );
    }

    #[test]
    fn standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let sig = standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn standard_verification_accepts_rotation_and_refuses_the_rest() {
        let old = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let new = Secret::new("whsec_bmV3LXNlY3JldC1mb3ItdGVzdHMtMDEyMzQ1Njc=");
        let body = br#"{"test": 2432232314}"#;
        let (id, ts) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330u64);
        let both = standard_signatures(&[new.clone(), old.clone()], id, ts, body);
        assert_eq!(both.split(' ').count(), 2);
        let check = |secrets: &[Secret], sig: &str, now: u64| {
            verify_standard(
                secrets,
                Some(id),
                Some(&ts.to_string()),
                Some(sig),
                body,
                now,
                300,
            )
        };
        assert_eq!(
            check(std::slice::from_ref(&old), &both, ts),
            Ok(()),
            "the old secret still verifies"
        );
        assert_eq!(check(std::slice::from_ref(&new), &both, ts + 299), Ok(()));
        assert_eq!(
            check(std::slice::from_ref(&new), &both, ts + 301),
            Err(StandardError::OutsideTolerance(300))
        );
        assert_eq!(
            check(std::slice::from_ref(&new), &both, ts - 301),
            Err(StandardError::OutsideTolerance(300)),
            "future"
        );
        assert_eq!(
            check(std::slice::from_ref(&new), "v1,", ts),
            Err(StandardError::Malformed)
        );
        assert_eq!(
            check(std::slice::from_ref(&new), "v1,YWJj", ts),
            Err(StandardError::Malformed),
            "wrong length"
        );
        let sig = standard_signature(old.expose(), id, ts, body);
        assert_eq!(
            check(std::slice::from_ref(&new), &sig, ts),
            Err(StandardError::Mismatch)
        );
        assert_eq!(
            check(std::slice::from_ref(&old), &sig.replace("v1,", "v2,"), ts),
            Err(StandardError::Malformed)
        );
        assert_eq!(
            check(std::slice::from_ref(&old), &format!("v1, {sig}"), ts),
            Ok(()),
            "a bare v1, beside a good one"
        );
        assert_eq!(
            verify_standard(&[old], None, Some("1"), Some(&sig), body, ts, 300),
            Err(StandardError::Missing)
        );
    }
}
