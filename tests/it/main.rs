//! The integration tests: one binary, talking only to simulators they start on 127.0.0.1.
//!
//! - [`helpers`]: [`helpers::TestEnv`], a simulator plus a temp dir with a config and a database.
//! - One module per area: config and CLI, the client, pull, push (and the push under faults that
//!   are not the row's), device records as stored, the daemon, shared files, secrets, the unit,
//!   backups, the ops assets.

mod backup;
mod change_log;
mod children;
mod churn;
mod cli_config;
mod cli_usage;
mod client;
mod daemon;
mod files;
mod helpers;
mod incremental;
mod leaks;
mod ops_assets;
mod pull;
mod push;
mod push_faults;
mod records;
mod systemd_unit;
