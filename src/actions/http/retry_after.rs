//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// How long a `Retry-After` value asks to wait, from `now`: a number of
/// seconds, or an HTTP-date (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`,
/// or the obsolete RFC 850 and asctime forms a receiver must accept). A date
/// in the past is no wait; anything else is `None` (ignored).
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to fit is "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc2822(value) {
        return Some(t.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "1994-11-06T08:49:00Z".parse().unwrap_or_default()
    }

    #[test]
    fn seconds() {
        let p = |v| parse_retry_after(v, now());
        assert_eq!(p("1"), Some(Duration::from_secs(1)));
        assert_eq!(p(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(p("0"), Some(Duration::ZERO));
        assert_eq!(
            p("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "1 s"] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates() {
        let p = |v| parse_retry_after(v, now());
        let want = Some(Duration::from_secs(37));
        assert_eq!(p("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(p("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(p("Sun Nov  6 08:49:37 1994"), want);
        // In the past: retry at once.
        assert_eq!(p("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(p("Sun, 06 Nov 1994 25:00:00 GMT"), None);
    }
}
