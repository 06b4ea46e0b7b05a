//! Child rows waiting for their table: their values back to back, texts in one buffer.
//!
//! A first load commits page by page, and each commit rewrites the last, partly filled page of
//! every table it adds rows to (and the pages above it), in the WAL and again when the WAL is
//! copied back. A page of 1 000 records brings each child table only a few KiB, so written page
//! by page they cost more in those rewrites than in rows. Held here until a table has about
//! [`Pending::FULL`] to write, they are written a few times per load instead (a first load of
//! 100 000 devices: 835 -> 764 MiB written, and 0.1 s less, `bench/findings.md`).

use crate::store::StoreError;
use crate::store::direct::{self, Row};
use sqlx::SqliteConnection;
use std::ops::Range;

/// One value of a row.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Int(i64),
    /// A range of [`Pending::text`].
    Text(Range<usize>),
}

/// The rows waiting for one table, each `width` values.
#[derive(Debug, Default)]
pub(in crate::store::devices) struct Pending {
    cells: Vec<Cell>,
    text: String,
}

impl Pending {
    /// What a table holds before a first load writes it: 16 database pages of values.
    pub(super) const FULL: usize = 16 * crate::store::PAGE_SIZE as usize;

    /// Adds an integer to the row being built, NULL for `None`.
    pub(super) fn int(&mut self, v: Option<i64>) -> &mut Self {
        self.cells.push(v.map_or(Cell::Null, Cell::Int));
        self
    }

    /// Adds a text to the row being built, NULL for `None`.
    pub(super) fn text(&mut self, v: Option<&str>) -> &mut Self {
        let cell = match v {
            Some(t) => {
                let start = self.text.len();
                self.text.push_str(t);
                Cell::Text(start..self.text.len())
            }
            None => Cell::Null,
        };
        self.cells.push(cell);
        self
    }

    /// About how much memory the rows hold.
    pub(super) fn size(&self) -> usize {
        self.cells.len() * size_of::<Cell>() + self.text.len()
    }

    /// Runs `sql` (a single-row INSERT of `width` values) for each row, within the caller's
    /// transaction, and forgets them.
    pub(super) async fn write(
        &mut self,
        tx: &mut SqliteConnection,
        sql: &str,
        width: usize,
    ) -> Result<(), StoreError> {
        let rows: Vec<&[Cell]> = self.cells.chunks(width).collect();
        let text = &self.text;
        direct::insert(tx, sql, &rows, |cells, row: &mut Row| {
            for cell in *cells {
                match cell {
                    Cell::Null => row.int(None),
                    Cell::Int(v) => row.int(Some(*v)),
                    Cell::Text(range) => row.text(Some(&text[range.clone()])),
                };
            }
        })
        .await?;
        self.clear();
        Ok(())
    }

    /// Forgets the rows (a new attempt stages everything again).
    pub(super) fn clear(&mut self) {
        self.cells.clear();
        self.text.clear();
    }

    /// No row waits.
    pub(super) fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}
