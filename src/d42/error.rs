//! Errors of the Device42 client, each saying whether it is worth retrying, and the excerpts
//! of response bodies they quote, with secrets masked.

use super::tls::describe_certificate_error;
use secrecy::{ExposeSecret, SecretString};
use std::sync::RwLock;
use std::time::Duration;

/// Longest excerpt of a response body quoted in an error: enough to recognise the page, short
/// enough for one log line.
pub const EXCERPT_BYTES: usize = 200;

/// What a masked value is replaced with.
const REDACTED: &str = "[redacted]";

/// Values never quoted in an error: the API client's key and secret, which an appliance may
/// echo back in an answer. Excerpts and causes are built in several places (the client, the
/// pull's page parsing) from bodies that do not say which client fetched them, so the list is
/// the process's; each client adds its credentials when it is built. Longest first, so that a
/// key inside the secret does not leave the rest of the secret readable.
static NEVER_QUOTED: RwLock<Vec<SecretString>> = RwLock::new(Vec::new());

/// Why a request to Device42 failed. The message names the endpoint (path only, never the
/// credentials), the HTTP status where there was one, and a short sanitised excerpt of the body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The connection could not be made (refused, DNS, not within the connect timeout, TLS
    /// handshake other than certificates);
    /// the cause names which.
    #[error("{endpoint}: cannot connect: {cause}")]
    Connect {
        /// Method and path.
        endpoint: String,
        /// Which of them.
        cause: ConnectCause,
    },
    /// The server's certificate was not trusted.
    #[error("{endpoint}: tls certificate verification failed: {cause}")]
    Certificate {
        /// Method and path.
        endpoint: String,
        /// Why; its text says what to do about it.
        cause: CertificateRefusal,
    },
    /// Connected and sent, but no complete answer within the request timeout.
    #[error("{endpoint}: timed out after {after:?}")]
    Timeout {
        /// Method and path.
        endpoint: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The connection broke mid-way: reset, or a body cut short.
    #[error("{endpoint}: connection failed: {cause}")]
    Transport {
        /// Method and path.
        endpoint: String,
        /// The lowest-level cause.
        cause: String,
    },
    /// An HTTP error status that may clear up (429, 5xx other than permission errors).
    #[error("{endpoint}: HTTP {status} ({content_type}): {excerpt}")]
    Unavailable {
        /// Method and path.
        endpoint: String,
        /// The status code.
        status: u16,
        /// The response's content type, to tell an HTML proxy page from an API answer.
        content_type: String,
        /// A short sanitised excerpt of the body.
        excerpt: String,
        /// The server's `Retry-After`, capped.
        retry_after: Option<Duration>,
    },
    /// Credentials or token refused (401/403, or Device42's 500 permission error).
    #[error("{endpoint}: authentication failed: HTTP {status}: {message}")]
    Auth {
        /// Method and path.
        endpoint: String,
        /// The status code.
        status: u16,
        /// Device42's message, sanitised.
        message: String,
    },
    /// A permanent refusal: a 4xx, or HTTP 200 with `code != 0`, or a license error.
    #[error("{endpoint}: rejected: HTTP {status}: {message}")]
    Rejected {
        /// Method and path.
        endpoint: String,
        /// The status code.
        status: u16,
        /// Device42's message, sanitised.
        message: String,
    },
    /// The answer could not be understood: not JSON, an HTML page, a wrong field type, a
    /// missing id.
    #[error("{endpoint}: bad response: HTTP {status} ({content_type}): {cause}: {excerpt}")]
    BadResponse {
        /// Method and path.
        endpoint: String,
        /// The status code.
        status: u16,
        /// The response's content type.
        content_type: String,
        /// What is wrong with it.
        cause: String,
        /// A short sanitised excerpt of the body.
        excerpt: String,
    },
    /// Not sent: the appliance failed repeatedly and the breaker holds calls until its next
    /// probe (see [`super::retry::breaker`]).
    #[error("{endpoint}: not sent: Device42 is unreachable, next probe in {}s", retry_in.as_secs())]
    Paused {
        /// Method and path.
        endpoint: String,
        /// Time until the next probe.
        retry_in: Duration,
    },
    /// The body was larger than `device42.max_page_bytes`.
    #[error("{endpoint}: response body larger than {limit} bytes (device42.max_page_bytes)")]
    TooLarge {
        /// Method and path.
        endpoint: String,
        /// The cap.
        limit: u64,
    },
}

/// Why a connection could not be made, in the operator's terms; the text is the cause's part
/// of the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectCause {
    /// Nothing listens at the appliance's address.
    #[error("connection refused by {host}")]
    Refused {
        /// `host:port` of the appliance.
        host: String,
    },
    /// The appliance's name did not resolve.
    #[error("dns lookup of {host} failed: {detail}")]
    Dns {
        /// The name looked up.
        host: String,
        /// The resolver's own words.
        detail: String,
    },
    /// No connection within `device42.connect_timeout`: nothing was sent.
    #[error("no connection within {after:?} (device42.connect_timeout)")]
    TimedOut {
        /// The configured connect timeout.
        after: Duration,
    },
    /// The TLS handshake failed for a reason other than the certificate.
    #[error("tls handshake failed: {0}")]
    Handshake(String),
    /// Another failure to connect: the lowest-level cause as the library gave it.
    #[error("{0}")]
    Other(String),
}

/// Why the appliance's certificate was refused: rustls's reason, and whether
/// `device42.ca_file` is set, which decides the hint the text gives
/// ([`describe_certificate_error`]).
#[derive(Debug, Clone)]
pub struct CertificateRefusal {
    /// The reason, as the verifier gave it.
    pub reason: rustls::CertificateError,
    /// Whether `device42.ca_file` is set.
    pub ca_file: bool,
}

impl std::fmt::Display for CertificateRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe_certificate_error(&self.reason, self.ca_file))
    }
}

impl Error {
    /// Whether trying the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Timeout { .. }
                | Error::Transport { .. }
                | Error::Unavailable { .. }
        )
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The request that failed (method and path): a building POST can fail in the token
    /// request it needed first.
    pub fn endpoint(&self) -> &str {
        match self {
            Error::Connect { endpoint, .. }
            | Error::Certificate { endpoint, .. }
            | Error::Timeout { endpoint, .. }
            | Error::Transport { endpoint, .. }
            | Error::Unavailable { endpoint, .. }
            | Error::Auth { endpoint, .. }
            | Error::Rejected { endpoint, .. }
            | Error::BadResponse { endpoint, .. }
            | Error::Paused { endpoint, .. }
            | Error::TooLarge { endpoint, .. } => endpoint,
        }
    }

    /// The HTTP status, where the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unavailable { status, .. }
            | Error::Auth { status, .. }
            | Error::Rejected { status, .. }
            | Error::BadResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Masks `secret` in every excerpt and cause from now on (see [`mask_known_secrets`]).
pub fn never_quote(secret: &SecretString) {
    let value = secret.expose_secret();
    if value.is_empty() {
        return;
    }
    let mut list = NEVER_QUOTED.write().unwrap_or_else(|e| e.into_inner());
    if !list.iter().any(|known| known.expose_secret() == value) {
        list.push(secret.clone());
        list.sort_by_key(|known| std::cmp::Reverse(known.expose_secret().len()));
    }
}

/// `text` with every value given to [`never_quote`] replaced by `[redacted]`.
pub fn mask_known_secrets(text: &str) -> String {
    let list = NEVER_QUOTED.read().unwrap_or_else(|e| e.into_inner());
    let mut text = text.to_string();
    for known in list.iter() {
        if text.contains(known.expose_secret()) {
            text = text.replace(known.expose_secret(), REDACTED);
        }
    }
    text
}

/// A short excerpt of a body for an error message: at most [`EXCERPT_BYTES`] bytes of
/// printable text with whitespace folded, HTML pages reduced to their title or text, the
/// client's key and secret masked, and anything that looks like a token or key masked.
pub fn excerpt(body: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
    if body.len() > 4096 {
        // The word cut at the window's edge could be the start of a secret: drop it.
        text.truncate(text.rfind(char::is_whitespace).unwrap_or(0));
    }
    let text = mask_known_secrets(&text);
    let lower = text.to_ascii_lowercase();
    let text = if lower.contains("<html") || lower.contains("<!doctype") {
        let title = lower.find("<title>").and_then(|s| {
            lower[s + 7..]
                .find("</title>")
                .map(|e| text[s + 7..s + 7 + e].to_string())
        });
        format!("html page: {}", title.unwrap_or_else(|| strip_tags(&text)))
    } else {
        text
    };
    let mut out = String::new();
    for word in text.split_whitespace() {
        let word = mask_secret_like(word);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word);
        if out.len() >= EXCERPT_BYTES {
            break;
        }
    }
    let mut out: String = out.chars().filter(|c| !c.is_control()).collect();
    if out.len() > EXCERPT_BYTES {
        let mut cut = EXCERPT_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    if out.is_empty() {
        "(empty body)".into()
    } else {
        out
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Masks long unbroken runs of token alphabet (JWTs, keys) that a server might echo back.
fn mask_secret_like(word: &str) -> String {
    let longest_run = word
        .split(|c: char| {
            !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '='))
        })
        .map(str::len)
        .max()
        .unwrap_or(0);
    if longest_run >= 32 {
        REDACTED.into()
    } else {
        word.to_string()
    }
}

#[cfg(test)]
mod tests;
