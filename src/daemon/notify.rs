//! systemd notifications (`sd_notify`): READY=1, WATCHDOG=1, STATUS=..., STOPPING=1 sent as
//! datagrams to `$NOTIFY_SOCKET`. Outside systemd there is no socket and every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The notification socket, when running under systemd with `Type=notify`.
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    /// Half of `$WATCHDOG_USEC` (and at most a quarter, for margin), when the watchdog is on.
    pub watchdog_interval: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (ignoring a watchdog meant for another pid).
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let addr = socket_addr(path.to_str()?)?;
            let socket = UnixDatagram::unbound().ok()?;
            // A receiver that stops reading must not block the main loop (nor a stop).
            socket.set_nonblocking(true).ok()?;
            Some((socket, addr))
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .map(|p| p.trim() == std::process::id().to_string())
            .unwrap_or(true);
        let watchdog_interval = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|us| *us > 0 && for_us)
            .map(|us| Duration::from_micros(us) / 4);
        Self {
            socket,
            watchdog_interval,
        }
    }

    /// Sends one notification without waiting; failures (systemd restarting, a full queue) are
    /// logged at debug.
    pub fn notify(&self, state: &str) {
        if let Some((socket, addr)) = &self.socket
            && let Err(e) = socket.send_to_addr(state.as_bytes(), addr)
        {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }
}

fn socket_addr(path: &str) -> Option<std::os::unix::net::SocketAddr> {
    if let Some(abstract_name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).ok()
    } else {
        std::os::unix::net::SocketAddr::from_pathname(path).ok()
    }
}
