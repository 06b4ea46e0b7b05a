//! Issued tokens and their validity.
//!
//! Tokens are opaque random strings shaped like RS256 JWTs. Their real lifetime is the current
//! token ttl on tokio's clock (so that paused-time tests can expire them).

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// The JWT header `{"alg":"RS256","typ":"JWT"}`, base64url: every issued token starts with it.
const JWT_HEADER: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

/// Issued tokens.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// The last `token_id` handed out.
    last_id: i64,
    /// Live tokens: token text to (token_id, end of validity).
    live: HashMap<String, (i64, Instant)>,
    /// Every token ever issued, in order, so that tests can grep logs for them.
    pub issued: Vec<String>,
}

impl Tokens {
    /// Issues a new token valid for `ttl`; returns it and its id.
    pub fn issue(&mut self, ttl: Duration) -> (String, i64) {
        self.last_id += 1;
        let token = random_jwt();
        self.live
            .insert(token.clone(), (self.last_id, Instant::now() + ttl));
        self.issued.push(token.clone());
        (token, self.last_id)
    }

    /// The id of `token` when it is live and unexpired.
    pub fn check(&self, token: &str) -> Option<i64> {
        match self.live.get(token) {
            Some(&(id, until)) if Instant::now() < until => Some(id),
            _ => None,
        }
    }

    /// Ends the token with this id; false when there is none.
    pub fn revoke(&mut self, id: i64) -> bool {
        let before = self.live.len();
        self.live.retain(|_, (token_id, _)| *token_id != id);
        self.live.len() != before
    }

    /// Ends every token.
    pub fn expire_all(&mut self) {
        self.live.clear();
    }
}

/// A random token shaped like an RS256 JWT: header, payload and signature, base64url.
fn random_jwt() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let mut part = |n: usize| -> String {
        (0..n)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let payload = part(96);
    let signature = part(342);
    format!("{JWT_HEADER}.eyJ{payload}.{signature}")
}
