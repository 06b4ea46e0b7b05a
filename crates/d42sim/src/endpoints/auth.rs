//! The token endpoints (`/tauth/1.0/token/`) and the Bearer check in front of `/api/`.
//!
//! A refused credential is answered as the appliance was recorded answering it: HTTP 500 with
//! `{"msg": "You don't have permissions to access this resource.", "code": "1"}`, for bad Basic
//! credentials and (unless [`TokenRefusal::Unauthorized`] asks for a 401) for a Bearer token that
//! is unknown, expired or revoked.
//!
//! The token answer's `expires` field is wall-clock and may be skewed on purpose, as on an
//! appliance whose clock is off; the token's real lifetime is kept in [`crate::tokens`].

use crate::answers::{invalid_token, permission_denied};
use crate::config::TokenRefusal;
use crate::http::{Request, Response};
use crate::state::Shared;
use crate::support::lock;

/// `POST /tauth/1.0/token/`: a new token for the right Basic credentials, else the permission
/// error Device42 was recorded sending (HTTP 500).
pub(crate) fn issue(shared: &Shared, request: &Request) -> Response {
    let expected = (
        shared.cfg.client_key.as_str(),
        shared.cfg.secret_key.as_str(),
    );
    let credentials = request.header("authorization").and_then(basic_credentials);
    if credentials.as_ref().map(|(k, s)| (k.as_str(), s.as_str())) != Some(expected) {
        return permission_denied();
    }
    token_answer(shared, None)
}

/// `PUT /tauth/1.0/token/{id}/`: replaces token `id` with a new one (new token and token_id).
pub(crate) fn extend(shared: &Shared, request: &Request, id: i64) -> Response {
    if let Err(refused) = bearer(shared, request) {
        return refused;
    }
    token_answer(shared, Some(id))
}

/// `DELETE /tauth/1.0/token/{id}/`: revokes token `id`.
pub(crate) fn revoke(shared: &Shared, request: &Request, id: i64) -> Response {
    if let Err(refused) = bearer(shared, request) {
        return refused;
    }
    if !lock(&shared.tokens).revoke(id) {
        return Response::json(404, r#"{"msg": "Token not found", "code": "1"}"#);
    }
    Response::json(200, r#"{"msg": "API Token deleted", "code": "0"}"#)
}

/// The Bearer token's id when it is live, else the refusal `token_refusal` names.
pub(crate) fn bearer(shared: &Shared, request: &Request) -> Result<i64, Response> {
    let token = request
        .header("authorization")
        .and_then(|v| strip_scheme(v, "bearer"));
    token
        .and_then(|t| lock(&shared.tokens).check(t.trim()))
        .ok_or_else(|| match shared.cfg.token_refusal {
            TokenRefusal::PermissionDenied => permission_denied(),
            TokenRefusal::Unauthorized => invalid_token(),
        })
}

/// Issues a token (replacing `replacing` when given) and renders the token answer.
fn token_answer(shared: &Shared, replacing: Option<i64>) -> Response {
    let ttl = shared.knobs().token_ttl;
    let (token, token_id) = {
        let mut tokens = lock(&shared.tokens);
        if let Some(old) = replacing
            && !tokens.revoke(old)
        {
            return Response::json(404, r#"{"msg": "Token not found", "code": "1"}"#);
        }
        tokens.issue(ttl)
    };
    let expires = chrono::Utc::now()
        + chrono::Duration::from_std(ttl).unwrap_or_default()
        + chrono::Duration::seconds(shared.cfg.expires_skew);
    let expires = expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let minutes = ttl.as_secs_f64() / 60.0;
    // Whole minutes render as an integer, as the appliance sends them; others as a float.
    let ttl = if minutes.fract() == 0.0 {
        format!("{}", minutes as i64)
    } else {
        format!("{minutes:?}")
    };
    Response::json(
        200,
        format!(
            r#"{{"code": 0, "expires": "{expires}", "token": "{token}", "ttl": {ttl}, "msg": "connected", "token_id": {token_id}}}"#
        ),
    )
}

/// The value after `scheme ` in an `Authorization` header, the scheme compared case-insensitively.
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.trim().split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// The `(user, password)` of a Basic `Authorization` header.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let decoded = base64_decode(strip_scheme(header, "basic")?.trim())?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Decodes standard base64 (padding optional); `None` when malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}
