//! `pull_pages`: how each page of the last applied pull looked.
//!
//! A page is kept by (offset, limit asked) with an xxh3-128 hash of its body and the device ids it
//! carried. When a pull gets a body with the same hash at the same place, the page holds the same
//! records as then, and `devices` still holds them: the pull takes the page's ids from here
//! instead of parsing and comparing its records. The pages are trusted only while `devices`
//! matches the count and hash sum recorded with them (`pull_pages_basis`), so a row edited or
//! deleted by hand is not hidden behind them.
//!
//! A pull notes each page it sees in the TEMP table `pull_pages_seen` on its staging connection;
//! the apply transaction writes them back, so the pages always describe the applied snapshot.

use super::StoreError;
use sqlx::SqliteConnection;
use std::collections::HashMap;

/// A page as the last applied pull saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPage {
    /// xxh3-128 of the body.
    pub hash: u128,
    /// `total_count` and `limit` as the body gave them.
    pub total_count: Option<u64>,
    /// See `total_count`.
    pub limit: Option<u64>,
    /// First and last device id on the page (`None` when it was empty).
    pub first_id: Option<i64>,
    /// See `first_id`.
    pub last_id: Option<i64>,
    /// Devices on the page.
    pub count: u64,
}

/// The last applied pull's pages by (offset, limit asked).
pub type KnownPages = HashMap<(u64, u64), KnownPage>;

/// What `devices` held: a row count and a sum of the record hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Basis {
    devices: i64,
    checksum: i64,
}

/// The notes of the pages a pull has seen; `ids` is NULL for a page reused as known.
const CREATE_SEEN: &str = "CREATE TEMP TABLE IF NOT EXISTS pull_pages_seen (\
     page_offset INTEGER NOT NULL, page_limit INTEGER NOT NULL, body_hash BLOB NOT NULL, \
     total_count INTEGER, limit_echo INTEGER, ids TEXT, PRIMARY KEY (page_offset, page_limit))";

/// The basis of `devices` as it is now; one scan of the `(device_id, raw_hash)` index.
pub async fn basis(conn: &mut SqliteConnection) -> Result<Basis, StoreError> {
    // Two sums of 32-bit halves cannot overflow SQLite's 64-bit integers below 2^31 rows.
    let (devices, low, high): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(raw_hash & 4294967295), 0), \
         coalesce(sum((raw_hash >> 32) & 4294967295), 0) FROM devices",
    )
    .fetch_one(conn)
    .await?;
    let checksum = low.wrapping_add(high.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as i64));
    Ok(Basis { devices, checksum })
}

/// The pages of the last applied pull and the basis they were recorded on, or `None` when there
/// are none or `devices` no longer matches them.
pub async fn load(conn: &mut SqliteConnection) -> Result<Option<(Basis, KnownPages)>, StoreError> {
    let stored: Option<(i64, i64)> =
        sqlx::query_as("SELECT devices, checksum FROM pull_pages_basis WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    let now = basis(conn).await?;
    if stored != Some((now.devices, now.checksum)) {
        return Ok(None);
    }
    type Row = (
        i64,
        i64,
        Vec<u8>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT page_offset, page_limit, body_hash, total_count, limit_echo, \
         json_extract(ids, '$[0]'), json_extract(ids, '$[#-1]'), json_array_length(ids) \
         FROM pull_pages",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut pages = KnownPages::with_capacity(rows.len());
    for (offset, limit, hash, total_count, limit_echo, first_id, last_id, count) in rows {
        let Ok(hash) = <[u8; 16]>::try_from(hash.as_slice()) else {
            return Ok(None);
        };
        let page = KnownPage {
            hash: u128::from_le_bytes(hash),
            total_count: total_count.map(|n| n as u64),
            limit: limit_echo.map(|n| n as u64),
            first_id,
            last_id,
            count: count as u64,
        };
        pages.insert((offset as u64, limit as u64), page);
    }
    Ok(Some((now, pages)))
}

/// Creates (or empties) the notes of seen pages.
pub async fn clear_seen(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query(CREATE_SEEN).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM temp.pull_pages_seen")
        .execute(conn)
        .await?;
    Ok(())
}

/// Drops the notes of seen pages.
pub async fn drop_seen(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query("DROP TABLE IF EXISTS temp.pull_pages_seen")
        .execute(conn)
        .await?;
    Ok(())
}

/// A page seen by this pull.
#[derive(Debug, Clone, Copy)]
pub struct SeenPage<'a> {
    /// Where it was asked for: offset and limit.
    pub key: (u64, u64),
    /// xxh3-128 of the body.
    pub hash: u128,
    /// `total_count` and `limit` as the body gave them.
    pub total_count: Option<u64>,
    /// See `total_count`.
    pub limit: Option<u64>,
    /// The device ids in page order; `None` for a page reused as known (its stored row stays).
    pub ids: Option<&'a [i64]>,
}

/// Notes a page this pull saw.
pub async fn note_seen(conn: &mut SqliteConnection, page: SeenPage<'_>) -> Result<(), StoreError> {
    let ids = page.ids.map(|ids| {
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!("[{}]", list.join(","))
    });
    sqlx::query(
        "INSERT OR REPLACE INTO temp.pull_pages_seen \
         (page_offset, page_limit, body_hash, total_count, limit_echo, ids) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(page.key.0 as i64)
    .bind(page.key.1 as i64)
    .bind(page.hash.to_le_bytes().to_vec())
    .bind(page.total_count.map(|n| n as i64))
    .bind(page.limit.map(|n| n as i64))
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stages the ids of the pages reused as known into `temp.pull_stage`, without each page's
/// first id when it is the overlap with the page before (every page but the one at offset 0).
/// Returns how many ids were new to the stage.
pub async fn stage_reused_ids(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "INSERT INTO temp.pull_stage (device_id) \
         SELECT j.value FROM temp.pull_pages_seen s \
         JOIN pull_pages p ON p.page_offset = s.page_offset AND p.page_limit = s.page_limit, \
         json_each(p.ids) j \
         WHERE s.ids IS NULL AND (j.key > 0 OR s.page_offset = 0) \
         ON CONFLICT (device_id) DO NOTHING",
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Replaces the stored pages with the ones this pull saw, on the basis `devices` now has. Runs in
/// the apply transaction, after `devices` got its new snapshot. A pull that saw no page of the
/// full listing (an incremental one) leaves them as they are: they stay trusted only while
/// `devices` still matches the basis they were recorded on.
pub async fn save(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let (seen,): (i64,) = sqlx::query_as("SELECT count(*) FROM temp.pull_pages_seen")
        .fetch_one(&mut *conn)
        .await?;
    if seen == 0 {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM pull_pages WHERE NOT EXISTS (SELECT 1 FROM temp.pull_pages_seen s \
         WHERE s.page_offset = pull_pages.page_offset AND s.page_limit = pull_pages.page_limit)",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO pull_pages \
         (page_offset, page_limit, body_hash, total_count, limit_echo, ids) \
         SELECT page_offset, page_limit, body_hash, total_count, limit_echo, ids \
         FROM temp.pull_pages_seen WHERE ids IS NOT NULL",
    )
    .execute(&mut *conn)
    .await?;
    let now = basis(conn).await?;
    sqlx::query("INSERT OR REPLACE INTO pull_pages_basis (id, devices, checksum) VALUES (1, ?, ?)")
        .bind(now.devices)
        .bind(now.checksum)
        .execute(conn)
        .await?;
    Ok(())
}
