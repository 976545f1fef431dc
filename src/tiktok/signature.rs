//! The webhook signature: lowercase hex of HMAC-SHA256 with the app secret
//! as key, over the app key followed by the raw request body.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(app_key: &str, app_secret: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(app_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(app_key.as_bytes());
    mac.update(body);
    mac
}

/// The `Authorization` header TikTok Shop sends with `body`.
///
/// ```
/// use creatorflow::tiktok::sign_webhook;
/// let body = br#"{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507","timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178","order_status":"UNPAID","update_time":1718305585}}"#;
/// assert_eq!(sign_webhook("abcdef", "123", body),
///     "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05");
/// ```
pub fn sign_webhook(app_key: &str, app_secret: &str, body: &[u8]) -> String {
    hex::encode(mac(app_key, app_secret, body).finalize().into_bytes())
}

/// Whether `authorization` is the signature of the exact bytes `body`.
///
/// The header must be exactly 64 lowercase hex digits (no `Bearer ` prefix);
/// the comparison is constant-time.
pub fn verify_webhook(app_key: &str, app_secret: &str, body: &[u8], authorization: &str) -> bool {
    let header = authorization.as_bytes();
    if header.len() != 64
        || !header
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return false;
    }
    let Ok(expected) = hex::decode(header) else {
        return false;
    };
    mac(app_key, app_secret, body)
        .verify_slice(&expected)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507","timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178","order_status":"UNPAID","update_time":1718305585}}"#;
    const GOOD: &str = "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05";

    #[test]
    fn official_vector_and_negative_controls() {
        assert_eq!(BODY.len(), 223);
        assert!(verify_webhook("abcdef", "123", BODY, GOOD));
        // HMAC over the body alone, a plain SHA-256 of secret+body, and the Bearer prefix.
        for bad in [
            "582e01fc956e708cf46d897370424b7c55f7af560fcbbcb7f5f34762cafe6007",
            "5e3c27f2a62498f67477e46fc28bc65506406ff7831d286b57541904b14d2e9d",
            "Bearer 5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05",
            "",
            &GOOD.to_uppercase(),
            &GOOD[..63],
        ] {
            assert!(!verify_webhook("abcdef", "123", BODY, bad), "{bad}");
        }
        // Tampered body, wrong key or secret.
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert!(!verify_webhook("abcdef", "123", &tampered, GOOD));
        assert!(!verify_webhook("abcdeg", "123", BODY, GOOD));
        assert!(!verify_webhook("abcdef", "124", BODY, GOOD));
        // A re-serialised body (same JSON, other bytes) does not verify.
        let reserialised =
            serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(BODY).unwrap())
                .unwrap();
        assert_ne!(reserialised, BODY);
        assert!(!verify_webhook("abcdef", "123", &reserialised, GOOD));
    }
}
