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

/// The latest instant stored: the last millisecond of year 9999. Later years are written with a
/// sign and more digits (`+262142-...`), which sort as text before every four-digit year.
pub fn latest() -> DateTime<Utc> {
    parse_iso("9999-12-31T23:59:59.999Z").expect("a valid timestamp")
}

/// The earliest instant stored: the first millisecond of year 0, for the same reason.
pub fn earliest() -> DateTime<Utc> {
    parse_iso("0000-01-01T00:00:00.000Z").expect("a valid timestamp")
}

/// Adds a std duration to a UTC instant, saturating at [`latest`].
pub fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .map_or_else(latest, |t| t.min(latest()))
}

/// Subtracts a std duration from a UTC instant, saturating at [`earliest`].
pub fn sub(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .map_or_else(earliest, |t| t.max(earliest()))
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
    fn a_huge_duration_saturates_at_a_time_that_sorts_as_text() {
        let now = parse_iso("2026-11-28T01:30:38.123Z").unwrap();
        let huge = Duration::from_secs(99_999_999_999_999_999);
        let later = iso(add(now, huge));
        let earlier = iso(sub(now, huge));
        assert_eq!(later, "9999-12-31T23:59:59.999Z");
        assert_eq!(earlier, "0000-01-01T00:00:00.000Z");
        assert!(earlier.as_str() < iso(now).as_str() && iso(now).as_str() < later.as_str());
        assert_eq!(
            iso(add(now, Duration::from_secs(60))),
            "2026-11-28T01:31:38.123Z"
        );
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
