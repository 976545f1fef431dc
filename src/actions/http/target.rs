//! [`HttpTarget`]: where an `http` effect is delivered, and how the URL is
//! shown without what it may hide (credentials, a token in the query).

use std::fmt;
use std::time::Duration;

/// Where an action type's `http` effect goes: the receiver's URL, the
/// shared secret that signs every delivery, and the timeout of one attempt.
/// Its `Debug` output hides the secret, the URL's credentials and query.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// The receiver's `http` or `https` URL.
    pub url: String,
    /// The HMAC secret shared with the receiver.
    pub secret: String,
    /// The timeout of one attempt; `None`: the action's own timeout (the
    /// executor's, 10 s unless the action declares one) bounds it.
    pub timeout: Option<Duration>,
}

impl HttpTarget {
    /// A target with no timeout of its own.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        HttpTarget {
            url: url.into(),
            secret: secret.into(),
            timeout: None,
        }
    }

    /// The same target with a timeout per attempt.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The URL as it may be shown (logs, start-up reports, errors):
    /// user info and query replaced by `***`.
    ///
    /// ```
    /// use creatorflow::actions::HttpTarget;
    /// let t = HttpTarget::new("https://user:pw@hooks.example.com/notify?token=x", "s");
    /// assert_eq!(t.redacted_url(), "https://***@hooks.example.com/notify?***");
    /// ```
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTarget")
            .field("url", &self.redacted_url())
            .field("secret", &"***")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` with its user info and query (and fragment) replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    let path = match tail.find(['?', '#']) {
        Some(i) => format!("{}{}***", &tail[..i], &tail[i..=i]),
        None => tail.to_owned(),
    };
    match scheme {
        Some(s) => format!("{s}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        for (url, want) in [
            ("https://h.example/x", "https://h.example/x"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("https://u:p@h/x?t=1#f", "https://***@h/x?***"),
            ("https://h/x#frag", "https://h/x#***"),
            ("https://a@b@h?q", "https://***@h?***"),
            ("h/x?q", "h/x?***"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
        let t = HttpTarget::new("https://u:pw@h/x?token=tok", "s3cr3t")
            .with_timeout(Duration::from_secs(5));
        let shown = format!("{t:?}");
        for hidden in ["s3cr3t", "pw", "tok"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
        assert!(shown.contains("5s"), "{shown}");
    }
}
