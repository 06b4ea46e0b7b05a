//! `d42sim simulate`: serves the Device42 stand-in until SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context;
use d42sim::{ListKey, SimConfig, Simulator};
use tokio_util::sync::CancellationToken;

use crate::cli::SimulateArgs;

/// Starts a simulator (HTTPS when a certificate and key are given), prints `listening on
/// <base_url>` as the only line on stdout, and serves until SIGINT or SIGTERM.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let cfg = SimConfig {
        devices: args.devices,
        seed: args.seed,
        client_key: args.client_key,
        secret_key: args.secret_key,
        token_ttl: args.token_ttl,
        list_key: if args.lowercase_list_key {
            ListKey::LowerDevices
        } else {
            ListKey::Devices
        },
        page_delay: args.page_delay,
        post_delay: args.post_delay,
        fail_rate: args.fail_rate,
        ..SimConfig::default()
    };
    let stop = CancellationToken::new();
    let _reloads = d42sync::daemon::signals::install(stop.clone())?;
    let listen = args.listen;
    let sim = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => {
            let cert = std::fs::read_to_string(cert).context("cannot read the tls certificate")?;
            let key = std::fs::read_to_string(key).context("cannot read the tls key")?;
            Simulator::start_tls(cfg, listen, &cert, &key).await
        }
        _ => Simulator::start(cfg, listen).await,
    }
    .with_context(|| format!("cannot start the simulator on {listen}"))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", sim.base_url()).context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    drop(stdout);
    stop.cancelled().await;
    sim.shutdown().await;
    Ok(())
}
