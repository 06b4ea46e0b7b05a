//! Faults the simulator can be told to produce: injected by rule for the next matching requests,
//! or drawn at random for `/api/` requests at the configured `fail_rate`.
//!
//! Some faults replace the answer before the request is handled ([`Fault::Status`], HTML pages,
//! 429/503, 401, hangs, malformed JSON); the others spoil the real answer after it is built
//! (truncation, reset, dribbling, wrong or missing ids, oversize), so side effects such as a
//! building upsert still happen, as when an appliance does the work and the answer is lost.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::answers;
use crate::http::{Delivery, Response};

/// Body bytes per second of [`Fault::Dribble`]: slow enough that any sane total timeout fires.
const DRIBBLE_BYTES_PER_SEC: u32 = 1;

/// One kind of misbehaviour.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// This status with `{"msg": "...", "code": 1}`.
    Status(u16),
    /// HTTP 500 with the permission error Device42 sends for bad credentials.
    PermissionDenied,
    /// This status with an nginx-style `text/html` page, as from a proxy in front of Device42.
    HtmlPage(u16),
    /// 429, with this `Retry-After` header value when given.
    TooManyRequests {
        /// The `Retry-After` value: delta-seconds or an HTTP date.
        retry_after: Option<String>,
    },
    /// 503, with this `Retry-After` header value when given.
    Unavailable {
        /// The `Retry-After` value: delta-seconds or an HTTP date.
        retry_after: Option<String>,
    },
    /// 401 `{"detail": "Invalid token."}`, whatever the token.
    Unauthorized,
    /// The real answer's head with its full `Content-Length`, then half the body, then close.
    Truncate,
    /// The request is handled, then the connection is reset instead of answered.
    Reset,
    /// The connection is accepted and never answered.
    Hang,
    /// The real answer, its body at one byte per second.
    Dribble,
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// HTTP 200 `application/json` whose body is not valid JSON.
    MalformedJson,
    /// The real answer with the first item's `device_id` turned into the string `"abc"`.
    WrongIdType,
    /// The real answer with the first item's `device_id` (and v1 `id`) removed.
    MissingId,
    /// The real answer padded with trailing whitespace (still valid JSON) to at least this size.
    Oversize(usize),
}

/// Gives `fault` to the next `times` requests whose path starts with `path_prefix` (and whose
/// method is `method`, when given), after letting `skip` such requests through untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Requests whose path starts with this match, e.g. `/api/2.0/devices/`.
    pub path_prefix: String,
    /// Only requests with this method match, when given.
    pub method: Option<String>,
    /// What matching requests get.
    pub fault: Fault,
    /// How many matching requests get it.
    pub times: u32,
    /// How many matching requests pass untouched first.
    pub skip: u32,
}

impl FaultRule {
    /// The next request under `path_prefix`, any method, gets `fault`.
    pub fn new(path_prefix: &str, fault: Fault) -> FaultRule {
        FaultRule {
            path_prefix: path_prefix.to_string(),
            method: None,
            fault,
            times: 1,
            skip: 0,
        }
    }

    /// The same rule for `times` requests.
    pub fn times(self, times: u32) -> FaultRule {
        FaultRule { times, ..self }
    }

    /// The same rule, starting after `skip` matching requests.
    pub fn skip(self, skip: u32) -> FaultRule {
        FaultRule { skip, ..self }
    }

    /// The same rule, for one method only.
    pub fn method(self, method: &str) -> FaultRule {
        FaultRule {
            method: Some(method.to_ascii_uppercase()),
            ..self
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.path_prefix)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }
}

/// How building POSTs with a given name are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// HTTP 400 `{"msg": "...", "code": 1}`.
    Http400,
    /// HTTP 200 `{"msg": "...", "code": "1"}`: a failure dressed as success.
    Code1,
    /// HTTP 500 `{"msg": "License expired ...", "code": 1}`.
    LicenseExpired,
}

impl Rejection {
    /// The answer for a building called `name`.
    pub(crate) fn response(self, name: &str) -> Response {
        use serde_json::json;
        match self {
            Rejection::Http400 => Response::json_value(
                400,
                &json!({"msg": format!("building {name} rejected by the simulator"), "code": 1}),
            ),
            Rejection::Code1 => Response::json_value(
                200,
                &json!({"msg": format!("building {name} could not be saved"), "code": "1"}),
            ),
            Rejection::LicenseExpired => Response::json(
                500,
                r#"{"msg": "License expired on 2024-01-01. Please contact Device42 support.", "code": 1}"#,
            ),
        }
    }
}

/// Active rules and the random source of `fail_rate`.
#[derive(Debug)]
pub(crate) struct Faults {
    /// Rules with requests left, in injection order; the first active match applies.
    rules: Vec<FaultRule>,
    /// Seeded, so that a run with a `fail_rate` is repeatable for a seed and request order.
    rng: StdRng,
    /// Probability of a random fault on an `/api/` request.
    fail_rate: f64,
}

impl Faults {
    pub fn new(seed: u64, fail_rate: f64) -> Faults {
        Faults {
            rules: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            fail_rate,
        }
    }

    pub fn inject(&mut self, rule: FaultRule) {
        if rule.times > 0 {
            self.rules.push(rule);
        }
    }

    /// Drops every rule: the next requests are answered normally (`fail_rate` still applies).
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The fault for this request, if any: every matching rule counts it, the first one past its
    /// skips applies; then, for `/api/`, a random fault at `fail_rate`.
    pub fn take(&mut self, method: &str, path: &str) -> Option<Fault> {
        let mut chosen = None;
        for rule in self.rules.iter_mut().filter(|r| r.matches(method, path)) {
            if rule.skip > 0 {
                rule.skip -= 1;
            } else if chosen.is_none() {
                rule.times -= 1;
                chosen = Some(rule.fault.clone());
            }
        }
        self.rules.retain(|r| r.times > 0);
        let eligible = chosen.is_none() && path.starts_with("/api/") && self.fail_rate > 0.0;
        if eligible && self.rng.random_bool(self.fail_rate.clamp(0.0, 1.0)) {
            chosen = Some(match self.rng.random_range(0..4) {
                0 => Fault::Status(500),
                1 => Fault::Unavailable { retry_after: None },
                2 => Fault::Reset,
                _ => Fault::Truncate,
            });
        }
        chosen
    }
}

impl Fault {
    /// The answer that replaces handling the request, for faults that need no real answer.
    pub(crate) fn instead(&self) -> Option<Response> {
        let json_error = |status: u16| {
            Response::json(
                status,
                format!(r#"{{"msg": "simulated error {status}", "code": 1}}"#),
            )
        };
        Some(match self {
            Fault::Status(status) => json_error(*status),
            Fault::PermissionDenied => answers::permission_denied(),
            Fault::HtmlPage(status) => Response::html(*status, nginx_page(*status)),
            Fault::TooManyRequests { retry_after } => {
                with_retry_after(json_error(429), retry_after)
            }
            Fault::Unavailable { retry_after } => with_retry_after(json_error(503), retry_after),
            Fault::Unauthorized => answers::invalid_token(),
            Fault::Hang => Response::text(200, "").with_delivery(Delivery::Hang),
            Fault::MalformedJson => Response::json(
                200,
                r#"{"total_count": 3, "offset": 0, "limit": 1000, "Devices": [{"device_id": 1, "name": "#,
            ),
            _ => return None,
        })
    }

    /// The real answer spoiled by this fault (unchanged for faults that do not spoil answers).
    pub(crate) fn spoil(&self, mut response: Response) -> Response {
        match self {
            Fault::Truncate => {
                let keep = response.body.len() / 2;
                response.with_delivery(Delivery::Truncate { keep })
            }
            Fault::Reset => response.with_delivery(Delivery::Reset),
            Fault::Dribble => response.with_delivery(Delivery::Dribble {
                bytes_per_sec: DRIBBLE_BYTES_PER_SEC,
            }),
            Fault::WrongIdType => {
                response.body =
                    replace_first_id(&response.body, "\"device_id\": ", Some("\"abc\""));
                response
            }
            Fault::MissingId => {
                let body = replace_first_id(&response.body, "\"device_id\": ", None);
                response.body = replace_first_id(&body, "\"id\": ", None);
                response
            }
            Fault::Oversize(size) => {
                let missing = size.saturating_sub(response.body.len());
                response.body.extend(std::iter::repeat_n(b' ', missing));
                response
            }
            _ => response,
        }
    }
}

/// `response` with a `Retry-After` header when `value` is given.
fn with_retry_after(response: Response, value: &Option<String>) -> Response {
    match value {
        Some(value) => response.with_header("retry-after", value),
        None => response,
    }
}

/// The first `key` member with an integer value in `body`, its value replaced by `with`, or the
/// whole member removed when `with` is `None`. The body is unchanged when there is none.
fn replace_first_id(body: &[u8], key: &str, with: Option<&str>) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let Some(start) = text.find(key) else {
        return body.to_vec();
    };
    let value_start = start + key.len();
    let digits = text[value_start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let value_end = value_start + digits;
    let mut out = String::with_capacity(text.len());
    match with {
        Some(value) => {
            out.push_str(&text[..value_start]);
            out.push_str(value);
            out.push_str(&text[value_end..]);
        }
        None if text[value_end..].starts_with(", ") => {
            out.push_str(&text[..start]);
            out.push_str(&text[value_end + 2..]);
        }
        None => {
            let before = text[..start].trim_end_matches(' ').trim_end_matches(',');
            out.push_str(before);
            out.push_str(&text[value_end..]);
        }
    }
    out.into_bytes()
}

/// An error page as nginx in front of an appliance sends it.
fn nginx_page(status: u16) -> String {
    let title = match status {
        502 => "502 Bad Gateway",
        503 => "503 Service Temporarily Unavailable",
        504 => "504 Gateway Time-out",
        200 => "Device42 - Maintenance",
        _ => "Error",
    };
    format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
}
