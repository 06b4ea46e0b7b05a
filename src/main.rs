//! The `d42sync` binary: parse arguments and hand over to [`d42sync::commands`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = d42sync::cli::Cli::parse();
    d42sync::commands::main(cli)
}
