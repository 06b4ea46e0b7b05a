//! What an HTTP answer from Device42 means. The status says most of it; Device42 also answers
//! a refused credential and an expired license with an HTTP 500, told apart by their text
//! (that is the appliance's protocol, not a library's error message).

use crate::d42::error::{Error, excerpt};
use crate::d42::exchange::Body;
use crate::d42::models;

/// The meaning of an answer, by its status and, for a 500, its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// A 2xx: the request was done.
    Success,
    /// 401, 403, or the HTTP 500 whose message speaks of permissions, which is how the
    /// appliance answers a refused credential: a new token may help, once.
    CredentialRefused,
    /// The HTTP 500 of an expired or invalid license: nothing a retry changes.
    LicenseRefused,
    /// 408, 429 or another 5xx: the appliance is down or overloaded, a retry may succeed.
    Outage,
    /// A 3xx: Device42 redirects plain http to https, which the client does not follow.
    Redirected,
    /// Any other status: a permanent refusal of this request.
    Refused,
}

/// How much of a body is searched for the words of Device42's 500s: their messages are short.
const SEARCHED_BYTES: usize = 2048;

/// What `status` with `body` means.
pub fn meaning(status: u16, body: &[u8]) -> Meaning {
    match status {
        200..=299 => Meaning::Success,
        401 | 403 => Meaning::CredentialRefused,
        500 if mentions(body, &["permission"]) => Meaning::CredentialRefused,
        500 if mentions(body, &["license expired", "license is not valid"]) => {
            Meaning::LicenseRefused
        }
        408 | 429 | 500..=599 => Meaning::Outage,
        300..=399 => Meaning::Redirected,
        _ => Meaning::Refused,
    }
}

/// Whether an answer refuses the credential (see [`Meaning::CredentialRefused`]).
pub fn refuses_token(body: &Body) -> bool {
    meaning(body.status, &body.bytes) == Meaning::CredentialRefused
}

/// Maps an answer to success or a typed error.
pub fn outcome(body: Body) -> Result<Body, Error> {
    let status = body.status;
    let message = || {
        serde_json::from_slice::<serde_json::Value>(&body.bytes)
            .ok()
            .map(|v| models::msg_of(&v))
            .filter(|m| !m.is_empty())
            .map(|m| excerpt(m.as_bytes()))
            .unwrap_or_else(|| excerpt(&body.bytes))
    };
    match meaning(status, &body.bytes) {
        Meaning::Success => Ok(body),
        Meaning::CredentialRefused => Err(Error::Auth {
            message: message(),
            endpoint: body.endpoint,
            status,
        }),
        Meaning::Outage => Err(Error::Unavailable {
            excerpt: excerpt(&body.bytes),
            endpoint: body.endpoint,
            status,
            content_type: body.content_type,
            retry_after: body.retry_after,
        }),
        Meaning::Redirected => Err(Error::Rejected {
            message: "redirected (is device42.base_url https?)".into(),
            endpoint: body.endpoint,
            status,
        }),
        Meaning::LicenseRefused | Meaning::Refused => Err(Error::Rejected {
            message: message(),
            endpoint: body.endpoint,
            status,
        }),
    }
}

/// Whether the start of `body` contains one of `phrases` (lowercase), in any case.
fn mentions(body: &[u8], phrases: &[&str]) -> bool {
    let text =
        String::from_utf8_lossy(&body[..body.len().min(SEARCHED_BYTES)]).to_ascii_lowercase();
    phrases.iter().any(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device42s_500s_are_told_apart_by_their_text() {
        let permission = br#"{"code": 1, "msg": "You do not have Permission to do this"}"#;
        let license = br#"{"msg": "License expired"}"#;
        let crash = b"<html>Internal Server Error</html>";

        assert_eq!(meaning(500, permission), Meaning::CredentialRefused);
        assert_eq!(meaning(500, license), Meaning::LicenseRefused);
        assert_eq!(meaning(500, crash), Meaning::Outage);
    }

    #[test]
    fn statuses_map_to_their_meaning() {
        let cases = [
            (200, Meaning::Success),
            (204, Meaning::Success),
            (301, Meaning::Redirected),
            (400, Meaning::Refused),
            (401, Meaning::CredentialRefused),
            (403, Meaning::CredentialRefused),
            (404, Meaning::Refused),
            (408, Meaning::Outage),
            (429, Meaning::Outage),
            (502, Meaning::Outage),
            (503, Meaning::Outage),
        ];

        for (status, expected) in cases {
            assert_eq!(meaning(status, b"{}"), expected, "HTTP {status}");
        }
    }

    #[test]
    fn an_outage_keeps_the_servers_retry_after_and_is_retryable() {
        let body = Body {
            endpoint: "GET /x".into(),
            status: 429,
            content_type: "application/json".into(),
            bytes: b"{}".to_vec(),
            retry_after: Some(std::time::Duration::from_secs(7)),
            date: None,
        };

        let e = outcome(body).unwrap_err();

        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(7)));
    }
}
