//! The Device42 API: one HTTP client with timeouts, TLS settings, the token lifecycle, retries
//! with capped, jittered backoff, and the response models. No SQL here.
//!
//! Rooms, each using only those listed after it:
//! - [`client`]: [`Client`], the face: puts the rooms below together for jobs and commands.
//! - [`retry`]: backoff, `Retry-After`, the [`retry::breaker`] that pauses calls to a failing
//!   appliance, and the [`retry::log`] that keeps retries to one WARN per endpoint.
//! - [`auth`]: the token lifecycle: obtained once, refreshed before expiry, renewed once when
//!   refused ([`auth::token`] is the cache).
//! - [`transport`]: the connection: reqwest client, timeouts, TLS, one request and its answer.
//! - [`classify`]: what an answer or a failure means, as an [`Error`] that says whether a
//!   retry may help.
//! - [`dns`]: name lookups whose failures classification can recognise by type.
//! - [`exchange`]: a request, its name in messages, and its whole answer.
//! - [`error`]: [`Error`] and the excerpts of bodies it quotes, secrets masked.
//! - [`tls`]: trust in the appliance's certificate (system CAs, `ca_file`, self-signed CAs).
//! - [`models`]: parsing of the responses, tolerant where Device42 is inconsistent.

pub mod auth;
pub mod classify;
pub mod client;
pub mod dns;
pub mod error;
pub mod exchange;
pub mod models;
pub mod retry;
pub mod tls;
pub mod transport;

pub use auth::TOKEN_PATH;
pub use client::{BUILDINGS_PATH, Client};
pub use error::{EXCERPT_BYTES, Error};
pub use exchange::Body;
pub use retry::breaker::Gate;
