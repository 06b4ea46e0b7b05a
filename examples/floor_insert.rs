//! Benchmark floor: the time for SQLite alone to insert a pull's worth of device records.
//!
//! First (untimed) it downloads every page of the devices list from a simulator and keeps each
//! record's id and raw JSON text in memory, cut exactly as `d42sync` cuts them. Then it creates
//! a fresh database in WAL mode with `synchronous=NORMAL` and d42sync's page size
//! ([`d42sync::store::PAGE_SIZE`]; a floor on worse settings would flatter the product), a table
//! `devices (id INTEGER PRIMARY KEY, raw TEXT NOT NULL)`, and times only `BEGIN`, multi-row
//! `INSERT`s of `--rows-per-insert` records each (one prepared statement, reused) and `COMMIT`.
//! No hashing, no change tracking, no staging table: a lower bound on storing the records, not
//! what the product does.
//!
//! ```text
//! cargo run --release --example floor_insert -- --base-url http://127.0.0.1:PORT \
//!     --db /tmp/floor.db [--endpoint /api/1.0/devices/all/] [--rows-per-insert 500] [--repeat 3]
//! ```
//!
//! Prints one JSON line: `{"rows": .., "bytes": .., "seconds": [..], "commit_seconds": [..],
//! "db_bytes": [..]}`: for each repetition (each into a fresh database, removed afterwards) the
//! seconds of insert + commit, of the commit alone, and the size of the database files once
//! closed (the table that holds each raw record once, which the product's database is measured
//! against).

use anyhow::{Context, bail};
use secrecy::ExposeSecret;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The simulator's default API client credentials (`d42sim simulate`).
const CLIENT_KEY: &str = "sim-client-key";
const SECRET_KEY: &str = "sim-secret-key";

/// Items asked per page: Device42's cap.
const PAGE_SIZE: usize = 1000;

/// Command-line options.
struct Options {
    /// `http://127.0.0.1:PORT` of the simulator.
    base_url: String,
    /// The devices list read.
    endpoint: String,
    /// The database file, created afresh (and removed) for each repetition.
    db: PathBuf,
    /// Records per `INSERT` statement (two parameters each, well under SQLite's limit).
    rows_per_insert: usize,
    /// Timed insertions of the same records, each into a fresh database.
    repeat: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        base_url: String::new(),
        endpoint: "/api/1.0/devices/all/".into(),
        db: PathBuf::new(),
        rows_per_insert: 500,
        repeat: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--base-url" => o.base_url = value,
            "--endpoint" => o.endpoint = value,
            "--db" => o.db = value.into(),
            "--rows-per-insert" => {
                o.rows_per_insert = value.parse().context("--rows-per-insert")?
            }
            "--repeat" => o.repeat = value.parse().context("--repeat")?,
            other => bail!("unknown option {other}"),
        }
    }
    if o.base_url.is_empty() || o.db.as_os_str().is_empty() {
        bail!("--base-url and --db are required");
    }
    if o.rows_per_insert == 0 || o.repeat == 0 {
        bail!("--rows-per-insert and --repeat must be at least 1");
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let records = download(&o).await?;
    let bytes: usize = records.iter().map(|(_, raw)| raw.len()).sum();
    let (mut seconds, mut commit, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..o.repeat {
        let inserted = insert_all(&o.db, &records, o.rows_per_insert).await?;
        seconds.push(format!("{:.3}", inserted.seconds));
        commit.push(format!("{:.3}", inserted.commit_seconds));
        sizes.push(inserted.db_bytes.to_string());
    }
    println!(
        r#"{{"rows": {}, "bytes": {bytes}, "seconds": [{}], "commit_seconds": [{}], "db_bytes": [{}]}}"#,
        records.len(),
        seconds.join(", "),
        commit.join(", "),
        sizes.join(", ")
    );
    Ok(())
}

/// What one timed insertion measured.
struct Inserted {
    /// `BEGIN` .. `COMMIT`.
    seconds: f64,
    /// The `COMMIT` alone (it includes the WAL checkpoint).
    commit_seconds: f64,
    /// The database file and its `-wal`, once the connection is closed.
    db_bytes: u64,
}

/// Inserts `records` into a fresh database at `path` (removed before and after).
async fn insert_all(
    path: &Path,
    records: &[(i64, String)],
    rows_per_insert: usize,
) -> anyhow::Result<Inserted> {
    remove_db(path)?;
    let mut db = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .page_size(d42sync::store::PAGE_SIZE)
        .connect()
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    sqlx::query("CREATE TABLE devices (id INTEGER PRIMARY KEY, raw TEXT NOT NULL)")
        .execute(&mut db)
        .await?;
    let full_batch = insert_sql(rows_per_insert);

    let started = Instant::now();
    let mut tx = db.begin().await?;
    for batch in records.chunks(rows_per_insert) {
        let short_batch;
        let sql = if batch.len() == rows_per_insert {
            &full_batch
        } else {
            short_batch = insert_sql(batch.len());
            &short_batch
        };
        let mut query = sqlx::query(sql);
        for (id, raw) in batch {
            query = query.bind(*id).bind(raw.as_str());
        }
        query.execute(&mut *tx).await?;
    }
    let inserted = started.elapsed().as_secs_f64();
    tx.commit().await?;
    let seconds = started.elapsed().as_secs_f64();

    db.close().await?;
    let db_bytes = db_files(path)
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    remove_db(path)?;
    Ok(Inserted {
        seconds,
        commit_seconds: seconds - inserted,
        db_bytes,
    })
}

/// A database file and its `-wal` and `-shm` companions.
fn db_files(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    ["", "-wal", "-shm"].into_iter().map(move |suffix| {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        PathBuf::from(file)
    })
}

/// Removes a database file and its `-wal` and `-shm` companions, if present.
fn remove_db(path: &Path) -> anyhow::Result<()> {
    for file in db_files(path) {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `INSERT INTO devices (id, raw) VALUES (?, ?), ...` for `rows` records.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO devices (id, raw) VALUES ");
    for n in 0..rows {
        sql.push_str(if n == 0 { "(?, ?)" } else { ", (?, ?)" });
    }
    sql
}

/// Every record of the endpoint as (device id, raw JSON), paging sequentially until a short page.
async fn download(o: &Options) -> anyhow::Result<Vec<(i64, String)>> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let grant = http
        .post(format!("{}/tauth/1.0/token/", o.base_url))
        .basic_auth(CLIENT_KEY, Some(SECRET_KEY))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let grant = d42sync::d42::models::parse_token(&grant).map_err(anyhow::Error::msg)?;
    let url = format!("{}{}", o.base_url, o.endpoint);
    let mut records = Vec::new();
    // Bounded: an inventory of more than a million pages is not a benchmark input.
    for page in 0..1_000_000 {
        let body = http
            .get(&url)
            .bearer_auth(grant.token.expose_secret())
            .query(&[("limit", PAGE_SIZE), ("offset", page * PAGE_SIZE)])
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let parsed = d42sync::d42::models::parse_device_page(&body).map_err(anyhow::Error::msg)?;
        records.extend(
            parsed
                .items
                .iter()
                .map(|item| (item.device_id, item.raw.to_string())),
        );
        if parsed.items.len() < PAGE_SIZE {
            return Ok(records);
        }
    }
    bail!("more than a million pages")
}
