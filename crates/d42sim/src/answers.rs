//! Device42's canned answers: refused credentials, unknown paths, wrong methods.

use crate::http::Response;

/// Whether `response` refuses the credential: a 401, or the 500 permission error.
pub(crate) fn is_refusal(response: &Response) -> bool {
    match response.status {
        401 => true,
        500 => response.body == PERMISSION_DENIED.as_bytes(),
        _ => false,
    }
}

/// The 401 of an unknown, expired or revoked token.
pub(crate) fn invalid_token() -> Response {
    Response::json(401, r#"{"detail": "Invalid token."}"#)
}

/// The body of the one recorded answer to bad credentials.
const PERMISSION_DENIED: &str =
    r#"{"msg": "You don't have permissions to access this resource.", "code": "1"}"#;

/// The one recorded answer to bad credentials.
pub(crate) fn permission_denied() -> Response {
    Response::json(500, PERMISSION_DENIED)
}

/// The 404 of a path Device42 does not serve.
pub(crate) fn not_found() -> Response {
    Response::json(404, r#"{"detail": "Not found."}"#)
}

/// The 405 of a method a path does not take.
pub(crate) fn not_allowed(method: &str) -> Response {
    Response::json_value(
        405,
        &serde_json::json!({"detail": format!("Method \"{method}\" not allowed.")}),
    )
}
