//! Timestamps as the database stores them (UTC ISO-8601 with milliseconds) and duration parsing
//! for settings such as `"10s"` or `"90d"`.

use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

/// Formats an instant the way every timestamp column stores it: `2026-11-28T01:30:38.123Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current time as stored in the database.
pub fn now_iso() -> String {
    iso(Utc::now())
}

/// Parses a timestamp written by [`iso`] (or any RFC 3339 time).
pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a human duration such as `"10s"`, `"1h"`, `"90d"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| e.to_string().to_lowercase())
}

/// Adds a std duration to a UTC instant, saturating far in the future.
pub fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Subtracts a std duration from a UTC instant, saturating far in the past.
pub fn sub(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_a_z_suffix() {
        let t = parse_iso("2026-11-28T01:30:38.123Z").unwrap();
        assert_eq!(iso(t), "2026-11-28T01:30:38.123Z");
    }

    #[test]
    fn durations_accept_days() {
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert!(parse_duration("ten seconds").is_err());
    }
}
