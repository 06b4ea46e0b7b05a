//! The child tables through a pull's two paths (first load and compare), the deletion guard, a
//! discarded pull, and the migration that backfills them.

use super::super::tests::{Device, NO_GUARD, exec, open, pull, stage_pages, staged};
use super::TABLES;
use crate::device::children::{CustomField, DeviceChildren, Ip, Mac, Text, of_record};
use crate::store::Db;
use crate::store::devices::{ApplyOutcome, DeleteGuard};
use serde_json::{Value, json};

/// One child row as the tests compare it: table, device, position, and its value columns as a
/// JSON array.
type Row = (String, i64, i64, String);

/// The children a device sends at `version`: an empty and a numeric custom field key, a null
/// value, an empty label, and rows that differ from one version to the next. From version 3 on
/// it sends one custom field more (its list of keys changes).
pub(in crate::store::devices) fn children_of((id, version): Device) -> DeviceChildren {
    let mut children = DeviceChildren::default();
    let (ip, subnet) = (format!("10.0.{id}.{version}"), format!("10.0.{id}.0/24"));
    children.push_ip(Ip {
        seq: 0,
        ip: Some(&ip),
        label: Some(""),
        subnet: Some(&subnet),
        mac: None,
        kind: Some(i64::from(version)),
    });
    let (mac, vlan) = (format!("00:00:{id:02}"), version.to_string());
    children.push_mac(Mac {
        seq: 0,
        mac: Some(&mac),
        port: None,
        port_name: Some("eth0"),
        vlan: Some(&vlan),
    });
    let tag = format!("v{version}");
    children.push_tag(Text {
        seq: 0,
        text: "all",
    });
    children.push_tag(Text { seq: 1, text: &tag });
    children.push_custom_field(CustomField {
        seq: 0,
        key: "",
        value: None,
        notes: Some(""),
    });
    children.push_custom_field(CustomField {
        seq: 1,
        key: "1",
        value: Some(&tag),
        notes: None,
    });
    if version >= 3 {
        children.push_custom_field(CustomField {
            seq: 2,
            key: "rack unit",
            value: None,
            notes: Some(""),
        });
    }
    let alias = format!("dev-{id}.example.com");
    children.push_alias(Text {
        seq: 0,
        text: &alias,
    });
    children
}

/// The rows `children` make for device `id`.
fn rows_of(id: i64, children: &DeviceChildren) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut push = |table: &str, seq: i64, values: Value| {
        rows.push((table.to_string(), id, seq, values.to_string()));
    };
    for r in children.ips() {
        push(
            "device_ips",
            r.seq,
            json!([r.ip, r.label, r.subnet, r.mac, r.kind]),
        );
    }
    for r in children.macs() {
        push(
            "device_macs",
            r.seq,
            json!([r.mac, r.port, r.port_name, r.vlan]),
        );
    }
    for r in children.tags() {
        push("device_tags", r.seq, json!([r.text]));
    }
    for r in children.custom_fields() {
        push(
            "device_custom_fields",
            r.seq,
            json!([r.key, r.value, r.notes]),
        );
    }
    for r in children.aliases() {
        push("device_aliases", r.seq, json!([r.text]));
    }
    rows
}

/// The child rows `devices` should have, sorted as [`stored`] gives them.
fn expected(devices: &[Device]) -> Vec<Row> {
    let mut rows: Vec<Row> = devices
        .iter()
        .flat_map(|&device| rows_of(device.0, &children_of(device)))
        .collect();
    rows.sort();
    rows
}

/// The child tables as reports read them (`device_custom_fields` is a view), with their value
/// columns.
const READ: [(&str, &str); 5] = [
    ("device_ips", "ip, label, subnet, mac, type"),
    ("device_macs", "mac, port, port_name, vlan"),
    ("device_tags", "tag"),
    ("device_custom_fields", "key, value, notes"),
    ("device_aliases", "alias"),
];

/// Every child row as reports read it, sorted.
async fn stored(db: &Db) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for (name, columns) in READ {
        let values = columns.replace(", ", ", t.");
        let sql = format!("SELECT ?, t.device_id, t.seq, json_array(t.{values}) FROM {name} t");
        let mut some: Vec<Row> = sqlx::query_as(&sql)
            .bind(name)
            .fetch_all(&db.pool)
            .await
            .unwrap();
        rows.append(&mut some);
    }
    rows.sort();
    rows
}

/// Logs every row inserted into or deleted from a child table in `child_writes` (device, table).
async fn log_child_writes(db: &Db) {
    let mut sql = String::from("CREATE TABLE child_writes (device_id INTEGER, tbl TEXT);");
    for table in TABLES {
        let name = table.name;
        sql.push_str(&format!(
            "CREATE TRIGGER {name}_ins AFTER INSERT ON {name} \
             BEGIN INSERT INTO child_writes VALUES (new.device_id, '{name}'); END; \
             CREATE TRIGGER {name}_del AFTER DELETE ON {name} \
             BEGIN INSERT INTO child_writes VALUES (old.device_id, '{name}'); END;"
        ));
    }
    exec(db, &sql).await;
}

/// The devices whose children were written since [`log_child_writes`].
async fn written(db: &Db) -> Vec<i64> {
    sqlx::query_scalar("SELECT DISTINCT device_id FROM child_writes ORDER BY device_id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_first_load_fills_the_child_tables_with_every_entry_of_every_device() {
    let (_dir, db) = open().await;
    let pulled = [(1, 1), (2, 1), (3, 1)];

    let (_, outcome) = pull(&db, &[&pulled[..2], &pulled[2..]], NO_GUARD).await;

    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.added == 3));
    assert_eq!(stored(&db).await, expected(&pulled));
    let keys: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT key, value FROM device_custom_fields WHERE device_id = 2 ORDER BY seq",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        keys,
        [(String::new(), None), ("1".into(), Some("v1".into()))]
    );
}

#[tokio::test]
async fn a_changed_record_rewrites_only_that_devices_children_and_leaves_the_others_untouched() {
    let (_dir, db) = open().await;
    pull(&db, &[&[(1, 1), (2, 1), (3, 1)]], NO_GUARD).await;
    log_child_writes(&db).await;
    let pulled = [(1, 1), (2, 2), (3, 1), (4, 1)];

    let (_, outcome) = pull(&db, &[&pulled], NO_GUARD).await;

    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.changed == 1 && c.added == 1));
    assert_eq!(stored(&db).await, expected(&pulled));
    assert_eq!(
        written(&db).await,
        [2, 4],
        "only the changed and the new device"
    );
}

#[tokio::test]
async fn a_pull_that_changes_nothing_writes_no_child_row() {
    let (_dir, db) = open().await;
    let pulled = [(1, 1), (2, 1)];
    pull(&db, &[&pulled], NO_GUARD).await;
    log_child_writes(&db).await;

    pull(&db, &[&pulled], NO_GUARD).await;

    assert_eq!(stored(&db).await, expected(&pulled));
    assert!(written(&db).await.is_empty());
}

#[tokio::test]
async fn a_removed_device_loses_its_children_with_its_record() {
    let (_dir, db) = open().await;
    pull(&db, &[&[(1, 1), (2, 1), (3, 1)]], NO_GUARD).await;
    log_child_writes(&db).await;

    let (_, outcome) = pull(&db, &[&[(1, 1), (3, 1)]], NO_GUARD).await;

    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.removed == 1));
    assert_eq!(stored(&db).await, expected(&[(1, 1), (3, 1)]));
    assert_eq!(written(&db).await, [2]);
}

#[tokio::test]
async fn a_held_pull_changes_no_child_row() {
    let (_dir, db) = open().await;
    let before = [(1, 1), (2, 1), (3, 1), (4, 1)];
    pull(&db, &[&before], NO_GUARD).await;
    log_child_writes(&db).await;
    let guard = DeleteGuard {
        max_delete_fraction: 0.5,
        allow_mass_delete: false,
    };

    let (_, outcome) = pull(&db, &[&[(1, 2)]], guard).await;

    assert!(matches!(outcome, ApplyOutcome::Held { removing: 3, .. }));
    assert_eq!(stored(&db).await, expected(&before));
    assert!(written(&db).await.is_empty());
}

#[tokio::test]
async fn a_pull_that_fails_before_its_apply_changes_no_child_row() {
    let (_dir, db) = open().await;
    let before = [(1, 1), (2, 1)];
    pull(&db, &[&before], NO_GUARD).await;
    log_child_writes(&db).await;
    let (_, stage) = staged(&db, &[&[(1, 2), (3, 1)]]).await;

    stage.discard().await;

    assert_eq!(stored(&db).await, expected(&before));
    assert!(written(&db).await.is_empty());
}

#[tokio::test]
async fn a_discarded_first_load_leaves_no_child_row_and_no_load_table() {
    let (_dir, db) = open().await;
    let (_, stage) = staged(&db, &[&[(1, 1), (2, 1)]]).await;

    stage.discard().await;

    assert!(stored(&db).await.is_empty());
    let (left,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'pull_load%' OR name = 'pull_swap'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

/// A database in a directory of its own, migrated up to (not including) migration `version`.
async fn migrated_before(version: i64) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_unmigrated(&dir.path().join("old.db"))
        .await
        .unwrap();
    let mut before = sqlx::migrate!("./migrations");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&db.pool).await.unwrap();
    (dir, db)
}

/// Records as they may sit in a database from before the child tables: the usual shapes, odd
/// ones, and a record that is not JSON at all.
const OLD_RECORDS: [(i64, &str); 4] = [
    (
        1,
        r#"{"device_id": 1, "ip_addresses": [{"ip": "10.1.1.1", "label": "", "subnet": "10.1.1.0/24", "type": 1, "macaddress": "aa:bb"}, {"ip": "10.1.1.2", "type": null, "macaddress": null}], "mac_addresses": [{"mac": "aa:bb", "port": null, "port_name": "eth0", "vlan": "101"}], "tags": ["pci", "pci", "dmz"], "custom_fields": [{"key": "", "value": null, "notes": ""}, {"key": "1", "value": "x", "notes": null}], "aliases": ["one.example.com"]}"#,
    ),
    (
        2,
        r#"{"device_id": 2, "ip_addresses": [5, {"ip": 7, "label": true, "type": "2"}], "mac_addresses": {"mac": "x"}, "tags": "pci,dmz", "custom_fields": [{"key": 2, "value": 3.5, "notes": false}, {"value": "no key"}, {"key": null}, {"key": "k", "value": {"a": [1]}}], "aliases": [null, ["x"], "b", 7, true]}"#,
    ),
    (3, r#"{"device_id": 3, "tags": null}"#),
    (4, "not json"),
];

#[tokio::test]
async fn the_migration_backfills_the_children_of_stored_devices_as_a_pull_derives_them() {
    let (_dir, db) = migrated_before(20261203000000).await;
    for (id, raw) in OLD_RECORDS {
        sqlx::query(
            "INSERT INTO devices (device_id, raw, raw_hash, first_seen, last_changed) \
             VALUES (?, ?, 0, 'then', 'then')",
        )
        .bind(id)
        .bind(raw)
        .execute(&db.pool)
        .await
        .unwrap();
    }

    db.migrate().await.unwrap();

    let mut want: Vec<Row> = OLD_RECORDS
        .iter()
        .flat_map(|(id, raw)| rows_of(*id, &of_record(raw)))
        .collect();
    want.sort();
    assert_eq!(stored(&db).await, want);
    assert_eq!(
        want.len(),
        15,
        "the records hold 15 entries of the expected shapes"
    );
    let (devices,): (i64,) = sqlx::query_as("SELECT count(*) FROM devices")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(devices, 4, "no device is lost");
}

/// The stored lists of custom-field keys: (layout id, keys as a JSON array), by id.
async fn layouts(db: &Db) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT layout_id, json_group_array(key ORDER BY seq) FROM custom_field_layout_keys \
         GROUP BY layout_id ORDER BY layout_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// Each device's list: (device, layout id), by device.
async fn device_layouts(db: &Db) -> Vec<(i64, i64)> {
    sqlx::query_as("SELECT device_id, layout_id FROM device_custom_field_layouts ORDER BY 1")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn devices_that_send_the_same_keys_share_one_stored_list_and_unset_fields_are_no_rows() {
    let (_dir, db) = open().await;
    let pulled = [(1, 1), (2, 1), (3, 1)];

    pull(&db, &[&pulled[..2], &pulled[2..]], NO_GUARD).await;

    assert_eq!(stored(&db).await, expected(&pulled));
    assert_eq!(layouts(&db).await, [(1, r#"["","1"]"#.to_string())]);
    assert_eq!(device_layouts(&db).await, [(1, 1), (2, 1), (3, 1)]);
    let entries: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT device_id, seq, key FROM device_custom_field_entries ORDER BY 1")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        entries,
        [1, 2, 3].map(|id| (id, 1, "1".to_string())),
        "only the field with a value is a row"
    );
    let unset: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT device_id, key, value, notes FROM device_custom_fields WHERE seq = 0 ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        unset,
        [1, 2, 3].map(|id| (id, String::new(), None, Some(String::new())))
    );
}

#[tokio::test]
async fn a_new_list_of_keys_is_stored_once_and_a_list_no_device_sends_any_more_is_dropped() {
    let (_dir, db) = open().await;
    pull(&db, &[&[(1, 1), (2, 1), (3, 1)]], NO_GUARD).await;

    let changed = [(1, 3), (2, 3), (3, 1)];
    pull(&db, &[&changed], NO_GUARD).await;

    assert_eq!(stored(&db).await, expected(&changed));
    let both = [
        (1, r#"["","1"]"#.to_string()),
        (2, r#"["","1","rack unit"]"#.to_string()),
    ];
    assert_eq!(layouts(&db).await, both);
    assert_eq!(device_layouts(&db).await, [(1, 2), (2, 2), (3, 1)]);

    let all_new = [(1, 3), (2, 3), (3, 3)];
    pull(&db, &[&all_new], NO_GUARD).await;

    assert_eq!(stored(&db).await, expected(&all_new));
    assert_eq!(layouts(&db).await, both[1..]);
    assert_eq!(device_layouts(&db).await, [(1, 2), (2, 2), (3, 2)]);

    let (_, outcome) = pull(&db, &[&[(1, 1)]], NO_GUARD).await;
    assert!(matches!(outcome, ApplyOutcome::Applied(c) if c.removed == 2));
    assert_eq!(stored(&db).await, expected(&[(1, 1)]));
    assert_eq!(
        layouts(&db).await,
        [(3, r#"["","1"]"#.to_string())],
        "a list met again after it was dropped is numbered anew"
    );
}

#[tokio::test]
async fn a_pull_that_fails_before_its_apply_stores_no_list_of_keys() {
    let (_dir, db) = open().await;
    pull(&db, &[&[(1, 1), (2, 1)]], NO_GUARD).await;
    let (_, stage) = staged(&db, &[&[(1, 3), (2, 1)]]).await;

    stage.discard().await;

    assert_eq!(layouts(&db).await, [(1, r#"["","1"]"#.to_string())]);
    let (_, stage) = staged(&db, &[&[(1, 3), (2, 1)]]).await;
    assert!(matches!(
        stage.apply(2, NO_GUARD).await.unwrap(),
        ApplyOutcome::Applied(c) if c.changed == 1
    ));
    assert_eq!(stored(&db).await, expected(&[(1, 3), (2, 1)]));
    assert_eq!(layouts(&db).await.len(), 2);
}

/// A custom-field row: (device, seq, key, value, notes).
type FieldRow<S> = (i64, i64, S, Option<S>, Option<S>);

/// Custom-field rows as the table `device_custom_fields` held them before the lists of keys:
/// devices 1 and 2 send the same keys, device 3 others; an
/// entry with neither value nor notes is not unset (its notes are not `""`).
const OLD_CUSTOM_FIELDS: [FieldRow<&str>; 9] = [
    (1, 0, "", None, Some("")),
    (1, 1, "1", Some("x"), None),
    (1, 2, "owner", None, Some("")),
    (2, 0, "", None, Some("")),
    (2, 1, "1", None, Some("")),
    (2, 2, "owner", Some(""), Some("")),
    (3, 0, "owner", None, None),
    (3, 2, "[\"json\"]", None, Some("")),
    (3, 5, "", None, Some("a note")),
];

#[tokio::test]
async fn the_migration_to_lists_of_keys_keeps_every_custom_field_row() {
    let (_dir, db) = migrated_before(20261207000000).await;
    for (device, seq, key, value, notes) in OLD_CUSTOM_FIELDS {
        sqlx::query(
            "INSERT INTO device_custom_fields (device_id, seq, key, value, notes) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(device)
        .bind(seq)
        .bind(key)
        .bind(value)
        .bind(notes)
        .execute(&db.pool)
        .await
        .unwrap();
    }

    db.migrate().await.unwrap();

    let rows: Vec<FieldRow<String>> = sqlx::query_as(
        "SELECT device_id, seq, key, value, notes FROM device_custom_fields ORDER BY 1, 2",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let want: Vec<_> = OLD_CUSTOM_FIELDS
        .iter()
        .map(|(d, s, k, v, n)| {
            (
                *d,
                *s,
                k.to_string(),
                v.map(String::from),
                n.map(String::from),
            )
        })
        .collect();
    assert_eq!(rows, want);
    assert_eq!(
        layouts(&db).await,
        [
            (1, r#"["","1","owner"]"#.to_string()),
            (2, r#"["owner","[\"json\"]",""]"#.to_string()),
        ]
    );
    assert_eq!(device_layouts(&db).await, [(1, 1), (2, 1), (3, 2)]);
    let (entries,): (i64,) = sqlx::query_as("SELECT count(*) FROM device_custom_field_entries")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        entries, 4,
        "the entries with a value or notes other than \"\""
    );
}

#[tokio::test]
async fn a_first_loads_child_rows_wait_for_the_apply_until_a_table_has_a_batch_to_write() {
    let (_dir, db) = open().await;
    let pulled = [(1, 1), (2, 1), (3, 1)];
    let (_, stage) = staged(&db, &[&pulled[..2], &pulled[2..]]).await;

    let (records, tags): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pull_load_devices), \
         (SELECT count(*) FROM pull_load_device_tags)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        (records, tags),
        (3, 0),
        "records are committed page by page, child rows wait"
    );

    stage.apply(3, NO_GUARD).await.unwrap();
    assert_eq!(stored(&db).await, expected(&pulled));
}

#[tokio::test]
async fn a_new_attempt_of_a_first_load_forgets_the_child_rows_of_the_one_before() {
    let (_dir, db) = open().await;
    let (run_id, mut stage) = staged(&db, &[&[(1, 1), (9, 1)]]).await;

    stage.clear().await.unwrap();
    let pulled = [(1, 1), (2, 1)];
    stage_pages(&mut stage, run_id, &[&pulled]).await;
    stage.apply(2, NO_GUARD).await.unwrap();

    assert_eq!(stored(&db).await, expected(&pulled));
}
