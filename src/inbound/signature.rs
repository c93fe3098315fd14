//! Signature checks of what arrives: Frappe's `X-Frappe-Webhook-Signature` (base64
//! HMAC-SHA256 of the raw body) and Standard Webhooks (`v1,` base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}`), compared in constant time. The signatures themselves are made in
//! `crate::signing`, which the senders use too.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::Mac;

use crate::config::Secret;
use crate::signing::{mac, standard_key};

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
    #[error("webhook-signature holds {entries} entries; at most {max_entries} are read (server.max_signature_entries)")]
    TooMany { entries: usize, max_entries: usize },
    #[error(
        "webhook-signature is longer than {max_bytes} bytes (server.max_signature_entries × 128)"
    )]
    TooLong { max_bytes: usize },
}

/// How long a `webhook-signature` header may be per entry it may hold: `v1,` and 44 base64
/// characters are 47, with room for a space and another version's longer value.
pub const SIGNATURE_HEADER_BYTES_PER_ENTRY: usize = 128;

/// Verifies Standard Webhooks headers: the timestamp within `tolerance_secs` of `now_secs`, and
/// at least one `v1,` signature (of several, space-separated) matching any secret, compared in
/// constant time. Bare `v1,`, other versions and wrong lengths never match. The header may
/// hold at most `max_entries` entries (and `max_entries` ×
/// [`SIGNATURE_HEADER_BYTES_PER_ENTRY`] bytes); the expected value is computed once per
/// secret, so the check costs one HMAC of the body per secret however many entries are sent.
#[allow(clippy::too_many_arguments)]
pub fn verify_standard(
    secrets: &[Secret],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
    max_entries: usize,
) -> Result<(), StandardError> {
    let (Some(id), Some(ts), Some(sig)) = (id, timestamp, signature) else {
        return Err(StandardError::Missing);
    };
    let entries = sig.split_whitespace().count();
    if entries > max_entries {
        return Err(StandardError::TooMany {
            entries,
            max_entries,
        });
    }
    let max_bytes = max_entries.saturating_mul(SIGNATURE_HEADER_BYTES_PER_ENTRY);
    if sig.len() > max_bytes {
        return Err(StandardError::TooLong { max_bytes });
    }
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
    let mut ok = subtle::Choice::from(0u8);
    for secret in secrets {
        let mut m = mac(&standard_key(secret.expose()));
        m.update(id.as_bytes());
        m.update(b".");
        m.update(ts.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        let expected = m.finalize().into_bytes();
        for raw in &given {
            ok |= subtle::ConstantTimeEq::ct_eq(expected.as_slice(), raw.as_slice());
        }
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(StandardError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{frappe_signature, standard_signature, standard_signatures};

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
                8,
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
            verify_standard(
                std::slice::from_ref(&old),
                None,
                Some("1"),
                Some(&sig),
                body,
                ts,
                300,
                8
            ),
            Err(StandardError::Missing)
        );
        let many = [sig.as_str(); 9].join(" ");
        assert_eq!(
            check(std::slice::from_ref(&old), &many, ts),
            Err(StandardError::TooMany {
                entries: 9,
                max_entries: 8
            })
        );
        let long = format!("{sig} v2,{}", "A".repeat(1024));
        assert_eq!(
            check(std::slice::from_ref(&old), &long, ts),
            Err(StandardError::TooLong { max_bytes: 1024 })
        );
        let eight = [sig.as_str(); 8].join(" ");
        assert_eq!(check(std::slice::from_ref(&old), &eight, ts), Ok(()));
    }
}
