//! How single values are read: each helper takes the value as serde hands it over and refuses
//! what the setting cannot be, so that the error carries the value's key. Durations are
//! humantime text (`"500ms"`, `"10s"`, `"90d"`) through [`duration`], for every duration key.

use secrecy::SecretString;
use serde::de::{Deserialize, Deserializer, Error};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::filter::LevelFilter;
use url::Url;

/// A duration longer than zero, written with its unit.
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    let duration = crate::time::parse_duration(&text).map_err(D::Error::custom)?;
    if duration.is_zero() {
        return Err(D::Error::custom("must be longer than zero"));
    }
    Ok(duration)
}

/// A whole number from `MIN` to `MAX`.
pub(super) fn between<'de, D, T, const MIN: i64, const MAX: i64>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Copy + TryInto<i64>,
{
    let value = T::deserialize(d)?;
    match value.try_into() {
        Ok(n) if (MIN..=MAX).contains(&n) => Ok(value),
        Ok(n) => Err(D::Error::custom(format!(
            "must be between {MIN} and {MAX}, got {n}"
        ))),
        Err(_) => Err(D::Error::custom(format!("must be between {MIN} and {MAX}"))),
    }
}

/// A number from 0 to 1.
pub(super) fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(D::Error::custom("must be between 0 and 1"));
    }
    Ok(value)
}

/// The API client's key: required, trimmed, never quoted back.
pub(super) fn client_key<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    let text = String::deserialize(d).map_err(|_| D::Error::custom("must be a string"))?;
    match text.trim() {
        "" => Err(D::Error::custom("is required")),
        key => Ok(SecretString::from(key.to_string())),
    }
}

/// An inline secret key: never quoted back, empty is none.
pub(super) fn inline_secret<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SecretString>, D::Error> {
    let text = String::deserialize(d).map_err(|_| D::Error::custom("must be a string"))?;
    Ok(Some(text).filter(|t| !t.is_empty()).map(SecretString::from))
}

/// The appliance's url: http(s) with a host, no credentials in it, and plain http only to
/// loopback. The url is never quoted back: whatever sits before an `@` is a credential.
pub(super) fn base_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Err(D::Error::custom("is required"));
    }
    let url = Url::parse(text.trim()).map_err(|e| D::Error::custom(format!("invalid url: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(D::Error::custom("must be an http(s) url with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(D::Error::custom(
            "must not carry credentials (user:password@); the API client key and secret authenticate",
        ));
    }
    // The token request carries key:secret in its Basic header, and every call a token: plain
    // http is for a simulator on this host only.
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(D::Error::custom(
            "plain http would send the API credentials in clear; use https (http is allowed to loopback only)",
        ));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// A path, trimmed.
pub(super) fn path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    Ok(PathBuf::from(String::deserialize(d)?.trim()))
}

/// A path that may be left empty, meaning none.
pub(super) fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let text = String::deserialize(d)?;
    Ok(Some(text.trim())
        .filter(|t| !t.is_empty())
        .map(PathBuf::from))
}

/// A Device42 API path such as `/api/2.0/devices/`.
pub(super) fn api_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let path = String::deserialize(d)?.trim().to_string();
    if !path.starts_with("/api/") || !path.ends_with('/') {
        return Err(D::Error::custom(
            "must be an api path like /api/2.0/devices/ (with the trailing slash)",
        ));
    }
    Ok(path)
}

/// Column names for `include_cols=`: a list, each its own string of letters, digits and `_`, or
/// one string of names separated by commas (`"notes,tags"`, as in the query string).
pub(super) fn columns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Columns {
        Listed(Vec<String>),
        Joined(String),
    }
    let columns: Vec<String> = match Columns::deserialize(d)
        .map_err(|_| D::Error::custom("must be a list of column names"))?
    {
        Columns::Listed(list) => list.iter().map(|c| c.trim().to_string()).collect(),
        Columns::Joined(text) => text.split(',').map(|c| c.trim().to_string()).collect(),
    };
    if columns.iter().any(|c| c.is_empty()) {
        return Err(D::Error::custom("has an empty column name"));
    }
    if let Some(bad) = columns.iter().find(|c| c.contains(',')) {
        return Err(D::Error::custom(format!(
            "column name {bad:?} holds a comma; list each column as its own string"
        )));
    }
    if let Some(bad) = columns
        .iter()
        .find(|c| !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
    {
        return Err(D::Error::custom(format!("invalid column name {bad:?}")));
    }
    Ok(columns)
}

/// A tracing filter whose every directive sets a level. A bare word that is not a level would be
/// taken as a target to show, and would silence everything else: `verbose` is refused.
pub(super) fn log_filter<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let level = String::deserialize(d)?.trim().to_string();
    tracing_subscriber::EnvFilter::builder()
        .parse(&level)
        .map_err(|e| D::Error::custom(format!("invalid filter: {e}")))?;
    let bare_target = level
        .split(',')
        .map(str::trim)
        .find(|d| !d.is_empty() && !d.contains('=') && d.parse::<LevelFilter>().is_err());
    if let Some(word) = bare_target {
        return Err(D::Error::custom(format!(
            "{word:?} is not a level: use trace, debug, info, warn, error or off, or target=level"
        )));
    }
    Ok(level)
}

/// Where to serve `/metrics`; empty is off.
pub(super) fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim() {
        "" => Ok(None),
        addr => addr.parse().map(Some).map_err(|_| {
            D::Error::custom(format!(
                "must be an address like 127.0.0.1:9142, got {addr:?}"
            ))
        }),
    }
}
