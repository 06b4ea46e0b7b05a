//! Many small rows into one table through SQLite's C API, within the caller's transaction.
//!
//! A first load of 100 000 real records writes about 2.9 million child rows (28 custom fields
//! each). Bound through sqlx, every value is copied into an argument list, made owned to cross
//! to the connection's worker thread and copied again by SQLite, and every statement's text is
//! built and looked up: several times SQLite's own work. Here one single-row INSERT is prepared
//! per call and each row is bound, stepped and reset on the caller's thread, with the
//! connection locked for it (`bench/findings.md` has the measurements).

use super::StoreError;
use libsqlite3_sys as ffi;
use sqlx::SqliteConnection;
use std::ffi::{CStr, CString, c_int};

/// The values of the row being bound, in the statement's parameter order.
pub struct Row {
    stmt: *mut ffi::sqlite3_stmt,
    /// The next parameter (SQLite counts from 1).
    next: c_int,
    /// The first bind that failed, if any.
    rc: c_int,
}

impl Row {
    /// Binds an integer, NULL for `None`.
    pub fn int(&mut self, v: Option<i64>) -> &mut Self {
        let i = self.advance();
        // SAFETY: `stmt` is a live prepared statement (see `insert`); an index beyond its
        // parameters makes SQLite return SQLITE_RANGE, which is reported.
        let rc = unsafe {
            match v {
                Some(v) => ffi::sqlite3_bind_int64(self.stmt, i, v),
                None => ffi::sqlite3_bind_null(self.stmt, i),
            }
        };
        self.keep(rc)
    }

    /// Binds a text, NULL for `None`.
    pub fn text(&mut self, v: Option<&str>) -> &mut Self {
        let i = self.advance();
        // SAFETY: as in `int`; SQLITE_TRANSIENT makes SQLite copy the text before returning,
        // so it need not outlive the call.
        let rc = unsafe {
            match v {
                Some(t) => ffi::sqlite3_bind_text64(
                    self.stmt,
                    i,
                    t.as_ptr().cast(),
                    t.len() as u64,
                    ffi::SQLITE_TRANSIENT(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                None => ffi::sqlite3_bind_null(self.stmt, i),
            }
        };
        self.keep(rc)
    }

    fn advance(&mut self) -> c_int {
        let i = self.next;
        self.next += 1;
        i
    }

    fn keep(&mut self, rc: c_int) -> &mut Self {
        if self.rc == ffi::SQLITE_OK {
            self.rc = rc;
        }
        self
    }
}

/// `INSERT INTO {table} ({columns}) VALUES (?, ..) {tail}`: one parameter for each of the
/// comma-separated `columns`, the statement [`insert`] runs for each row.
pub fn insert_sql(table: &str, columns: &str, tail: &str) -> String {
    let values = vec!["?"; columns.split(',').count()].join(", ");
    format!("INSERT INTO {table} ({columns}) VALUES ({values}) {tail}")
}

/// Runs `sql` (an INSERT of one row) once for each of `rows`, its values bound by `bind`, on
/// `conn` within the caller's transaction. Returns how many rows it inserted (fewer than
/// `rows` when the statement skips some, as `ON CONFLICT DO NOTHING` does).
pub async fn insert<R>(
    conn: &mut SqliteConnection,
    sql: &str,
    rows: &[R],
    bind: impl Fn(&R, &mut Row),
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let text = CString::new(sql).map_err(|_| failed(sql, ffi::SQLITE_MISUSE, "NUL in SQL"))?;
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let mut stmt = std::ptr::null_mut();
    // SAFETY: `db` is an open connection that `handle` keeps locked for this call; `text` is
    // NUL-terminated and outlives the call.
    let rc =
        unsafe { ffi::sqlite3_prepare_v2(db, text.as_ptr(), -1, &mut stmt, std::ptr::null_mut()) };
    if rc != ffi::SQLITE_OK {
        return Err(error(db, sql, rc));
    }
    let mut result = Ok(0);
    for r in rows {
        let mut row = Row {
            stmt,
            next: 1,
            rc: ffi::SQLITE_OK,
        };
        bind(r, &mut row);
        if row.rc != ffi::SQLITE_OK {
            result = Err(error(db, sql, row.rc));
            break;
        }
        // SAFETY: `stmt` is prepared on `db` and bound; a reset readies it for the next row,
        // whose binds replace every value.
        let rc = unsafe { ffi::sqlite3_step(stmt) };
        unsafe { ffi::sqlite3_reset(stmt) };
        if rc != ffi::SQLITE_DONE {
            result = Err(error(db, sql, rc));
            break;
        }
        if let Ok(inserted) = &mut result {
            // SAFETY: `db` is open; the count is that of the step just run.
            *inserted += unsafe { ffi::sqlite3_changes64(db) } as u64;
        }
    }
    // SAFETY: `stmt` was prepared above and is not used after this.
    unsafe { ffi::sqlite3_finalize(stmt) };
    result
}

/// The connection's error message for a failed call that returned `rc`.
fn error(db: *mut ffi::sqlite3, sql: &str, rc: c_int) -> StoreError {
    // SAFETY: `db` is the open connection the failed call was made on; SQLite returns a
    // NUL-terminated message it owns, copied here before any other call.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy();
    failed(sql, rc, &message)
}

fn failed(sql: &str, code: c_int, message: &str) -> StoreError {
    StoreError::Direct {
        statement: sql.chars().take(80).collect(),
        code,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Db, begin_immediate};

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_unmigrated(&dir.path().join("t.db")).await.unwrap();
        sqlx::query("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c INTEGER)")
            .execute(&db.pool)
            .await
            .unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn rows_are_inserted_with_their_texts_integers_and_nulls() {
        let (_dir, db) = db().await;
        let rows = [
            (1, Some("één"), Some(7)),
            (2, None, None),
            (3, Some(""), Some(-1)),
        ];
        let mut conn = db.pool.acquire().await.unwrap();
        let mut tx = begin_immediate(&mut conn).await.unwrap();
        insert(
            &mut tx,
            "INSERT INTO t VALUES (?, ?, ?)",
            &rows,
            |r, row| {
                row.int(Some(r.0)).text(r.1).int(r.2);
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let stored: Vec<(i64, Option<String>, Option<i64>)> =
            sqlx::query_as("SELECT a, b, c FROM t ORDER BY a")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        let want: Vec<_> = rows
            .iter()
            .map(|(a, b, c)| (*a, b.map(str::to_string), *c))
            .collect();
        assert_eq!(stored, want);
    }

    #[tokio::test]
    async fn a_failing_row_is_an_error_naming_the_statement_and_the_transaction_can_roll_back() {
        let (_dir, db) = db().await;
        let rows = [1, 1];
        let mut conn = db.pool.acquire().await.unwrap();
        let mut tx = begin_immediate(&mut conn).await.unwrap();
        let e = insert(&mut tx, "INSERT INTO t (a) VALUES (?)", &rows, |r, row| {
            row.int(Some(*r));
        })
        .await
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("INSERT INTO t (a)"), "{text}");
        assert!(text.contains("UNIQUE"), "{text}");
        tx.rollback().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_row_with_too_many_values_is_an_error() {
        let (_dir, db) = db().await;
        let mut conn = db.pool.acquire().await.unwrap();
        let mut tx = begin_immediate(&mut conn).await.unwrap();
        let e = insert(&mut tx, "INSERT INTO t (a) VALUES (?)", &[1], |r, row| {
            row.int(Some(*r)).text(Some("extra"));
        })
        .await
        .unwrap_err();
        assert!(e.to_string().contains("SQLite code 25"), "{e}");
    }
}
