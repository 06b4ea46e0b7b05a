//! Full or incremental: which pull runs, and the watermark it leaves.
//!
//! A pull is incremental when the last applied pull of `devices.endpoint` left a watermark, its
//! records were asked as they are asked now (`include_cols`), a full pull was applied less than
//! `devices.full_every` ago, the inventory has rows, and `pull --full` was not asked. It then
//! pages two listings: the ids of every device (the brief list, for removals and the total) and
//! the full records of the devices edited on or after the watermark's day less one (Device42's
//! edit filter is day-granular and inclusive, and the day before covers clocks and time zones).
//! [`crate::store::devices::PullStage`] joins them into what a full pull would have staged, and
//! the apply is the same: one transaction, change log, deletion guard, and the watermark.

use super::error::PullError;
use crate::config::DevicesSettings;
use crate::store::Db;
use crate::store::devices::{self, PullStage};
use crate::store::watermarks::{self, Watermark};
use chrono::{Days, NaiveDate, Utc};

/// What a pull fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Every record.
    Full,
    /// The ids of every device, and the records edited on or after `since`.
    Incremental {
        /// The first day whose edits are fetched.
        since: NaiveDate,
    },
}

impl Mode {
    /// The name in the run's INFO line.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Incremental { .. } => "incremental",
        }
    }
}

/// Decides what this pull fetches into `stage`; `full` when `pull --full` asked.
pub(super) async fn mode(
    db: &Db,
    settings: &DevicesSettings,
    full_asked: bool,
    stage: &PullStage,
) -> Result<Mode, PullError> {
    let full = |reason: &str| {
        tracing::debug!(reason, "full pull");
        Ok(Mode::Full)
    };
    if full_asked {
        return full("asked for");
    }
    if stage.is_first_load() || devices::count(db).await? == 0 {
        return full("the inventory is empty");
    }
    let Some(mark) = watermarks::get(db, &settings.endpoint).await? else {
        return full("no watermark for this endpoint");
    };
    if mark.view != view(settings) {
        return full("the records are asked with other columns");
    }
    let now = Utc::now();
    if crate::time::add(mark.full_from, settings.full_every) <= now {
        return full("devices.full_every has passed since the last full pull");
    }
    let from = mark.pulled_from.min(now).date_naive();
    Ok(Mode::Incremental {
        since: from.checked_sub_days(Days::new(1)).unwrap_or(from),
    })
}

/// The watermark an applied pull in `mode` records.
pub(super) fn watermark(settings: &DevicesSettings, mode: Mode) -> Watermark {
    Watermark {
        endpoint: settings.endpoint.clone(),
        view: view(settings),
        full: mode == Mode::Full,
    }
}

/// What the records are asked with: the `include_cols` of a v2 endpoint (a v1 endpoint sends
/// full records whatever they are).
fn view(settings: &DevicesSettings) -> String {
    if settings.endpoint.starts_with("/api/2.0/") {
        settings.include_cols.join(",")
    } else {
        String::new()
    }
}
