//! The lists of custom-field keys (`custom_field_layout_keys`): real records list every defined
//! custom field on every device, in the same order, nearly all unset. Each distinct list is
//! stored once, each device names its own (`device_custom_field_layouts`), and only the entries
//! that say something are rows (`device_custom_field_entries`); the view `device_custom_fields`
//! puts them back together (migration `custom_field_layouts`).
//!
//! A pull reads the stored lists when it starts, numbers the lists it meets for the first time
//! after them, and writes those in its apply: a pull that fails leaves none behind. The apply
//! also drops the lists no device names any more. Only one pull runs at a time (the
//! single-instance lock); a list written meanwhile by hand makes the apply fail on its key
//! rather than mix two lists.

use crate::device::children::DeviceChildren;
use crate::store::{StoreError, direct};
use sqlx::SqliteConnection;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// A list of keys: (position in `custom_fields`, key), in list order.
type Keys = Vec<(i64, String)>;

/// The lists known to a pull, by the hash of their keys.
#[derive(Debug, Default)]
pub(super) struct Layouts {
    /// Hash of a list's keys -> the lists with that hash: (layout id, keys).
    known: HashMap<u64, Vec<(i64, Keys)>>,
    /// The id of the first list this pull meets first: it and those after it are written by
    /// the apply.
    first_new: i64,
    /// The id the next new list gets.
    next: i64,
}

impl Layouts {
    /// The lists stored now.
    pub(super) async fn read(conn: &mut SqliteConnection) -> Result<Self, StoreError> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT layout_id, seq, key FROM main.custom_field_layout_keys ORDER BY layout_id, seq",
        )
        .fetch_all(conn)
        .await?;
        let mut lists: Vec<(i64, Keys)> = Vec::new();
        for (id, seq, key) in rows {
            match lists.last_mut() {
                Some((last, keys)) if *last == id => keys.push((seq, key)),
                _ => lists.push((id, vec![(seq, key)])),
            }
        }
        let next = lists.last().map_or(1, |(id, _)| id + 1);
        let mut layouts = Self {
            first_new: next,
            next,
            ..Self::default()
        };
        for (id, keys) in lists {
            let hash = hash_of(keys.iter().map(|(seq, key)| (*seq, key.as_str())));
            layouts.known.entry(hash).or_default().push((id, keys));
        }
        Ok(layouts)
    }

    /// The id of the list of keys `children` sends, numbering it if it is new; `None` for a
    /// record without custom fields.
    pub(super) fn id_of(&mut self, children: &DeviceChildren) -> Option<i64> {
        if children.custom_fields().len() == 0 {
            return None;
        }
        let keys = || children.custom_fields().map(|f| (f.seq, f.key));
        let hash = hash_of(keys());
        let same = self.known.entry(hash).or_default();
        if let Some((id, _)) = same
            .iter()
            .find(|(_, known)| known.iter().map(|(s, k)| (*s, k.as_str())).eq(keys()))
        {
            return Some(*id);
        }
        let id = self.next;
        self.next += 1;
        same.push((id, keys().map(|(s, k)| (s, k.to_string())).collect()));
        Some(id)
    }

    /// Within the apply `tx`, after the devices' lists are written: stores the lists this pull
    /// met first and drops those no device names any more.
    pub(super) async fn apply(&self, tx: &mut SqliteConnection) -> Result<(), StoreError> {
        let rows: Vec<(i64, i64, &str)> = self
            .known
            .values()
            .flatten()
            .filter(|(id, _)| *id >= self.first_new)
            .flat_map(|(id, keys)| keys.iter().map(|(seq, key)| (*id, *seq, key.as_str())))
            .collect();
        let sql = direct::insert_sql("main.custom_field_layout_keys", "layout_id, seq, key", "");
        direct::insert(tx, &sql, &rows, |(id, seq, key), row| {
            row.int(Some(*id)).int(Some(*seq)).text(Some(key));
        })
        .await?;
        sqlx::query(
            "DELETE FROM main.custom_field_layout_keys WHERE NOT EXISTS \
             (SELECT 1 FROM main.device_custom_field_layouts d \
              WHERE d.layout_id = custom_field_layout_keys.layout_id)",
        )
        .execute(tx)
        .await?;
        Ok(())
    }
}

/// The hash of a list of keys, the same for equal lists within a process.
fn hash_of<'a>(keys: impl Iterator<Item = (i64, &'a str)>) -> u64 {
    let mut hasher = DefaultHasher::new();
    for key in keys {
        key.hash(&mut hasher);
    }
    hasher.finish()
}
