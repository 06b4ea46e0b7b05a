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
//! With `--children` it also stores each record's child rows (IPs, MACs, tags, custom fields,
//! aliases), derived untimed by d42sync's own parse, in tables of the product's shape
//! (`WITHOUT ROWID`, primary key `(device_id, seq)`; no secondary index, as `devices` has none
//! here), in the same transaction and in the same multi-row way: the floor of storing what the
//! child tables require, beside the floor of the records alone.
//!
//! With `--sparse-custom-fields` as well, a custom field that is defined but not set (value
//! null, notes `""`: nearly all of them in real records) is not a row: each distinct list of a
//! record's custom-field keys is stored once (`custom_field_layouts`, the `(seq, key)` pairs as
//! JSON) and each device names its list (`device_custom_field_layouts`), and only the entries
//! that differ from unset are rows of `device_custom_fields`. A view could give readers every
//! entry back; this measures what such a layout would cost to store.
//!
//! ```text
//! cargo run --release --example floor_insert -- --base-url http://127.0.0.1:PORT \
//!     --db /tmp/floor.db [--endpoint /api/1.0/devices/all/] [--rows-per-insert 500] [--repeat 3] \
//!     [--children [--sparse-custom-fields]]
//! ```
//!
//! Prints one JSON line: `{"rows": .., "bytes": .., "child_rows": .., "stored_child_rows": ..,
//! "seconds": [..], "commit_seconds": [..], "db_bytes": [..]}` (`child_rows` 0 without
//! `--children`; `stored_child_rows` fewer with `--sparse-custom-fields`): for each repetition
//! (each into a fresh database, removed afterwards) the
//! seconds of insert + commit, of the commit alone, and the size of the database files once
//! closed (the table that holds each raw record once, which the product's database is measured
//! against).

use anyhow::{Context, bail};
use d42sync::device::children::{CustomField, DeviceChildren};
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
    /// Rows per `INSERT` statement (at most seven values each, well under SQLite's limit).
    rows_per_insert: usize,
    /// Timed insertions of the same records, each into a fresh database.
    repeat: usize,
    /// Store the records' child rows too.
    children: bool,
    /// Store unset custom fields as one key list per distinct list, not as rows.
    sparse: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        base_url: String::new(),
        endpoint: "/api/1.0/devices/all/".into(),
        db: PathBuf::new(),
        rows_per_insert: 500,
        repeat: 1,
        children: false,
        sparse: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--children" {
            o.children = true;
            continue;
        }
        if flag == "--sparse-custom-fields" {
            o.sparse = true;
            continue;
        }
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
    if o.sparse && !o.children {
        bail!("--sparse-custom-fields goes with --children");
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
    let bytes: usize = records.iter().map(|r| r.raw.len()).sum();
    let child_rows: usize = records
        .iter()
        .filter_map(|r| r.children.as_ref())
        .map(|c| {
            c.ips().len()
                + c.macs().len()
                + c.tags().len()
                + c.custom_fields().len()
                + c.aliases().len()
        })
        .sum();
    let stored_child_rows = if o.sparse {
        let unset = records
            .iter()
            .filter_map(|r| r.children.as_ref())
            .flat_map(|c| c.custom_fields())
            .filter(CustomField::is_unset)
            .count();
        child_rows - unset
    } else {
        child_rows
    };
    let (mut seconds, mut commit, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..o.repeat {
        let inserted = insert_all(&o.db, &records, o.rows_per_insert, o.sparse).await?;
        seconds.push(format!("{:.3}", inserted.seconds));
        commit.push(format!("{:.3}", inserted.commit_seconds));
        sizes.push(inserted.db_bytes.to_string());
    }
    println!(
        r#"{{"rows": {}, "bytes": {bytes}, "child_rows": {child_rows}, "stored_child_rows": {stored_child_rows}, "seconds": [{}], "commit_seconds": [{}], "db_bytes": [{}]}}"#,
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

/// One downloaded record.
struct Record {
    device_id: i64,
    /// As sent.
    raw: String,
    /// Its child rows, with `--children`.
    children: Option<DeviceChildren>,
}

/// A value bound into an INSERT.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

/// The tables of `--sparse-custom-fields`: each distinct key list once, and each device's.
const LAYOUT_TABLES: [&str; 2] = [
    "CREATE TABLE custom_field_layouts (id INTEGER PRIMARY KEY, keys TEXT NOT NULL UNIQUE)",
    "CREATE TABLE device_custom_field_layouts (device_id INTEGER PRIMARY KEY, \
     layout_id INTEGER NOT NULL)",
];

/// The child tables as the product's migration creates them, less their secondary indexes.
const CHILD_TABLES: [&str; 5] = [
    "CREATE TABLE device_ips (device_id INTEGER NOT NULL, seq INTEGER NOT NULL, ip TEXT, \
     label TEXT, subnet TEXT, mac TEXT, type INTEGER, PRIMARY KEY (device_id, seq)) WITHOUT ROWID",
    "CREATE TABLE device_macs (device_id INTEGER NOT NULL, seq INTEGER NOT NULL, mac TEXT, \
     port TEXT, port_name TEXT, vlan TEXT, PRIMARY KEY (device_id, seq)) WITHOUT ROWID",
    "CREATE TABLE device_tags (device_id INTEGER NOT NULL, seq INTEGER NOT NULL, \
     tag TEXT NOT NULL, PRIMARY KEY (device_id, seq)) WITHOUT ROWID",
    "CREATE TABLE device_custom_fields (device_id INTEGER NOT NULL, seq INTEGER NOT NULL, \
     key TEXT NOT NULL, value TEXT, notes TEXT, PRIMARY KEY (device_id, seq)) WITHOUT ROWID",
    "CREATE TABLE device_aliases (device_id INTEGER NOT NULL, seq INTEGER NOT NULL, \
     alias TEXT NOT NULL, PRIMARY KEY (device_id, seq)) WITHOUT ROWID",
];

/// Inserts `records` (and their child rows, when they carry them) into a fresh database at
/// `path` (removed before and after); unset custom fields as key lists when `sparse`.
async fn insert_all(
    path: &Path,
    records: &[Record],
    rows_per_insert: usize,
    sparse: bool,
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
    let children: Vec<(i64, &DeviceChildren)> = records
        .iter()
        .filter_map(|r| r.children.as_ref().map(|c| (r.device_id, c)))
        .collect();
    if !children.is_empty() {
        for create in CHILD_TABLES {
            sqlx::query(create).execute(&mut db).await?;
        }
    }
    if sparse {
        for create in LAYOUT_TABLES {
            sqlx::query(create).execute(&mut db).await?;
        }
    }
    // Rows built before the clock starts: the floor times SQLite, not the building of rows.
    let devices: Vec<Vec<Cell>> = records
        .iter()
        .map(|r| vec![Cell::Int(Some(r.device_id)), Cell::Text(Some(&r.raw))])
        .collect();
    let (child_rows, layouts) = child_rows(&children, sparse);
    let layout_rows: Vec<Vec<Cell>> = layouts
        .0
        .iter()
        .map(|(id, keys)| vec![Cell::Int(Some(*id)), Cell::Text(Some(keys))])
        .collect();
    let device_layout_rows: Vec<Vec<Cell>> = layouts
        .1
        .iter()
        .map(|(device, layout)| vec![Cell::Int(Some(*device)), Cell::Int(Some(*layout))])
        .collect();

    let started = Instant::now();
    let mut tx = db.begin().await?;
    insert_rows(&mut tx, "devices (id, raw)", &devices, rows_per_insert).await?;
    for (table, rows) in &child_rows {
        insert_rows_directly(&mut tx, table, rows).await?;
    }
    if sparse {
        let into = "custom_field_layouts (id, keys)";
        insert_rows_directly(&mut tx, into, &layout_rows).await?;
        let into = "device_custom_field_layouts (device_id, layout_id)";
        insert_rows_directly(&mut tx, into, &device_layout_rows).await?;
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

/// The distinct custom-field key lists (id, JSON of `[seq, key]` pairs), and each device's.
type Layouts = (Vec<(i64, String)>, Vec<(i64, i64)>);

/// Tables (as `name (columns)`) with their rows.
type TableRows<'a> = Vec<(&'static str, Vec<Vec<Cell<'a>>>)>;

/// Each child table (as `name (columns)`) with its rows, in device order; with `sparse`, only
/// the custom fields that are set (value not null or notes not `""`) are rows, and the key lists
/// come beside them.
fn child_rows<'a>(
    children: &[(i64, &'a DeviceChildren)],
    sparse: bool,
) -> (TableRows<'a>, Layouts) {
    let (mut ips, mut macs, mut tags, mut fields, mut aliases) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut layout_ids: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut layouts: Layouts = (Vec::new(), Vec::new());
    for &(device, c) in children {
        let id = Cell::Int(Some(device));
        for r in c.ips() {
            ips.push(vec![
                id,
                Cell::Int(Some(r.seq)),
                Cell::Text(r.ip),
                Cell::Text(r.label),
                Cell::Text(r.subnet),
                Cell::Text(r.mac),
                Cell::Int(r.kind),
            ]);
        }
        for r in c.macs() {
            macs.push(vec![
                id,
                Cell::Int(Some(r.seq)),
                Cell::Text(r.mac),
                Cell::Text(r.port),
                Cell::Text(r.port_name),
                Cell::Text(r.vlan),
            ]);
        }
        for r in c.tags() {
            tags.push(vec![id, Cell::Int(Some(r.seq)), Cell::Text(Some(r.text))]);
        }
        if sparse {
            let keys: Vec<(i64, &str)> = c.custom_fields().map(|r| (r.seq, r.key)).collect();
            let keys = serde_json::to_string(&keys).expect("a list of pairs serialises");
            let next = layout_ids.len() as i64 + 1;
            let layout = *layout_ids.entry(keys.clone()).or_insert_with(|| {
                layouts.0.push((next, keys));
                next
            });
            layouts.1.push((device, layout));
        }
        for r in c.custom_fields() {
            if sparse && r.is_unset() {
                continue;
            }
            fields.push(vec![
                id,
                Cell::Int(Some(r.seq)),
                Cell::Text(Some(r.key)),
                Cell::Text(r.value),
                Cell::Text(r.notes),
            ]);
        }
        for r in c.aliases() {
            aliases.push(vec![id, Cell::Int(Some(r.seq)), Cell::Text(Some(r.text))]);
        }
    }
    let tables = vec![
        (
            "device_ips (device_id, seq, ip, label, subnet, mac, type)",
            ips,
        ),
        (
            "device_macs (device_id, seq, mac, port, port_name, vlan)",
            macs,
        ),
        ("device_tags (device_id, seq, tag)", tags),
        (
            "device_custom_fields (device_id, seq, key, value, notes)",
            fields,
        ),
        ("device_aliases (device_id, seq, alias)", aliases),
    ];
    (tables, layouts)
}

/// Inserts `rows` into `into` (`table (columns)`) with multi-row INSERTs of `per_insert` rows,
/// one prepared statement for all the full ones.
async fn insert_rows(
    tx: &mut sqlx::SqliteConnection,
    into: &str,
    rows: &[Vec<Cell<'_>>],
    per_insert: usize,
) -> anyhow::Result<()> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let full = insert_sql(into, width, per_insert);
    for batch in rows.chunks(per_insert) {
        let short;
        let sql = if batch.len() == per_insert {
            &full
        } else {
            short = insert_sql(into, width, batch.len());
            &short
        };
        let mut query = sqlx::query(sql);
        for cell in batch.iter().flatten() {
            query = match *cell {
                Cell::Int(v) => query.bind(v),
                Cell::Text(v) => query.bind(v),
            };
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Inserts `rows` into `into` (`table (columns)`) through SQLite's C API, as d42sync stores
/// its child rows ([`d42sync::store::direct`]): one single-row INSERT prepared once, each row
/// bound, stepped and reset. Bound through sqlx, even in multi-row statements, millions of rows
/// of a few small values cost several times SQLite's own work.
async fn insert_rows_directly(
    tx: &mut sqlx::SqliteConnection,
    into: &str,
    rows: &[Vec<Cell<'_>>],
) -> anyhow::Result<()> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    d42sync::store::direct::insert(tx, &insert_sql(into, width, 1), rows, |cells, row| {
        for cell in cells {
            match *cell {
                Cell::Int(v) => row.int(v),
                Cell::Text(v) => row.text(v),
            };
        }
    })
    .await?;
    Ok(())
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

/// `INSERT INTO {into} VALUES (?, ..), ...`: `rows` rows of `width` values.
fn insert_sql(into: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    format!("INSERT INTO {into} VALUES {}", vec![row; rows].join(", "))
}

/// Every record of the endpoint as (device id, raw JSON), paging sequentially until a short page.
async fn download(o: &Options) -> anyhow::Result<Vec<Record>> {
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
        let received = parsed.items.len();
        records.extend(parsed.items.into_iter().map(|item| Record {
            device_id: item.device_id,
            raw: item.raw.to_string(),
            children: o.children.then_some(item.columns.children),
        }));
        if received < PAGE_SIZE {
            return Ok(records);
        }
    }
    bail!("more than a million pages")
}
