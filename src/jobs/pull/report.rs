//! What a pull tells when it ends: its one log line and its run metrics, by outcome.

use super::error::PullError;
use crate::config::DevicesSettings;
use crate::d42::{self, Client};
use crate::jobs::{Outcome, Start};
use crate::metrics::Metrics;
use crate::store::devices::PageCounts;
use crate::store::runs::{Job, RunCounts};
use std::time::Duration;

/// How an applied pull took its pages.
#[derive(Debug, Clone, Copy)]
pub(super) struct Taken {
    /// Pages parsed and reused by its last pass.
    pub(super) pages: PageCounts,
    /// `full` or `incremental`.
    pub(super) mode: &'static str,
    /// Response body bytes of every page it fetched, retried passes included: what the pull
    /// cost the appliance and the link.
    pub(super) bytes: u64,
}

/// An applied pull: one INFO line with its counts.
pub(super) fn applied(counts: &RunCounts, taken: Taken, duration: Duration, metrics: &Metrics) {
    tracing::info!(
        items = counts.items,
        added = counts.added,
        changed = counts.changed,
        pages_parsed = taken.pages.parsed,
        pages_reused = taken.pages.reused,
        repairs = taken.pages.repairs,
        removed = counts.removed,
        mode = taken.mode,
        bytes = taken.bytes,
        duration_ms = duration.as_millis() as u64,
        "pull finished"
    );
    finished(metrics, Outcome::Ok, duration);
}

/// A pull held by the mass-deletion guard: one WARN line saying how to apply it.
pub(super) fn held(
    (stored, incoming, removing): (i64, i64, i64),
    settings: &DevicesSettings,
    duration: Duration,
    metrics: &Metrics,
) {
    tracing::warn!(
        stored,
        incoming,
        removing,
        max_delete_fraction = settings.max_delete_fraction,
        "pull held: it would remove more devices than devices.max_delete_fraction allows; \
         nothing changed; run `d42sync pull --allow-mass-delete` to apply it"
    );
    finished(metrics, Outcome::Held, duration);
}

/// A failed pull: one ERROR line, a WARN for a stop by the service manager, DEBUG for a probe
/// whose failure the breaker reports.
pub(super) fn failed(
    e: &PullError,
    (start, client): (&Start, &Client),
    settings: &DevicesSettings,
    duration: Duration,
) {
    let message = e.to_string();
    let refused = matches!(e, PullError::Api(d42::Error::Paused { .. }));
    let duration_ms = duration.as_millis() as u64;
    if start.failure_reported(client, refused) {
        tracing::debug!(error = %message, "probe pull failed; devices unchanged");
    } else if matches!(e, PullError::Cancelled) {
        // A stop asked for by the service manager: nothing for an operator to do.
        tracing::warn!(duration_ms, "pull stopped by shutdown; devices unchanged");
    } else {
        tracing::error!(endpoint = %settings.endpoint, error = %message, duration_ms, "pull failed; devices unchanged");
    }
    finished(client.metrics(), Outcome::Failed, duration);
}

fn finished(metrics: &Metrics, outcome: Outcome, duration: Duration) {
    metrics.run_finished(
        Job::PullDevices.as_str(),
        outcome.as_str(),
        duration.as_secs_f64(),
    );
}
