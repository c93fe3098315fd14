//! Signing what the relay and its tools send: Frappe's webhook signature (base64 HMAC-SHA256
//! of the raw body, as ERPNext signs) and Standard Webhooks (`webhook-signature: v1,<base64
//! HMAC-SHA256 of {id}.{timestamp}.{body}>`, as the shop client signs its pushes and a shop
//! signs its orders). Checking what arrives is `inbound::signature`, with the same keys and MACs.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// An HMAC-SHA256 keyed with `key`.
pub(crate) fn mac(key: &[u8]) -> HmacSha256 {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
