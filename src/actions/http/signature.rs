//! The signature of an `http` effect, `X-CreatorFlow-Signature:
//! t=UNIX_SECONDS,v1=HEX`, where `HEX` is the lowercase hex of
//! HMAC-SHA256(secret, `"UNIX_SECONDS." + raw body`): Stripe's scheme, so a
//! receiver can reuse a verifier it knows. The timestamp is signed, so an
//! old delivery cannot be replayed outside the receiver's tolerance.
//!
//! Always built (it needs no HTTP client): a receiver written in Rust
//! verifies with [`verify_effect_signature`].

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-CreatorFlow-Signature";

fn mac(secret: &str, unix_seconds: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-CreatorFlow-Signature` value of `body` sent at `unix_seconds`:
/// `t=UNIX_SECONDS,v1=HEX`.
///
/// ```
/// use creatorflow::actions::sign_effect;
/// let header = sign_effect("whsec", 1_700_000_000, br#"{"action":"trigger_webhook"}"#);
/// assert!(header.starts_with("t=1700000000,v1="));
/// assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
/// ```
pub fn sign_effect(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let v1 = hex::encode(mac(secret, unix_seconds, body).finalize().into_bytes());
    format!("t={unix_seconds},v1={v1}")
}

/// Why [`verify_effect_signature`] refused a delivery. Never names the
/// secret nor the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=…,v1=…` (a part without `=`, no or several
    /// `t`, a `t` that is not an integer).
    #[error("malformed signature header")]
    Malformed,
    /// The header has no `v1` signature.
    #[error("no v1 signature in the header")]
    NoSignature,
    /// No `v1` is the signature of this body at this timestamp.
    #[error("signature mismatch")]
    Mismatch,
    /// The signature is right but its timestamp is further than the
    /// tolerance from now: a replay, or a clock far off.
    #[error("timestamp {age_secs} s away from now, beyond the tolerance of {tolerance_secs} s")]
    OutsideTolerance {
        /// `now - t`, in seconds (negative: from the future).
        age_secs: i64,
        /// The tolerance asked for.
        tolerance_secs: u64,
    },
}

/// Checks `header` (an `X-CreatorFlow-Signature` value) against the exact
/// bytes received, `body`: some `v1` must be the HMAC of `"t." + body`
/// (compared in constant time; several `v1`, as during a secret rotation,
/// are allowed and unknown schemes such as `v0` ignored), and `t` must be
/// within `tolerance_secs` of `now_unix` either way (five minutes is
/// usual).
///
/// ```
/// use creatorflow::actions::{SignatureError, sign_effect, verify_effect_signature};
/// let body = br#"{"action":"trigger_webhook"}"#;
/// let header = sign_effect("whsec", 1_700_000_000, body);
/// assert_eq!(verify_effect_signature(&header, body, "whsec", 1_700_000_060, 300), Ok(()));
/// assert_eq!(verify_effect_signature(&header, b"{}", "whsec", 1_700_000_060, 300),
///     Err(SignatureError::Mismatch));
/// assert!(matches!(verify_effect_signature(&header, body, "whsec", 1_700_001_000, 300),
///     Err(SignatureError::OutsideTolerance { age_secs: 1_000, .. })));
/// ```
pub fn verify_effect_signature(
    header: &str,
    body: &[u8],
    secret: &str,
    now_unix: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" if t.is_none() => {
                t = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            "t" => return Err(SignatureError::Malformed),
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    let expected = mac(secret, t, body);
    let matched = signatures
        .iter()
        .any(|s| hex::decode(s).is_ok_and(|bytes| expected.clone().verify_slice(&bytes).is_ok()));
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let age_secs = now_unix.saturating_sub(t);
    if age_secs.unsigned_abs() > tolerance_secs {
        return Err(SignatureError::OutsideTolerance {
            age_secs,
            tolerance_secs,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"action":"trigger_webhook","attempt":1}"#;
    const T: i64 = 1_700_000_000;

    #[test]
    fn known_vector() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test",
        //   b"1700000000." + b"{\"action\":\"trigger_webhook\",\"attempt\":1}",
        //   hashlib.sha256).hexdigest())'
        assert_eq!(
            sign_effect("whsec_test", T, BODY),
            "t=1700000000,v1=\
             3409ac3149d9aa72cc9aa0a8abbbd3f0c962bb358f1f2102d750e3fb6174a3c2"
        );
    }

    #[test]
    fn accepts_its_own_and_refuses_the_rest() {
        let h = sign_effect("s", T, BODY);
        assert_eq!(verify_effect_signature(&h, BODY, "s", T, 0), Ok(()));
        assert_eq!(verify_effect_signature(&h, BODY, "s", T - 300, 300), Ok(()));
        assert_eq!(
            verify_effect_signature(&h, BODY, "other", T, 300),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = BODY.to_vec();
        tampered[12] ^= 1;
        assert_eq!(
            verify_effect_signature(&h, &tampered, "s", T, 300),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = h.replace("t=1700000000", "t=1700000900");
        assert_eq!(
            verify_effect_signature(&moved, BODY, "s", T + 900, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_effect_signature(&h, BODY, "s", T + 301, 300),
            Err(SignatureError::OutsideTolerance {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert!(matches!(
            verify_effect_signature(&h, BODY, "s", T - 301, 300),
            Err(SignatureError::OutsideTolerance { age_secs: -301, .. })
        ));
    }

    #[test]
    fn rotation_and_unknown_schemes() {
        let good = sign_effect("s", T, BODY);
        let v1 = good.rsplit_once("v1=").map(|(_, v)| v).unwrap_or_default();
        let header = format!("t={T}, v0=abc, v1={}, v1={v1}", "00".repeat(32));
        assert_eq!(verify_effect_signature(&header, BODY, "s", T, 300), Ok(()));
    }

    #[test]
    fn malformed_headers() {
        let v1 = "0".repeat(64);
        for (header, want) in [
            ("", SignatureError::Malformed),
            ("garbage", SignatureError::Malformed),
            (&*format!("v1={v1}"), SignatureError::Malformed),
            (&*format!("t=abc,v1={v1}"), SignatureError::Malformed),
            (&*format!("t=1,t=2,v1={v1}"), SignatureError::Malformed),
            ("t=1700000000", SignatureError::NoSignature),
            ("t=1700000000,v1=zz", SignatureError::Mismatch),
        ] {
            assert_eq!(
                verify_effect_signature(header, BODY, "s", T, 300),
                Err(want),
                "{header}"
            );
        }
    }
}
