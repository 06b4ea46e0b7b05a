//! The WAL checkpointer of a first pull's load: `PASSIVE` checkpoints beside the staging, and
//! pauses that let SQLite rewind the WAL.

use crate::store::StoreError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Runs `PASSIVE` checkpoints on a connection of its own while a load commits page after page.
///
/// A checkpoint after each commit on the staging connection (SQLite's automatic one) puts its
/// I/O and fsyncs in the way of the next page; one at the end copies the whole load at once. In a
/// task of its own it overlaps with the staging, and a `PASSIVE` checkpoint never blocks it. But
/// SQLite rewinds the WAL only when a write begins after a checkpoint has copied all of it, which
/// a writer that never pauses does not allow: the load pauses now and then
/// ([`Self::after_commit`]), so the WAL and the memory that indexes it stay small whatever the
/// inventory's size (without the pauses: 2.4 GB of WAL for 400 000 devices; with them, 47 MB).
/// A pause lasts one checkpoint: when a report's long read holds frames back, waiting longer
/// would not free them.
pub(super) struct Checkpointer {
    /// Pokes the task to run a checkpoint.
    wake: Arc<Notify>,
    /// Numbers the checkpoints as they start.
    started: Arc<AtomicU64>,
    /// The number of the latest checkpoint that finished.
    finished: watch::Receiver<u64>,
    /// Tells the task to close its connection and end.
    ended: CancellationToken,
    /// The task that runs them, on a connection of its own (aborted if dropped unstopped);
    /// `None` once stopped.
    task: Option<AbortOnDropHandle<()>>,
}

impl Checkpointer {
    /// Pages committed between two pauses: about 40 MB of WAL at 1 000 records a page, below
    /// the WAL size kept after a checkpoint (`JOURNAL_SIZE_LIMIT`). A multiple of
    /// [`Self::CHECKPOINT_EVERY`].
    const SETTLE_EVERY: u64 = 8;
    /// Commits between two checkpoints. Each commit rewrites the last, partly filled page of
    /// each table it writes; a checkpoint after every commit copies each such page back every
    /// time, one after every second commit half as often: 9 MiB less written by a first load of
    /// 100 000 devices (764 -> 755 MiB), wall time the same within the noise (every fourth:
    /// 749 MiB, but 0.1-0.15 s longer, as the pauses wait for larger checkpoints).
    const CHECKPOINT_EVERY: u64 = 2;
    /// The longest pause, should a checkpoint hang on the disk.
    const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

    /// Starts the task, idle until the first commit.
    pub(super) async fn start(pool: &sqlx::SqlitePool) -> Result<Self, StoreError> {
        let mut conn = pool.acquire().await?;
        // Aborted mid-checkpoint at the end of the load: closed rather than reused.
        conn.close_on_drop();
        let wake = Arc::new(Notify::new());
        let started = Arc::new(AtomicU64::new(0));
        let (done, finished) = watch::channel(0);
        let (woken, numbering) = (Arc::clone(&wake), Arc::clone(&started));
        let ended = CancellationToken::new();
        let ending = ended.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = woken.notified() => {}
                    () = ending.cancelled() => break,
                }
                let number = numbering.fetch_add(1, SeqCst) + 1;
                // (busy, frames in the WAL, frames copied)
                let result: Result<(i64, i64, i64), _> =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&mut *conn)
                        .await;
                tracing::trace!(?result, "checkpoint during the load");
                if let Err(e) = result {
                    tracing::debug!(error = %e, "checkpoint during the load failed");
                }
                done.send_replace(number);
            }
            // Closed here and now, not by a task spawned on drop: a close racing the pool's
            // last one can leave both thinking another connection is open, and the WAL behind.
            let _ = conn.close().await;
        });
        Ok(Self {
            wake,
            started,
            finished,
            ended,
            task: Some(AbortOnDropHandle::new(task)),
        })
    }

    /// After the load's commit number `commits`: every [`Self::CHECKPOINT_EVERY`] commits asks
    /// for a checkpoint (pokes while one runs make one more, not one each), and every
    /// [`Self::SETTLE_EVERY`] commits waits until one that started after this commit has
    /// finished: unless a reader holds frames back, it copied the whole WAL, and the next commit
    /// rewinds it. What the last commits leave is copied by the apply's own checkpoint.
    pub(super) async fn after_commit(&mut self, commits: u64) {
        if !commits.is_multiple_of(Self::CHECKPOINT_EVERY) {
            return;
        }
        // Any checkpoint numbered above `before` started after the commit.
        let before = self.started.load(SeqCst);
        self.wake.notify_one();
        if commits.is_multiple_of(Self::SETTLE_EVERY) {
            let finished = self.finished.wait_for(|number| *number > before);
            let _ = tokio::time::timeout(Self::SETTLE_LIMIT, finished).await;
        }
    }

    /// Ends the task once a checkpoint under way is done, and its connection closed.
    pub(super) async fn stop(&mut self) {
        self.ended.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
