//! The table swap of a first pull: load tables defined after the tables they stand for, indexes
//! moved between them, and the renames that put a load in place in the apply transaction.
//!
//! The indexes a load fills in key order move from the empty tables to the load tables when
//! these are created, names and definitions unchanged, so they grow by appending instead of
//! costing a scan of the whole inventory each in the apply; the others (`name`, a report's own)
//! are built in the apply, where a sort beats random inserts. The table's triggers go with the
//! dropped table and are created again on the one swapped in.
//!
//! Everything here is DDL on table pairs `(table, load)` named by the caller; what the tables
//! hold is the load's business ([`super::load`]).

use crate::store::StoreError;
use sqlx::SqliteConnection;

/// A load table's `CREATE TABLE` and what becomes of the indexes and triggers of the table it
/// replaces.
pub(super) struct Definition {
    /// `table`'s own definition under the load table's name.
    create: String,
    /// The indexes the load fills in key order, moved to the load table: (name, `CREATE INDEX`).
    moved: Vec<(String, String)>,
    /// The other indexes' `CREATE INDEX`, then the triggers' `CREATE TRIGGER`, run after the swap.
    pub(super) rebuilt: Vec<String>,
}

/// How `table` is redefined as `load`; `None` if its definition does not start as expected.
/// The indexes that start with a column of `in_order` (which the load writes in key order) move
/// to the load table; the others, and the triggers, are created again after the swap.
pub(super) async fn definition(
    conn: &mut SqliteConnection,
    (table, load): (&str, &str),
    in_order: &[&str],
) -> Result<Option<Definition>, StoreError> {
    let sql: Option<(String,)> =
        sqlx::query_as("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?")
            .bind(table)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(create) = sql.and_then(|(sql,)| renamed(&sql, table, load)) else {
        return Ok(None);
    };
    let (mut moved, mut rebuilt) = (Vec::new(), Vec::new());
    for (name, sql, first) in indexes_of(conn, table).await? {
        match first {
            Some(column) if in_order.contains(&column.as_str()) => moved.push((name, sql)),
            _ => rebuilt.push(sql),
        }
    }
    let triggers: Vec<(String,)> = sqlx::query_as(
        "SELECT sql FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name = ? ORDER BY name",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    rebuilt.extend(triggers.into_iter().map(|(sql,)| sql));
    Ok(Some(Definition {
        create,
        moved,
        rebuilt,
    }))
}

/// The explicit indexes of `table`: (name, `CREATE INDEX`, first column if it is a column).
pub(super) async fn indexes_of(
    conn: &mut SqliteConnection,
    table: &str,
) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT m.name, m.sql, \
         (SELECT i.name FROM pragma_index_info(m.name) i WHERE i.seqno = 0) \
         FROM main.sqlite_schema m \
         WHERE m.type = 'index' AND m.tbl_name = ? AND m.sql IS NOT NULL ORDER BY m.name",
    )
    .bind(table)
    .fetch_all(conn)
    .await?)
}

/// `PRAGMA legacy_alter_table`. On, a rename leaves views as written (they find the new table
/// by its name) instead of rewriting them to follow the renamed one or failing while a view
/// names a dropped table; indexes still follow their table.
pub(super) async fn legacy_renames(
    conn: &mut SqliteConnection,
    on: bool,
) -> Result<(), StoreError> {
    sqlx::query(&format!("PRAGMA legacy_alter_table = {}", u8::from(on)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Where a table waits while a load table briefly bears its name.
const ASIDE: &str = "pull_swap";

/// `ALTER TABLE from RENAME TO to`.
async fn rename(tx: &mut SqliteConnection, from: &str, to: &str) -> Result<(), StoreError> {
    sqlx::query(&format!("ALTER TABLE main.{from} RENAME TO {to}"))
        .execute(tx)
        .await?;
    Ok(())
}

/// Runs `statements` (`CREATE INDEX` of another table's) while table `actual` bears `name`, a
/// free name, within the caller's transaction: the indexes are built on `actual`, and SQLite
/// rewrites their definitions when the name goes back.
pub(super) async fn under_name(
    tx: &mut SqliteConnection,
    actual: &str,
    name: &str,
    statements: &[(String, String)],
) -> Result<(), StoreError> {
    if statements.is_empty() {
        return Ok(());
    }
    rename(tx, actual, name).await?;
    for (_, sql) in statements {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    rename(tx, name, actual).await
}

/// Creates `load` and moves the (empty) indexes it is to fill in key order from `table` to it,
/// names and all.
pub(super) async fn create_load_table(
    tx: &mut SqliteConnection,
    pair: (&str, &str),
    definition: &Definition,
) -> Result<(), StoreError> {
    let (table, load) = pair;
    sqlx::query(&definition.create).execute(&mut *tx).await?;
    if definition.moved.is_empty() {
        return Ok(());
    }
    for (name, _) in &definition.moved {
        sqlx::query(&format!(
            "DROP INDEX main.\"{}\"",
            name.replace('"', "\"\"")
        ))
        .execute(&mut *tx)
        .await?;
    }
    rename(tx, table, ASIDE).await?;
    under_name(tx, load, table, &definition.moved).await?;
    rename(tx, ASIDE, table).await
}

/// `CREATE TABLE <table> ...` rewritten as `CREATE TABLE <to> ...`. SQLite keeps a table's
/// definition as written, except that a rename quotes the new name.
fn renamed(sql: &str, table: &str, to: &str) -> Option<String> {
    const CREATE: &str = "CREATE TABLE ";
    let head = sql.get(..CREATE.len())?;
    if !head.eq_ignore_ascii_case(CREATE) {
        return None;
    }
    let rest = &sql[CREATE.len()..];
    let quoted = format!("\"{table}\"");
    let rest = rest
        .strip_prefix(&quoted)
        .or_else(|| rest.strip_prefix(table))?;
    rest.starts_with([' ', '(', '\n', '\t'])
        .then(|| format!("{CREATE}{to}{rest}"))
}

/// Replaces `table` by `load`, which carries the moved indexes, and builds the `rebuilt` indexes
/// and triggers.
pub(super) async fn swap_in(
    tx: &mut SqliteConnection,
    (table, load): (&str, &str),
    rebuilt: &[String],
) -> Result<(), StoreError> {
    sqlx::query(&format!("DROP TABLE main.{table}"))
        .execute(&mut *tx)
        .await?;
    rename(tx, load, table).await?;
    for index in rebuilt {
        sqlx::query(index).execute(&mut *tx).await?;
    }
    Ok(())
}
