//! d42sync keeps a Device42 inventory mirrored in a local SQLite database and pushes building
//! records queued by other tools to Device42.
//!
//! # Layout
//! - [`cli`]: the command line (clap definitions only).
//! - [`config`]: typed, validated settings; the only code that reads config files and environment.
//! - [`telemetry`]: tracing setup, JSON or text.
//! - [`device`]: the typed columns derived from a device record.
//! - [`d42`]: the Device42 API: HTTP client, token lifecycle, retries, response models. No SQL.
//! - [`store`]: SQLite: pool and pragmas, migrations, one module per table. No HTTP.
//! - [`jobs`]: the pull and push jobs, the only place where [`d42`] and [`store`] meet.
//! - [`daemon`]: the long-running service: scheduler, signals, single-instance lock, systemd notify.
//! - [`metrics`]: the [`metrics::Metrics`] handle passed to whoever records, and its exposition.
//! - [`commands`]: what each subcommand does, as glue over the modules above.
//! - [`time`]: timestamps as stored, and duration parsing.
//! - [`failpoint`]: named crash points for the crash tests (only with the `failpoints` feature,
//!   which the tests turn on; a no-op in every build that ships).
//!
//! The Device42 stand-in the tests, the benchmark and the demo use is the `d42sim` crate of this
//! workspace; this crate does not depend on it.

pub mod cli;
pub mod commands;
pub mod config;
pub mod d42;
pub mod daemon;
pub mod device;
pub mod failpoint;
pub mod jobs;
pub mod metrics;
pub mod store;
pub mod telemetry;
pub mod time;
