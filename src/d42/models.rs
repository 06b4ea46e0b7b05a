//! Parsing of Device42's answers, tolerant where Device42 is inconsistent: `code` as int or
//! string, the devices list key in either case, `total_count` sometimes absent, building ids in
//! `msg[1]`. Device records are not modelled: each is kept as the exact JSON text it arrived as,
//! and only the typed columns are read from it, under their v2 or v1 names.

mod page;

#[cfg(test)]
pub(crate) use page::Fields;
pub use page::{DeviceItem, DevicePage, parse_device_page};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Device42's `code` field, which arrives as `0` or `"0"`.
pub fn code_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Device42's `msg` field as text (it is a string on errors, a list on building success).
pub fn msg_of(v: &Value) -> String {
    match v.get("msg") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

/// A successful `POST /tauth/1.0/token/`.
#[derive(Debug)]
pub struct TokenGrant {
    /// The bearer token.
    pub token: secrecy::SecretString,
    /// Its id, for extending or revoking.
    pub token_id: Option<i64>,
    /// Lifetime in minutes (may be fractional).
    pub ttl_minutes: f64,
    /// The absolute expiry by the appliance's clock, a cross-check only.
    pub expires: Option<DateTime<Utc>>,
}

/// Parses a token grant; `Err` carries the cause for a `BadResponse`.
pub fn parse_token(body: &[u8]) -> Result<TokenGrant, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed json: {e}"))?;
    if let Some(code) = v.get("code").and_then(code_of).filter(|c| *c != 0) {
        return Err(format!("code {code}: {}", msg_of(&v)));
    }
    let token = v
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("no token in the answer")?;
    let ttl_minutes = match v.get("ttl") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|t| *t > 0.0)
    .ok_or("no positive ttl in the answer")?;
    let expires = v
        .get("expires")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(TokenGrant {
        token: secrecy::SecretString::from(token.to_string()),
        token_id: v.get("token_id").and_then(code_of),
        ttl_minutes,
        expires,
    })
}

/// What the building upsert answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildingAnswer {
    /// Accepted, with the building's id when Device42 gave one.
    Accepted(Option<i64>),
    /// HTTP 200 with `code != 0`: refused.
    Refused(String),
}

/// Parses a 2xx answer of `POST /api/1.0/buildings/`. `Err` is the cause for a `BadResponse`.
pub fn parse_building_answer(body: &[u8]) -> Result<BuildingAnswer, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed json: {e}"))?;
    let code = v
        .get("code")
        .and_then(code_of)
        .ok_or("no code in the answer")?;
    if code != 0 {
        return Ok(BuildingAnswer::Refused(format!(
            "code {code}: {}",
            msg_of(&v)
        )));
    }
    let id = match v.get("msg") {
        Some(Value::Array(a)) => a.get(1).and_then(code_of),
        _ => None,
    };
    Ok(BuildingAnswer::Accepted(id))
}

#[cfg(test)]
mod tests;
