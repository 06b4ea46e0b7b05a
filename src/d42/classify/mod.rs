//! Classification: what an answer, or the lack of one, means for the client. Every failure
//! becomes an [`Error`](super::Error) that says whether it is worth retrying.
//!
//! - [`answer`]: an HTTP answer by its status and, for Device42's 500s, its text: success, a
//!   refused credential, an outage, a refusal.
//! - [`failure`]: a request that got no answer, by the type of its cause: timeout, certificate,
//!   TLS handshake, DNS, refused connection, broken transfer.

pub mod answer;
pub mod failure;
