//! `pull_watermarks`: per endpoint, when the last applied pull and the last applied full pull
//! started, and what their records were asked with.
//!
//! An incremental pull fetches only the records edited since its endpoint's watermark (less a
//! day: Device42's edit filter is day-granular). The row is written by the apply transaction of
//! the pull it describes (`write_in`, called from [`super::devices::PullStage::apply`]), so a
//! pull that fails, is held or is killed leaves the watermark of the last applied one. Only the
//! endpoint last applied keeps a row: the records of another endpoint are not in `devices`.

use super::{Db, StoreError};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

/// What an applied pull records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// `devices.endpoint` as configured: the key.
    pub endpoint: String,
    /// What the records were asked with; another value means the stored records differ from
    /// what the endpoint sends now, so the next pull must be full.
    pub view: String,
    /// A full pull (it also moves `full_from`).
    pub full: bool,
}

/// An endpoint's watermark as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWatermark {
    /// See [`Watermark::view`].
    pub view: String,
    /// When the last applied pull started.
    pub pulled_from: DateTime<Utc>,
    /// When the last applied full pull started.
    pub full_from: DateTime<Utc>,
}

/// The watermark of `endpoint`, if a pull of it was applied last (an unreadable time reads as
/// none: the next pull is full).
pub async fn get(db: &Db, endpoint: &str) -> Result<Option<StoredWatermark>, StoreError> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT view, pulled_from, full_from FROM pull_watermarks WHERE endpoint = ?",
    )
    .bind(endpoint)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.and_then(|(view, pulled_from, full_from)| {
        Some(StoredWatermark {
            view,
            pulled_from: crate::time::parse_iso(&pulled_from)?,
            full_from: crate::time::parse_iso(&full_from)?,
        })
    }))
}

/// Records `mark` for a pull started `at`, within the apply transaction `tx`, and forgets the
/// other endpoints.
pub(super) async fn write_in(
    tx: &mut SqliteConnection,
    mark: &Watermark,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM pull_watermarks WHERE endpoint <> ?")
        .bind(&mark.endpoint)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO pull_watermarks (endpoint, view, pulled_from, full_from) VALUES (?1, ?2, ?3, ?3) \
         ON CONFLICT (endpoint) DO UPDATE SET view = excluded.view, pulled_from = excluded.pulled_from, \
         full_from = CASE WHEN ?4 THEN excluded.full_from ELSE pull_watermarks.full_from END",
    )
    .bind(&mark.endpoint)
    .bind(&mark.view)
    .bind(at)
    .bind(mark.full)
    .execute(tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
