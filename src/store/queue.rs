//! `building_queue`: the outbox other tools insert into, and the daemon's claims and outcomes.
//!
//! Each step is its own short `BEGIN IMMEDIATE` transaction: claiming due rows (marking them
//! `sending`), then, after the HTTP request and with no transaction open, recording its outcome.
//! `attempts` counts Device42's answers about a row (done, retry, dead), never claims: a row
//! claimed by a process that died, or one not answered about (the token request failed, the
//! connection was never made), goes back to `pending` as it was.

use super::{Db, StoreError};
use crate::time::now_iso;
use serde::Serialize;
use std::collections::BTreeMap;

/// The fields of a building that other tools set; only `name` is required.
#[derive(Debug, Clone, Default, sqlx::FromRow, Serialize)]
pub struct BuildingFields {
    pub name: String,
    pub address: Option<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub notes: Option<String>,
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    pub groups: Option<String>,
}

impl BuildingFields {
    /// The form fields to send: `name` and every optional field that is set and not blank.
    pub fn form_fields(&self) -> Vec<(&'static str, &str)> {
        let optional = [
            ("address", &self.address),
            ("contact_name", &self.contact_name),
            ("contact_phone", &self.contact_phone),
            ("notes", &self.notes),
            ("latitude", &self.latitude),
            ("longitude", &self.longitude),
            ("groups", &self.groups),
        ];
        let mut fields = vec![("name", self.name.as_str())];
        fields.extend(optional.into_iter().filter_map(|(k, v)| {
            v.as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (k, v))
        }));
        fields
    }
}

/// A claimed queue row as the daemon sends it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct QueuedBuilding {
    /// The row id.
    pub id: i64,
    /// What to send.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub fields: BuildingFields,
    /// Device42's answers about this row so far, not counting the send under way.
    pub attempts: i64,
}

/// Inserts a row; returns its id.
pub async fn enqueue(db: &Db, b: &BuildingFields) -> Result<i64, StoreError> {
    let mut tx = db.begin_write().await?;
    let id = sqlx::query_scalar(
        "INSERT INTO building_queue (name, address, contact_name, contact_phone, notes, latitude, longitude, groups) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&b.name)
    .bind(&b.address)
    .bind(&b.contact_name)
    .bind(&b.contact_phone)
    .bind(&b.notes)
    .bind(&b.latitude)
    .bind(&b.longitude)
    .bind(&b.groups)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Returns rows left `sending` by a process that died to `pending`, uncharged (the upsert makes a
/// resend safe). Only call it while holding the single-instance lock.
pub async fn recover_sending(db: &Db) -> Result<u64, StoreError> {
    db.execute_write(sqlx::query(
        "UPDATE building_queue SET status = 'pending', next_attempt_at = NULL, updated_at = ? WHERE status = 'sending'",
    )
    .bind(now_iso())).await
}

/// Marks pending rows that can never be sent (a blank name) as `dead` with the reason.
pub async fn bury_invalid(db: &Db) -> Result<u64, StoreError> {
    db.execute_write(sqlx::query(
        "UPDATE building_queue SET status = 'dead', last_error = 'name is empty: Device42 requires a building name', \
         updated_at = ? WHERE status = 'pending' AND trim(name) = ''",
    )
    .bind(now_iso())).await
}

/// Claims up to `limit` rows due before `due_before`: marks them `sending`, in one short
/// transaction (the attempt is counted when Device42 answers). Returned in id order. A push
/// passes the time it started, so a row it retried is not claimed again by the same push,
/// however short its jittered backoff.
pub async fn claim_due(
    db: &Db,
    due_before: &str,
    limit: u32,
) -> Result<Vec<QueuedBuilding>, StoreError> {
    let mut tx = db.begin_write().await?;
    let mut rows: Vec<QueuedBuilding> = sqlx::query_as(
        "UPDATE building_queue SET status = 'sending', updated_at = ?1 \
         WHERE id IN (SELECT id FROM building_queue WHERE status = 'pending' \
                      AND (next_attempt_at IS NULL OR next_attempt_at < ?2) ORDER BY id LIMIT ?3) \
         RETURNING id, name, address, contact_name, contact_phone, notes, latitude, longitude, groups, attempts",
    )
    .bind(now_iso())
    .bind(due_before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// Records a success, one more answer in `attempts`.
pub async fn mark_done(db: &Db, id: i64, building_id: Option<i64>) -> Result<(), StoreError> {
    let now = now_iso();
    db.execute_write(sqlx::query(
        "UPDATE building_queue SET status = 'done', attempts = attempts + 1, building_id = ?, sent_at = ?, \
         updated_at = ?, next_attempt_at = NULL, last_error = NULL WHERE id = ?",
    )
    .bind(building_id)
    .bind(&now)
    .bind(&now)
    .bind(id)).await?;
    Ok(())
}

/// Records a retryable failure answered by Device42 (or a POST sent and never answered): back to
/// `pending`, due at `next_attempt_at`, one more answer in `attempts`.
pub async fn mark_retry(
    db: &Db,
    id: i64,
    next_attempt_at: &str,
    error: &str,
) -> Result<(), StoreError> {
    db.execute_write(sqlx::query(
        "UPDATE building_queue SET status = 'pending', attempts = attempts + 1, next_attempt_at = ?, last_error = ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(next_attempt_at)
    .bind(error)
    .bind(now_iso())
    .bind(id)).await?;
    Ok(())
}

/// Returns claimed rows Device42 did not answer about (not sent, or their token request or
/// connection failed) to `pending`, their attempts and due times unchanged.
pub async fn release(db: &Db, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = format!(
        "[{}]",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    );
    db.execute_write(
        sqlx::query(
            "UPDATE building_queue SET status = 'pending', updated_at = ? \
             WHERE id IN (SELECT value FROM json_each(?)) AND status = 'sending'",
        )
        .bind(now_iso())
        .bind(ids),
    )
    .await?;
    Ok(())
}

/// Records a permanent failure (or exhausted attempts): `dead`, never retried automatically, one
/// more answer in `attempts`.
pub async fn mark_dead(db: &Db, id: i64, error: &str) -> Result<(), StoreError> {
    db.execute_write(sqlx::query(
        "UPDATE building_queue SET status = 'dead', attempts = attempts + 1, next_attempt_at = NULL, last_error = ?, \
         updated_at = ? WHERE id = ?",
    )
    .bind(error)
    .bind(now_iso())
    .bind(id)).await?;
    Ok(())
}

/// Puts dead rows back to `pending` with a fresh attempt budget: one row (`Some(id)`) or all.
/// Returns how many rows changed.
pub async fn requeue(db: &Db, id: Option<i64>) -> Result<u64, StoreError> {
    db.execute_write(sqlx::query(
        "UPDATE building_queue SET status = 'pending', attempts = 0, next_attempt_at = NULL, updated_at = ? \
         WHERE status = 'dead' AND (?2 IS NULL OR id = ?2)",
    )
    .bind(now_iso())
    .bind(id)).await
}

/// Row counts by status (every status present, zero when empty).
pub async fn counts(db: &Db) -> Result<BTreeMap<String, i64>, StoreError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM building_queue GROUP BY status")
            .fetch_all(&db.pool)
            .await?;
    let mut out: BTreeMap<String, i64> = ["pending", "sending", "done", "dead"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    out.extend(rows);
    Ok(out)
}

/// `created_at` of the oldest pending row.
pub async fn oldest_pending(db: &Db) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT min(created_at) FROM building_queue WHERE status = 'pending'")
            .fetch_one(&db.pool)
            .await?,
    )
}

/// Deletes `done` rows sent before `before`.
pub async fn prune_done(db: &Db, before: &str) -> Result<u64, StoreError> {
    db.execute_write(
        sqlx::query("DELETE FROM building_queue WHERE status = 'done' AND sent_at < ?")
            .bind(before),
    )
    .await
}
