//! The signatures the emulated parties compute themselves: Frappe's on a Webhook request (the
//! base64 of the HMAC-SHA256 of the body, keyed with the Webhook's secret) and the Standard
//! Webhooks signature the reference shop checks on every push. Written apart from the relay's
//! own code, so that a test compares two implementations of each rule rather than one with
//! itself.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `X-Frappe-Webhook-Signature` as Frappe sets it: base64 of HMAC-SHA256(secret, body).
pub fn frappe(secret: &str, body: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(secret.as_bytes(), &[body]))
}

/// Why the shop refused a Standard Webhooks signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
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

/// The key of a Standard Webhooks secret: the bytes after `whsec_` decoded from base64 (with or
/// without padding), else the text itself.
fn standard_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| {
            STANDARD
                .decode(b64)
                .or_else(|_| STANDARD_NO_PAD.decode(b64.trim_end_matches('=')))
                .ok()
        })
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// Checks Standard Webhooks headers as a shop would: the timestamp within `tolerance_secs` of
/// `now_secs`, and one of the space-separated `v1,` signatures equal (in constant time) to the
/// HMAC-SHA256 of `id.timestamp.body` under one of `secrets`.
pub fn check_standard(
    secrets: &[String],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
) -> Result<(), Refused> {
    use subtle::ConstantTimeEq;
    let (Some(id), Some(ts), Some(sig)) = (id, timestamp, signature) else {
        return Err(Refused::Missing);
    };
    let ts: u64 = ts.trim().parse().map_err(|_| Refused::BadTimestamp)?;
    if ts.abs_diff(now_secs) > tolerance_secs {
        return Err(Refused::OutsideTolerance(tolerance_secs));
    }
    let given: Vec<Vec<u8>> = sig
        .split_whitespace()
        .filter_map(|part| STANDARD.decode(part.strip_prefix("v1,")?).ok())
        .filter(|raw| raw.len() == 32)
        .collect();
    if given.is_empty() {
        return Err(Refused::Malformed);
    }
    let stamp = ts.to_string();
    let mut ok = false;
    for secret in secrets {
        let want = hmac_sha256(
            &standard_key(secret),
            &[id.as_bytes(), b".", stamp.as_bytes(), b".", body],
        );
        for raw in &given {
            ok |= bool::from(raw.ct_eq(&want));
        }
    }
    if ok {
        Ok(())
    } else {
        Err(Refused::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_verifies() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let check = |s: &str, now| {
            check_standard(
                std::slice::from_ref(&secret),
                Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
                Some("1614265330"),
                Some(s),
                body,
                now,
                300,
            )
        };
        assert_eq!(check(sig, 1_614_265_330), Ok(()));
        assert_eq!(check(&format!("v1,bm90IGl0 {sig}"), 1_614_265_330), Ok(()));
        assert_eq!(
            check(sig, 1_614_265_330 + 301),
            Err(Refused::OutsideTolerance(300))
        );
        assert_eq!(
            check(
                "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                1_614_265_330
            ),
            Err(Refused::Mismatch)
        );
        assert_eq!(check("v2,abc", 1_614_265_330), Err(Refused::Malformed));
    }

    #[test]
    fn frappe_signs_the_body_with_the_secret() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231 style.
        assert_eq!(
            frappe("key", b"The quick brown fox jumps over the lazy dog"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
    }
}
