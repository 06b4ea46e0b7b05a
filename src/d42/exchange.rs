//! One exchange with the appliance as the rooms pass it on: the [`Request`], its name in
//! messages ([`endpoint_name`]), and the whole answer ([`Body`]) with the headers the client
//! acts on.

use super::error::{Error, excerpt, mask_known_secrets};
use chrono::{DateTime, Utc};
use reqwest::Method;
use std::time::Duration;

/// A form to POST: field names and values, sent form-encoded.
pub type Form<'a> = &'a [(&'a str, &'a str)];

/// What to ask of the appliance, before authentication.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The HTTP method.
    pub method: Method,
    /// The path under the base URL.
    pub path: &'a str,
    /// The query pairs.
    pub query: &'a [(&'a str, String)],
    /// The form sent as the body, if any.
    pub form: Option<Form<'a>>,
}

impl<'a> Request<'a> {
    /// A GET of `path?query`.
    pub fn get(path: &'a str, query: &'a [(&'a str, String)]) -> Self {
        Self {
            method: Method::GET,
            path,
            query,
            form: None,
        }
    }

    /// A POST of `form` (if any) to `path`.
    pub fn post(path: &'a str, form: Option<Form<'a>>) -> Self {
        Self {
            method: Method::POST,
            path,
            query: &[],
            form,
        }
    }

    /// The request's name in messages (see [`endpoint_name`]).
    pub fn endpoint(&self) -> String {
        endpoint_name(&self.method, self.path, self.query)
    }
}

/// A whole response body, read within the size cap.
#[derive(Debug)]
pub struct Body {
    /// Method and path, for messages.
    pub endpoint: String,
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`, or empty.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The server's `Retry-After`, if it sent one, capped at `device42.max_retry_after`.
    pub retry_after: Option<Duration>,
    /// The server's `Date`, if it sent one: a token's lifetime is planned by the appliance's
    /// clock.
    pub date: Option<DateTime<Utc>>,
}

impl Body {
    /// A `BadResponse` error about this body.
    pub fn bad(&self, cause: impl Into<String>) -> Error {
        Error::BadResponse {
            endpoint: self.endpoint.clone(),
            status: self.status,
            content_type: self.content_type.clone(),
            cause: mask_known_secrets(&cause.into()),
            excerpt: excerpt(&self.bytes),
        }
    }
}

/// `GET /api/2.0/devices/ (offset 1000)`: the method, path and the paging position, never more.
pub fn endpoint_name(method: &Method, path: &str, query: &[(&str, String)]) -> String {
    match query.iter().find(|(k, _)| *k == "offset") {
        Some((_, offset)) => format!("{method} {path} (offset {offset})"),
        None => format!("{method} {path}"),
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// An HTTP date header (`Date`) as a UTC time.
pub fn parse_http_date(v: &str) -> Option<DateTime<Utc>> {
    httpdate::parse_http_date(v).ok().map(DateTime::<Utc>::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn endpoints_name_the_path_and_offset_only() {
        let q = [
            ("limit", "1000".to_string()),
            ("offset", "2000".to_string()),
        ];
        assert_eq!(
            endpoint_name(&Method::GET, "/api/2.0/devices/", &q),
            "GET /api/2.0/devices/ (offset 2000)"
        );
    }
}
