//! The child tables (`device_ips`, `device_macs`, `device_tags`, `device_custom_fields`,
//! `device_aliases`) after pulls from the simulator: each holds exactly what `json_each` finds in
//! the stored records, through a first load and after upstream edits, additions and removals.

use crate::helpers::{TestEnv, count};
use crate::records::{documented_queries, pull_once, pulled};

/// The v1 endpoint, whose full records carry every list.
const V1: &str = "[devices]\nendpoint = \"/api/1.0/devices/all/\"";

/// Each child table's rows, and the same rows as `json_each` derives them from `raw`: (table,
/// `SELECT device_id, seq, values` of the table, the same of the records).
const TABLES: [(&str, &str, &str); 5] = [
    (
        "device_ips",
        "SELECT device_id, seq, json_array(ip, label, subnet, mac, type) FROM device_ips",
        "SELECT d.device_id, e.key, json_array(e.value ->> 'ip', e.value ->> 'label', \
         e.value ->> 'subnet', e.value ->> 'macaddress', e.value ->> 'type') \
         FROM devices d, json_each(d.raw, '$.ip_addresses') e",
    ),
    (
        "device_macs",
        "SELECT device_id, seq, json_array(mac, port, port_name, vlan) FROM device_macs",
        "SELECT d.device_id, e.key, json_array(e.value ->> 'mac', e.value ->> 'port', \
         e.value ->> 'port_name', e.value ->> 'vlan') \
         FROM devices d, json_each(d.raw, '$.mac_addresses') e",
    ),
    (
        "device_tags",
        "SELECT device_id, seq, json_array(tag) FROM device_tags",
        "SELECT d.device_id, e.key, json_array(e.value) FROM devices d, json_each(d.raw, '$.tags') e",
    ),
    (
        "device_custom_fields",
        "SELECT device_id, seq, json_array(key, value, notes) FROM device_custom_fields",
        "SELECT d.device_id, e.key, json_array(e.value ->> 'key', e.value ->> 'value', \
         e.value ->> 'notes') FROM devices d, json_each(d.raw, '$.custom_fields') e",
    ),
    (
        "device_aliases",
        "SELECT device_id, seq, json_array(alias) FROM device_aliases",
        "SELECT d.device_id, e.key, json_array(e.value) FROM devices d, json_each(d.raw, '$.aliases') e",
    ),
];

/// Per table: its rows, and the rows in it and not derived from `raw` or the other way round.
async fn differences(env: &TestEnv) -> Vec<(&'static str, i64, i64)> {
    let mut out = Vec::new();
    for (table, stored, derived) in TABLES {
        let rows = count(env, &format!("SELECT count(*) FROM {table}")).await;
        let sql = format!(
            "SELECT count(*) FROM (SELECT * FROM ({stored} EXCEPT {derived}) \
             UNION ALL SELECT * FROM ({derived} EXCEPT {stored}))"
        );
        out.push((table, rows, count(env, &sql).await));
    }
    out
}

/// Asserts every child table equals what `json_each` derives and that the tables in `filled`
/// have rows (and the others none).
async fn assert_children_follow_raw(env: &TestEnv, filled: &[&str]) {
    for (table, rows, differing) in differences(env).await {
        assert_eq!(differing, 0, "{table} differs from the records");
        assert_eq!(rows > 0, filled.contains(&table), "{table} has {rows} rows");
    }
}

#[tokio::test]
async fn a_v1_pull_fills_every_child_table_and_keeps_it_following_upstream_edits_and_removals() {
    let env = pulled(300, V1).await;
    assert_children_follow_raw(&env, &TABLES.map(|t| t.0)).await;
    let ids = env.sim.device_ids();
    for id in ids.iter().step_by(7) {
        assert!(env.sim.edit_device(*id));
    }
    for id in ids.iter().skip(3).step_by(11) {
        assert!(env.sim.remove_device(*id));
    }
    env.sim.add_devices(20);

    pull_once(&env).await;

    assert_children_follow_raw(&env, &TABLES.map(|t| t.0)).await;
    let orphans = count(
        &env,
        "SELECT count(*) FROM device_custom_fields c \
         WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.device_id = c.device_id)",
    )
    .await;
    assert_eq!(orphans, 0, "removed devices took their children along");
    let devices = count(&env, "SELECT count(*) FROM devices").await;
    assert_eq!(devices as usize, env.sim.device_count());
}

#[tokio::test]
async fn a_v2_pull_with_the_default_columns_fills_tags_custom_fields_and_aliases() {
    let env = pulled(300, "").await;

    assert_children_follow_raw(
        &env,
        &["device_tags", "device_custom_fields", "device_aliases"],
    )
    .await;
}

#[tokio::test]
async fn the_documented_child_table_queries_run_after_a_v1_pull() {
    let env = pulled(100, V1).await;
    let queries = documented_queries("### Queries on the child tables");
    assert!(queries.len() >= 5, "{queries:?}");
    let db = env.db().await;

    let mut failing = Vec::new();
    for query in &queries {
        if let Err(e) = sqlx::query(query).fetch_all(&db.pool).await {
            failing.push(format!("{query}: {e}"));
        }
    }

    assert!(failing.is_empty(), "{failing:?}");
    let per_tag = queries.iter().find(|q| q.contains("GROUP BY tag")).unwrap();
    let tags = sqlx::query(per_tag).fetch_all(&db.pool).await.unwrap();
    assert!(!tags.is_empty(), "{per_tag}");
}
