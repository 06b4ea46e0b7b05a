//! The command line: clap definitions only. What each command does lives in [`crate::commands`].

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Keeps a Device42 inventory mirrored in SQLite and pushes queued buildings to Device42.
#[derive(Debug, Parser)]
#[command(
    name = "d42sync",
    version,
    about,
    propagate_version = true,
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    /// The config file (TOML). Global: every command reads it.
    #[arg(long, global = true, env = "D42SYNC_CONFIG", default_value = crate::config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

/// The end of `d42sync --help` and of the man page: what scripts and operators look up.
const AFTER_LONG_HELP: &str = "\
Exit status: 0 success; 1 the job failed (or a pull was held); 2 usage error; 78 configuration \
error, with the key named on stderr.

Environment: D42SYNC_<SECTION>__<KEY> overrides a config key, e.g. D42SYNC_DEVICE42__BASE_URL \
(the secret key excepted).

Files: /etc/d42sync/d42sync.toml, the config; /etc/d42sync/secret_key, the Device42 secret key \
(root only; systemd hands it to the service); /var/lib/d42sync/inventory.db, the database.";

/// The subcommands of the spec.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: both jobs on their schedules until SIGTERM or SIGINT.
    Run,
    /// Pull the device inventory once now.
    Pull {
        /// Apply a pull even though it removes more than devices.max_delete_fraction.
        #[arg(long)]
        allow_mass_delete: bool,
        /// Fetch every record instead of only those edited since the last pull (a full pull
        /// also runs by itself every devices.full_every).
        #[arg(long)]
        full: bool,
    },
    /// Push the building queue once now.
    Push,
    /// Add a building to the queue.
    EnqueueBuilding(EnqueueArgs),
    /// Put dead queue rows back to pending.
    Requeue(RequeueArgs),
    /// Show the last runs, device count, queue counts and next runs.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config.
    CheckConfig {
        /// Also obtain a token from Device42.
        #[arg(long)]
        connect: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
}

/// The fields of a queued building; only `name` is required. The values are checked here, so
/// a bad one is a usage error (exit 2) before the config or the database is touched.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The building's name (Device42 upserts by it).
    #[arg(long, value_parser = non_blank)]
    pub name: String,
    /// The building's street address.
    #[arg(long)]
    pub address: Option<String>,
    /// Who to contact about the building.
    #[arg(long)]
    pub contact_name: Option<String>,
    /// The contact's phone number.
    #[arg(long)]
    pub contact_phone: Option<String>,
    /// Free-text notes.
    #[arg(long)]
    pub notes: Option<String>,
    /// Latitude in decimal degrees, -90 to 90.
    #[arg(long, allow_hyphen_values = true, value_parser = latitude)]
    pub latitude: Option<String>,
    /// Longitude in decimal degrees, -180 to 180.
    #[arg(long, allow_hyphen_values = true, value_parser = longitude)]
    pub longitude: Option<String>,
    /// Multitenancy groups.
    #[arg(long)]
    pub groups: Option<String>,
}

/// Which dead rows to requeue.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RequeueArgs {
    /// One row by id.
    #[arg(long)]
    pub id: Option<i64>,
    /// Every dead row.
    #[arg(long)]
    pub all_dead: bool,
}

/// A value with something in it besides spaces, trimmed.
fn non_blank(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("must not be blank".into()),
        t => Ok(t.to_string()),
    }
}

fn latitude(s: &str) -> Result<String, String> {
    coordinate(s, 90.0)
}

fn longitude(s: &str) -> Result<String, String> {
    coordinate(s, 180.0)
}

/// A decimal number of degrees within `±range`, kept as the text given (trimmed): the queue
/// stores what Device42 is sent.
fn coordinate(s: &str, range: f64) -> Result<String, String> {
    let t = s.trim();
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() && x.abs() <= range => Ok(t.to_string()),
        _ => Err(format!("must be a number between -{range} and {range}")),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// The arguments and subcommands under `command` that have no help text, named by path.
    fn without_help(command: &clap::Command, path: &str) -> Vec<String> {
        let mut missing: Vec<String> = command
            .get_arguments()
            .filter(|a| a.get_help().is_none() && a.get_long_help().is_none())
            .map(|a| format!("{path} {}", a.get_id()))
            .collect();
        for sub in command.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                missing.push(sub_path.clone());
            }
            missing.extend(without_help(sub, &sub_path));
        }
        missing
    }

    #[test]
    fn every_subcommand_and_argument_has_help_text() {
        let mut command = Cli::command();
        command.build();

        let missing = without_help(&command, "d42sync");

        assert!(
            missing.is_empty(),
            "no help text (the man page shows none): {missing:?}"
        );
    }
}
