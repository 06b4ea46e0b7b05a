//! What the code under a unit test logs, captured as text.
//!
//! tracing caches each callsite's interest for the whole process, computed on the thread that
//! reaches it first, and while one dispatcher is registered it asks only that thread's own: a
//! sibling test's thread without a subscriber caches `never` for a callsite, and a test that
//! captures it then sees nothing (the retry WARN test: 1 full run of the unit tests in 30). With
//! a second dispatcher registered for as long as the capture lives, interested in the same
//! levels, the interest is asked of every registered one and cached as it should be.

use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing::Level;
use tracing::subscriber::DefaultGuard;

/// The text logged on this thread while the [`Capture`] lives.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Keeps the capture's subscriber this thread's default, and the second dispatcher registered.
pub(crate) struct Capture {
    _default: DefaultGuard,
    _anchor: tracing::Dispatch,
}

/// Captures what this thread logs at `level` and above (plain text, no colours) until the
/// returned guard is dropped.
pub(crate) fn capture(level: Level) -> (Captured, Capture) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let anchor = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::sink)
            .finish(),
    );
    let default = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let guard = Capture {
        _default: default,
        _anchor: anchor,
    };
    (captured, guard)
}
