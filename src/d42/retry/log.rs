//! [`RetryLog`]: how loudly a retry is logged, so that retries say "something is wrong" once
//! per endpoint instead of once per page per attempt.
//!
//! The first retry of an endpoint (method and path, whatever the page) is a WARN; the retries
//! of that endpoint in the next [`QUIET_FOR`] are DEBUG, and the next WARN says how many there
//! were. A pull's pages in flight and their attempts thus share one WARN; the run's final
//! ERROR and the breaker's WARN carry the rest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after a retry WARN further retries of the same endpoint stay at DEBUG: the
/// default pull interval, so that one run logs at most one such WARN per endpoint while an
/// appliance that keeps needing retries still shows up in each window.
pub const QUIET_FOR: Duration = Duration::from_secs(15 * 60);

/// The level of one retry's log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Level {
    /// Log at WARN; `quietened` retries of the endpoint went to DEBUG since the last WARN.
    Warn {
        /// Retries logged at DEBUG since the previous WARN.
        quietened: u64,
    },
    /// Log at DEBUG: a WARN for this endpoint is recent.
    Debug,
}

/// Per endpoint, when its last retry WARN was logged. Shared by a client's clones.
#[derive(Debug, Default)]
pub struct RetryLog {
    endpoints: Mutex<HashMap<String, Warned>>,
}

#[derive(Debug)]
struct Warned {
    /// When the last WARN for the endpoint was logged.
    at: Instant,
    /// Retries logged at DEBUG since.
    quietened: u64,
}

impl RetryLog {
    /// The level for a retry of `endpoint` now.
    pub fn level(&self, endpoint: &str, now: Instant) -> Level {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        match endpoints.get_mut(endpoint) {
            Some(warned) if now.saturating_duration_since(warned.at) < QUIET_FOR => {
                warned.quietened += 1;
                Level::Debug
            }
            Some(warned) => {
                let quietened = warned.quietened;
                *warned = Warned {
                    at: now,
                    quietened: 0,
                };
                Level::Warn { quietened }
            }
            None => {
                endpoints.insert(
                    endpoint.to_string(),
                    Warned {
                        at: now,
                        quietened: 0,
                    },
                );
                Level::Warn { quietened: 0 }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_of_one_endpoint_share_one_warning_per_quiet_period() {
        let log = RetryLog::default();
        let t = Instant::now();

        let first = log.level("GET /api/2.0/devices/", t);
        let again = log.level("GET /api/2.0/devices/", t + Duration::from_secs(1));
        let other = log.level("POST /api/1.0/buildings/", t + Duration::from_secs(1));
        let still = log.level(
            "GET /api/2.0/devices/",
            t + QUIET_FOR - Duration::from_secs(1),
        );
        let later = log.level("GET /api/2.0/devices/", t + QUIET_FOR);

        assert_eq!(first, Level::Warn { quietened: 0 });
        assert_eq!(again, Level::Debug);
        assert_eq!(other, Level::Warn { quietened: 0 });
        assert_eq!(still, Level::Debug);
        assert_eq!(later, Level::Warn { quietened: 2 });
    }
}
