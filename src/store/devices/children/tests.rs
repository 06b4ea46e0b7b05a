//! The child tables through a pull's two paths (first load and compare), the deletion guard, a
//! discarded pull, and the migration that backfills them.

use super::super::tests::{Device, NO_GUARD, exec, open, pull, staged};
use super::TABLES;
use crate::device::children::{CustomField, DeviceChildren, Ip, Mac, Text, of_record};
use crate::store::Db;
use crate::store::devices::{ApplyOutcome, DeleteGuard};
use serde_json::{Value, json};

/// One child row as the tests compare it: table, device, position, and its value columns as a
/// JSON array.
type Row = (String, i64, i64, String);

/// The children a device sends at `version`: an empty and a numeric custom field key, a null
/// value, an empty label, and rows that differ from one version to the next.
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

/// Every stored child row, sorted.
async fn stored(db: &Db) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for table in TABLES {
        let values = table.columns.replace(", ", ", t.");
        let sql = format!(
            "SELECT ?, t.device_id, t.seq, json_array(t.{values}) FROM {} t",
            table.name
        );
        let mut some: Vec<Row> = sqlx::query_as(&sql)
            .bind(table.name)
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
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_unmigrated(&dir.path().join("old.db"))
        .await
        .unwrap();
    let mut before = sqlx::migrate!("./migrations");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 20261203000000)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&db.pool).await.unwrap();
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
