//! SQLite: the pool and its pragmas, migrations, and a module per table or concern (`devices/` a
//! folder of rooms for the pull path). No HTTP.
//!
//! Every connection runs in WAL mode with `synchronous=NORMAL`, a busy timeout and foreign keys
//! on, so reporting tools can read (and insert into the queue) while the daemon writes. Every
//! write transaction starts with `BEGIN IMMEDIATE`: a deferred transaction that reads and then
//! writes can fail with "database is locked" under concurrency even with a busy timeout.
//!
//! A new database file is created group-writable ([`DATABASE_FILE_MODE`] before the umask), and
//! SQLite gives its `-wal` and `-shm` the database file's mode: report tools in the service's
//! group can then write the queue, which WAL mode requires even of readers.

pub mod devices;
pub mod direct;
pub mod pages;
pub mod queue;
pub mod runs;
pub mod watermarks;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Sqlite, SqlitePool, Transaction};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The mode a new database file is created with, before the umask: read and write for the
/// service and its group (0660 under the unit's `UMask=0007`), nothing for others. SQLite on its
/// own would create it 0644, and under that umask 0640, which leaves the group read-only.
pub const DATABASE_FILE_MODE: u32 = 0o660;

/// How long a connection waits for another writer before "database is locked": long enough for
/// the longest write transaction (the final swap of a large pull), short of a stall.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The WAL file is truncated back to this size after a checkpoint, so one big pull does not
/// leave a huge `-wal` file behind for good.
pub const JOURNAL_SIZE_LIMIT: u64 = 64 << 20;

/// SQLite's default: a checkpoint once the WAL holds this many pages.
pub const WAL_AUTOCHECKPOINT: u32 = 1000;

/// The database page size; see `open_unmigrated`.
pub const PAGE_SIZE: u32 = 32 * 1024;

/// Connections in the pool: one pull (which holds one for its staging table), push workers,
/// and status queries.
const MAX_CONNECTIONS: u32 = 8;

/// Errors of the store, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// A row written through SQLite's C API was refused.
    #[error("database error: {message} (SQLite code {code}) in {statement}")]
    Direct {
        /// The statement's start.
        statement: String,
        /// SQLite's result code.
        code: i32,
        /// SQLite's message.
        message: String,
    },
    /// The database was written by something else in a way that makes the operation unsafe.
    #[error("{0}")]
    Conflict(String),
}

/// The application's handle on its SQLite database.
#[derive(Clone, Debug)]
pub struct Db {
    /// The shared pool; every connection carries the pragmas above.
    pub pool: SqlitePool,
    /// The database file, for messages and the lock file next to it.
    pub path: PathBuf,
}

/// How every connection to the database at `path` is opened: the pragmas above, set on each.
fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string())
        // Device records are about 2.5 KB: 4 KiB pages hold one each and waste a third of
        // the file (and of every write); 32 KiB pages hold twelve, and a pull does a quarter
        // of the page work of 8 KiB ones (see `bench/findings.md`). Takes effect when the
        // file is created; an existing database keeps its page size.
        .page_size(PAGE_SIZE)
        // Large temp tables (a pull's staging) spill to disk rather than grow memory.
        .pragma("temp_store", "FILE")
        // A statement slower than a second (a migration, a first load's checkpoint on a busy
        // disk) is worth a DEBUG line, not sqlx's default WARN with the statement's whole text:
        // nothing there needs an operator.
        .log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT)
}

/// A statement that takes longer is logged at DEBUG.
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

impl Db {
    /// Opens (creating if missing) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Self::open_unmigrated(path).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Opens the database without migrating (for `migrate` itself and read-only commands).
    pub async fn open_unmigrated(path: &Path) -> Result<Self, StoreError> {
        create_if_missing(path).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: sqlx::Error::Io(e),
        })?;
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(BUSY_TIMEOUT + Duration::from_secs(5))
            .connect_with(connect_options(path))
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction that holds the write lock from its first statement.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Runs one statement in a write transaction of its own; the rows it changed.
    pub async fn execute_write<'q>(
        &self,
        statement: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = statement.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// `PRAGMA integrity_check`: `"ok"` for a healthy file.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let (result,): (String,) = sqlx::query_as("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await?;
        Ok(result)
    }

    /// Closes every connection (after which the WAL is checkpointed by SQLite).
    pub async fn close(&self) {
        self.pool.close().await;
        // The pool closes connections side by side (an idle one, and one handed back at that
        // moment), and SQLite checkpoints and removes the WAL only on the close of the last
        // connection: each of two closing at once can take the other for a reader and leave the
        // -wal behind. One more connection, opened and closed alone, is the last for certain.
        if let Ok(last) = connect_options(&self.path).connect().await {
            let _ = sqlx::Connection::close(last).await;
        }
    }
}

/// Starts a write transaction on a connection the caller holds (a pull's staging connection),
/// taking the write lock from its first statement as [`Db::begin_write`] does.
pub(crate) async fn begin_immediate(
    conn: &mut sqlx::SqliteConnection,
) -> Result<Transaction<'_, Sqlite>, StoreError> {
    use sqlx::Connection;
    Ok(conn.begin_with("BEGIN IMMEDIATE").await?)
}

/// Creates an empty database file with [`DATABASE_FILE_MODE`] when none exists (SQLite takes an
/// empty file for a new database). An existing file keeps its mode and is not opened for
/// writing here, so read-only users can still open it.
fn create_if_missing(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(DATABASE_FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Created by another process in the meantime.
        Err(_) if path.exists() => Ok(()),
        Err(e) => Err(e),
    }
}
