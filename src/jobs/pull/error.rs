//! Why a pull did not produce a snapshot to apply.

use crate::d42;

/// Why a pull did not produce a snapshot to apply; the text is the run's recorded error.
#[derive(Debug, thiserror::Error)]
pub(super) enum PullError {
    /// Device42 failed a call (after its retries).
    #[error(transparent)]
    Api(#[from] d42::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The inventory shifted under the pager, and no attempt got a consistent picture.
    #[error("inventory changed while paging: {0}")]
    Drift(String),
    /// The server's listing cannot be paged at all (it ignores `offset`, or does not list in
    /// ascending id order): starting over cannot help.
    #[error("the device list cannot be paged: {0}")]
    Unpageable(String),
    /// The service is stopping.
    #[error("stopped: the service is shutting down")]
    Cancelled,
    /// A page task ended without a page (it panicked).
    #[error("page task failed: {0}")]
    Task(String),
}
