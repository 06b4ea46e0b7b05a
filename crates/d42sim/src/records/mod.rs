//! Device records: what the simulator stores per device, and the facts (about sixty fields) that
//! are derived from it deterministically for a seed.
//!
//! Only [`Device`] is stored, a few dozen bytes per device, so that 400 000 devices are generated
//! in well under a second. Everything else in a record is recomputed from `(seed, id)` by
//! [`Facts::of`] when the record is rendered, which `inventory` caches.

mod catalog;
mod facts;
mod fields;
mod mix;

use chrono::{DateTime, SecondsFormat};

pub(crate) use facts::Facts;
use mix::Mix;

/// 2019-01-01T00:00:00Z: the earliest `first_added` of a generated device.
const EPOCH_MS: i64 = 1_546_300_800_000;
/// Five years, the span over which generated devices were first added and last updated.
const SPAN_MS: i64 = 5 * 365 * 24 * 3600 * 1000;

/// What is stored for one device; its other fields follow from the seed and `id`.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    /// `device_id` (and `id` in v1): the key of every record.
    pub id: i64,
    /// How often the device was edited: changes its name suffix and notes.
    pub edits: u32,
    /// When it was first added, unix milliseconds.
    pub first_added_ms: i64,
    /// When it was last updated, unix milliseconds: what `last_edited_gt` filters on.
    pub last_updated_ms: i64,
}

impl Device {
    /// A device of the initial inventory: its times are fixed by the seed.
    pub fn generated(seed: u64, id: i64) -> Device {
        let mut mix = Mix::new(seed, id, 1);
        let first_added_ms = EPOCH_MS + mix.below(SPAN_MS as u64 / 2) as i64;
        let last_updated_ms = first_added_ms + mix.below(SPAN_MS as u64 / 2) as i64;
        Device {
            id,
            edits: 0,
            first_added_ms,
            last_updated_ms,
        }
    }

    /// A device added while the simulator runs, at `now_ms`.
    pub fn added(id: i64, now_ms: i64) -> Device {
        Device {
            id,
            edits: 0,
            first_added_ms: now_ms,
            last_updated_ms: now_ms,
        }
    }

    /// Whether the initial inventory leaves a gap at `id` (a device deleted long ago): about 3%.
    pub fn is_gap(seed: u64, id: i64) -> bool {
        Mix::new(seed, id, 0).below(100) < 3
    }
}

/// The four device types, with Device42's type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Physical,
    Blade,
    Virtual,
    Cluster,
}

impl Kind {
    /// The `type` string.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Physical => "physical",
            Kind::Blade => "blade",
            Kind::Virtual => "virtual",
            Kind::Cluster => "cluster",
        }
    }

    /// The `type_id` number.
    pub fn type_id(self) -> i64 {
        match self {
            Kind::Physical => 1,
            Kind::Blade => 2,
            Kind::Virtual => 3,
            Kind::Cluster => 5,
        }
    }
}

/// Unix milliseconds as Device42 writes times: UTC with microseconds and `Z`
/// (`2016-07-05T22:08:34.043541Z`).
pub(crate) fn timestamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}
