//! Signals: SIGTERM and SIGINT ask for a graceful stop, SIGHUP for a config reload.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Installs the handlers: `stop` is cancelled on SIGTERM/SIGINT; each SIGHUP sends on the
/// returned channel.
pub fn install(stop: CancellationToken) -> std::io::Result<mpsc::Receiver<()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (reload_tx, reload_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!(signal = "SIGTERM", "stopping"); stop.cancel(); }
                _ = int.recv() => { tracing::info!(signal = "SIGINT", "stopping"); stop.cancel(); }
                _ = hup.recv() => { let _ = reload_tx.try_send(()); }
            }
        }
    });
    Ok(reload_rx)
}
