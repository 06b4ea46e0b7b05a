//! The `d42sim` command line: clap definitions only.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A Device42 stand-in for trials, tests and benchmarks, and a demo of d42sync against it.
#[derive(Debug, Parser)]
#[command(name = "d42sim", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The simulator's commands; neither reads a d42sync config.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a local Device42 stand-in for trials, tests and benchmarks.
    Simulate(SimulateArgs),
    /// The whole d42sync job once against an in-process simulator, into a local database.
    Demo(DemoArgs),
}

/// Options of the simulator.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8042")]
    pub listen: SocketAddr,
    /// Devices in the initial inventory.
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Seed for the generated records.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The API client key the simulator accepts.
    #[arg(long, default_value = "sim-client-key")]
    pub client_key: String,
    /// The secret key the simulator accepts.
    #[arg(long, default_value = "sim-secret-key")]
    pub secret_key: String,
    /// Lifetime of issued tokens.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub token_ttl: std::time::Duration,
    /// Delay before each devices page.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub page_delay: std::time::Duration,
    /// Delay before each building POST.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub post_delay: std::time::Duration,
    /// Probability that an API request meets a random retryable fault.
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Spell the devices list key in lower case ("devices").
    #[arg(long)]
    pub lowercase_list_key: bool,
    /// PEM certificate to serve TLS with (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Options of the demo.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the demo's database and config.
    #[arg(long, default_value = "d42sync-demo")]
    pub dir: PathBuf,
    /// Devices in the simulated inventory.
    #[arg(long, default_value_t = 5000)]
    pub devices: usize,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    d42sync::time::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every argument of `command` and its subcommands, named by path.
    fn arguments(command: &clap::Command, path: &str) -> Vec<(String, bool)> {
        let mut found: Vec<(String, bool)> = command
            .get_arguments()
            .map(|a| {
                let has_help = a.get_help().is_some() || a.get_long_help().is_some();
                (format!("{path} {}", a.get_id()), has_help)
            })
            .collect();
        for sub in command.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            found.push((sub_path.clone(), sub.get_about().is_some()));
            found.extend(arguments(sub, &sub_path));
        }
        found
    }

    #[test]
    fn every_subcommand_and_argument_has_help_text() {
        let mut command = Cli::command();
        command.build();

        let missing: Vec<String> = arguments(&command, "d42sim")
            .into_iter()
            .filter(|(_, has_help)| !has_help)
            .map(|(name, _)| name)
            .collect();

        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn no_command_offers_a_config_file() {
        let mut command = Cli::command();
        command.build();

        let config: Vec<String> = arguments(&command, "d42sim")
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.ends_with(" config"))
            .collect();

        assert!(
            config.is_empty(),
            "the simulator reads no config: {config:?}"
        );
    }
}
