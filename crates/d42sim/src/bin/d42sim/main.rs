//! The `d42sim` binary: `simulate` serves the Device42 stand-in, `demo` runs the whole d42sync
//! job once against one in-process. Neither is part of the `d42sync` binary operators install.

/// Prints a line on stdout, like `println!`, except that a reader that went away (`| head -1`)
/// ends the output quietly instead of the process with a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        d42sync::commands::print_out(&format!("{}\n", format_args!($($arg)*)))
    };
}

mod cli;
mod demo;
mod simulate;

use clap::Parser;
use d42sync::commands::EXIT_CONFIG;
use d42sync::config::{ConfigError, LogFormat};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("d42sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            cli::Command::Simulate(args) => {
                d42sync::telemetry::init(LogFormat::Text, "info");
                simulate::run(args).await
            }
            cli::Command::Demo(args) => {
                d42sync::telemetry::init(LogFormat::Text, "warn");
                demo::run(args).await
            }
        }
    });
    // The demo's jobs winding down (a POST past the stop grace) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("d42sim: {e:#}");
            match e.downcast_ref::<ConfigError>() {
                Some(_) => ExitCode::from(EXIT_CONFIG),
                None => ExitCode::FAILURE,
            }
        }
    }
}
