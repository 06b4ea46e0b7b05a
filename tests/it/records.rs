//! Device records as a pull with default settings stores them: every typed column the records
//! carry is filled, and the example queries of docs/schema.md find rows.

use crate::helpers::{TestEnv, count};
use d42sim::SimConfig;
use d42sync::device::DeviceColumns;
use d42sync::jobs::pull::{self, PullOptions};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

/// Starts a simulator of `devices` devices and pulls once with the default `[devices]` settings
/// and `extra`.
pub async fn pulled(devices: usize, extra: &str) -> TestEnv {
    let env = TestEnv::start(
        SimConfig {
            devices,
            ..SimConfig::default()
        },
        extra,
    )
    .await;
    pull_once(&env).await;
    env
}

/// Pulls once, in process, with the settings of `env`.
pub async fn pull_once(env: &TestEnv) {
    let db = env.db().await;
    pull::run(
        &db,
        &env.client(),
        &env.settings().devices,
        PullOptions::default(),
        &CancellationToken::new(),
    )
    .await
    .expect("the pull succeeds");
    db.close().await;
}

/// The typed columns left NULL for every device.
async fn columns_null_for_every_device(env: &TestEnv) -> Vec<&'static str> {
    let mut empty = Vec::new();
    for column in DeviceColumns::TEXT_COLUMNS
        .iter()
        .chain(["in_service"].iter())
    {
        let sql = format!("SELECT count(*) FROM devices WHERE {column} IS NOT NULL");
        if count(env, &sql).await == 0 {
            empty.push(*column);
        }
    }
    empty
}

#[tokio::test]
async fn a_pull_with_default_settings_fills_every_typed_column_the_records_carry() {
    let env = pulled(300, "").await;

    let empty = columns_null_for_every_device(&env).await;

    assert!(empty.is_empty(), "NULL for every device: {empty:?}");
    let disagreeing = count(
        &env,
        "SELECT count(*) FROM devices WHERE \
         hardware IS NOT json_extract(raw, '$.hardware') \
         OR os_name IS NOT json_extract(raw, '$.os_name') \
         OR os_version IS NOT coalesce(json_extract(raw, '$.os_version'), json_extract(raw, '$.os_version_no')) \
         OR customer IS NOT json_extract(raw, '$.customer') \
         OR last_updated IS NOT json_extract(raw, '$.last_updated') \
         OR in_service IS NOT json_extract(raw, '$.in_service')",
    )
    .await;
    assert_eq!(disagreeing, 0, "typed columns follow the v2 record");
}

#[tokio::test]
async fn a_v1_pull_fills_the_same_typed_columns_from_v1_names() {
    let env = pulled(300, "[devices]\nendpoint = \"/api/1.0/devices/all/\"").await;

    let empty = columns_null_for_every_device(&env).await;

    assert!(empty.is_empty(), "NULL for every device: {empty:?}");
    let only_number = count(
        &env,
        "SELECT count(*) FROM devices WHERE json_extract(raw, '$.osver') IS NULL \
         AND os_version = json_extract(raw, '$.osverno')",
    )
    .await;
    assert!(only_number > 0, "records with osverno only fill os_version");
}

/// The SQL statements of the first sql block after `heading` in docs/schema.md.
pub fn documented_queries(heading: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema.md"),
    )
    .unwrap();
    let section = doc
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("docs/schema.md has a section {heading}"));
    let block = section
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has an sql block");
    let without_comments: String = block
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn the_example_queries_of_the_schema_doc_return_rows_after_a_default_pull() {
    let env = pulled(300, "").await;
    let db = env.db().await;
    sqlx::query(
        "INSERT INTO building_queue (name, status, attempts, last_error) \
         VALUES ('Lab', 'dead', 10, 'POST /api/1.0/buildings/: rejected: HTTP 400: no')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let queries = documented_queries("## Example queries");
    assert!(queries.len() >= 6, "{queries:?}");

    let mut empty = Vec::new();
    for query in &queries {
        let rows = sqlx::query(query).fetch_all(&db.pool).await;
        let rows = rows.unwrap_or_else(|e| panic!("{query}: {e}"));
        let all_null = rows.iter().all(|row| {
            (0..row.len()).all(|i| {
                row.try_get_raw(i)
                    .is_ok_and(|v| sqlx::ValueRef::is_null(&v))
            })
        });
        if rows.is_empty() || all_null {
            empty.push(query.clone());
        }
    }
    db.close().await;

    assert!(empty.is_empty(), "queries without rows: {empty:#?}");
}
