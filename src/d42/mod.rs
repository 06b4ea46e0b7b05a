//! The Device42 API: one HTTP client with timeouts, TLS settings, the token lifecycle, retries
//! with capped, jittered backoff, and the response models. No SQL here.
//!
//! - [`client`]: [`Client`], requests with authentication and retries.
//! - [`breaker`]: pauses calls to an appliance that keeps failing, probing once per interval.
//! - [`token`]: the token cache: obtained once, refreshed before expiry, single flight.
//! - [`models`]: parsing of the responses, tolerant where Device42 is inconsistent.
//! - [`error`]: [`Error`], which says whether a failure is worth retrying.
//! - [`tls`]: trust in the appliance's certificate (system CAs, `ca_file`, self-signed CAs).
//! - [`transport`]: names the cause of a request that got no answer (DNS, refused, TLS, ...).
//! - [`retry_log`]: one retry WARN per endpoint at a time.

pub mod breaker;
pub mod client;
pub mod error;
pub mod models;
pub mod retry_log;
pub mod tls;
pub mod token;
pub mod transport;

pub use breaker::Gate;
pub use client::Client;
pub use error::Error;

/// The token endpoint (the trailing slash is required by Device42).
pub const TOKEN_PATH: &str = "/tauth/1.0/token/";

/// The building upsert endpoint.
pub const BUILDINGS_PATH: &str = "/api/1.0/buildings/";

/// Longest excerpt of a response body quoted in an error: enough to recognise the page, short
/// enough for one log line.
pub const EXCERPT_BYTES: usize = 200;
