//! Named crash points for the crash tests, and a few named delays.
//!
//! With the `failpoints` feature (turned on for the tests only, through the crate's
//! dev-dependency on itself), when `D42SYNC_FAILPOINT` names a point, the process aborts there,
//! as a power cut or SIGKILL would stop it at the worst moment (or, at a delay point, waits
//! there). Without the feature, as in every build that ships, the points compile to nothing.

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::LazyLock;

    /// The point named by `D42SYNC_FAILPOINT`, read once.
    static ARMED: LazyLock<Option<String>> =
        LazyLock::new(|| std::env::var("D42SYNC_FAILPOINT").ok());

    /// Aborts the process if `name` is the armed failpoint.
    pub fn hit(name: &str) {
        if ARMED.as_deref() == Some(name) {
            eprintln!("failpoint {name}: aborting");
            std::process::abort();
        }
    }

    /// Blocks the calling thread for good if `name` is armed and the process started more than
    /// three seconds ago: the watchdog test's stand-in for a hung main loop.
    pub fn stall(name: &str, started_at_unix: i64) {
        if ARMED.as_deref() == Some(name) && chrono::Utc::now().timestamp() - started_at_unix >= 3 {
            eprintln!("failpoint {name}: stalling");
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }

    /// Holds the calling thread for [`super::BLOCK`] if `name` is the armed failpoint: a slow
    /// step that keeps its thread busy, as CPU work does.
    pub fn block(name: &str) {
        if ARMED.as_deref() == Some(name) {
            std::thread::sleep(super::BLOCK);
        }
    }

    /// Waits [`super::DELAY`] if `name` is the armed failpoint: a slow step, not a crash.
    pub fn delay(name: &str) -> impl Future<Output = ()> + use<> {
        let armed = ARMED.as_deref() == Some(name);
        async move {
            if armed {
                tokio::time::sleep(super::DELAY).await;
            }
        }
    }
}

/// How long a delay point waits when armed.
#[cfg(feature = "failpoints")]
const DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a blocking point holds its thread when armed.
#[cfg(feature = "failpoints")]
const BLOCK: std::time::Duration = std::time::Duration::from_millis(500);

#[cfg(feature = "failpoints")]
pub use armed::{block, delay, hit, stall};

/// Nothing: crash points exist only in test builds.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Nothing: crash points exist only in test builds.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn stall(_name: &str, _started_at_unix: i64) {}

/// Nothing: blocking points exist only in test builds.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn block(_name: &str) {}

/// Nothing: delay points exist only in test builds. Not an `async fn`, whose future would
/// leave a symbol of this module in the shipped binary.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn delay(_name: &str) -> std::future::Ready<()> {
    std::future::ready(())
}
