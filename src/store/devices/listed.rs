//! The id listing of an incremental pull, in compare mode: the ids of every device are staged
//! first (as unchanged), then set aside in the TEMP table `pull_listed` while the records edited
//! since the watermark are staged as usual; [`merge`] then makes the stage what a full pull
//! would have staged: every listed id, with the edited records that differ from the stored ones.

use super::compare;
use crate::store::{StoreError, pages};
use sqlx::{Connection, SqliteConnection};

/// Moves the staged ids to `temp.pull_listed` and empties the stage for the edited records.
/// The listing's pages are not the full listing's: they are forgotten, so the apply keeps the
/// stored pages ([`pages::save`]).
pub(super) async fn set_aside(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    drop_listed(conn).await?;
    sqlx::query("ALTER TABLE temp.pull_stage RENAME TO pull_listed")
        .execute(&mut *conn)
        .await?;
    compare::clear(conn).await?;
    pages::clear_seen(conn).await
}

/// Joins the listed ids to the staged edited records: a record whose id was not listed (the
/// device was deleted in between) is dropped, a listed id gets its place. Returns how many
/// listed ids are neither stored nor among the edited records: a pull cannot tell what they
/// hold, so it must fetch every record instead.
pub(super) async fn merge(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    // A plain BEGIN: only the temp schema is written (see `compare::stage`).
    let mut tx = conn.begin().await?;
    sqlx::query(
        "DELETE FROM temp.pull_stage \
         WHERE device_id NOT IN (SELECT device_id FROM temp.pull_listed)",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO temp.pull_stage (device_id) SELECT device_id FROM temp.pull_listed \
         WHERE true ON CONFLICT (device_id) DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    // Counted from the stored side: a scan of `devices`' narrowest index costs a few ms, while a
    // lookup of each listed id in `devices` itself reads every record's page (about a second for
    // 100 000 devices). Listed ids = stored and listed + edited and new + unknown.
    let (listed, stored, new): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM temp.pull_stage), \
         (SELECT count(*) FROM main.devices d \
          WHERE EXISTS (SELECT 1 FROM temp.pull_stage s WHERE s.device_id = d.device_id)), \
         (SELECT count(*) FROM temp.pull_stage s WHERE s.raw IS NOT NULL \
          AND NOT EXISTS (SELECT 1 FROM main.devices d WHERE d.device_id = s.device_id))",
    )
    .fetch_one(&mut *tx)
    .await?;
    let unknown = listed - stored - new;
    drop_listed(&mut tx).await?;
    pages::clear_seen(&mut tx).await?;
    tx.commit().await?;
    Ok(unknown)
}

/// Drops the set-aside ids.
pub(super) async fn drop_listed(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query("DROP TABLE IF EXISTS temp.pull_listed")
        .execute(conn)
        .await?;
    Ok(())
}
