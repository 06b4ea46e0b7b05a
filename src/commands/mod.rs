//! What each subcommand does: glue over config, store, client, jobs and daemon.
//!
//! Exit codes: 0 success, 1 the job failed, 2 usage error (clap), 78 configuration error with the
//! key named on stderr.
//!
//! Only commands that call Device42 need the secret key: `run`, `check-config --connect`, and
//! `pull`/`push` when no daemon runs. With a daemon running, `pull` and `push` ask it over its
//! control socket to run the job now and print its result, so an administrator needs neither
//! the secret nor the lock.

/// Prints a line on stdout, like `println!`, except that a reader that went away (`| head -1`)
/// ends the output quietly instead of the process with a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::commands::print_out(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub mod status;

use crate::cli::{Cli, Command, EnqueueArgs};
use crate::config::{self, ConfigError, SecretKey, Settings};
use crate::d42::Client;
use crate::daemon::control::{self, AskError, Reply, Request, RunSummary};
use crate::daemon::{self, lock::InstanceLock};
use crate::jobs::{Outcome, pull, push_buildings};
use crate::store::{Db, queue};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// `EX_CONFIG` from sysexits.h: systemd's `RestartPreventExitStatus=78` keys on it.
pub const EXIT_CONFIG: u8 = 78;

/// A failure already logged where it happened: only the exit code is left to give.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Reported(pub String);

/// Writes `text` to stdout; a closed pipe is not an error worth a panic.
pub fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Runs the parsed command line and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("d42sync: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    // Jobs still winding down (a POST past the stop grace) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<ConfigError>() {
                eprintln!("d42sync: config error: {c}");
                return ExitCode::from(EXIT_CONFIG);
            }
            if e.downcast_ref::<Reported>().is_none() {
                tracing::error!(error = %format!("{e:#}"), "command failed");
                eprintln!("d42sync: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Every command reads the config first.
async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let settings = config::load(&cli.config)?;
    crate::telemetry::init(settings.log.format, &settings.log.level);
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    with_settings(cli.command, cli.config, settings).await
}

async fn with_settings(
    command: Command,
    config_path: std::path::PathBuf,
    settings: Settings,
) -> anyhow::Result<()> {
    match command {
        Command::Run => {
            settings.device42.secret_key.get()?;
            daemon::run(config_path, settings).await
        }
        Command::Pull {
            allow_mass_delete,
            full,
        } => {
            let options = pull::PullOptions {
                allow_mass_delete,
                full,
            };
            pull(&settings, options).await
        }
        Command::Push => push(&settings).await,
        Command::EnqueueBuilding(args) => enqueue(&settings, args).await,
        Command::Requeue(args) => requeue(&settings, args.id).await,
        Command::Status { json } => status::run(&settings, json).await,
        Command::CheckConfig { connect } => check_config(&settings, connect).await,
        Command::Migrate => {
            let db = Db::open_unmigrated(&settings.database.path).await?;
            db.migrate().await?;
            say!("migrations applied to {}", settings.database.path.display());
            Ok(())
        }
    }
}

/// What `pull` and `push` need when no daemon runs: the lock, a migrated and recovered
/// database, a client, and a stop token wired to SIGTERM/SIGINT.
struct OneShot {
    _lock: InstanceLock,
    db: Db,
    client: Client,
    stop: CancellationToken,
}

async fn one_shot(settings: &Settings) -> anyhow::Result<OneShot> {
    settings.device42.secret_key.get()?;
    // Nothing serves a one-shot command's metrics; the client and the job record into their own.
    // Built first: TLS material that cannot be used exits 78 before the database is touched.
    let client = daemon::client(&settings.device42, crate::metrics::Metrics::default())?;
    let stop = CancellationToken::new();
    let _reloads = daemon::signals::install(stop.clone())?;
    let lock = InstanceLock::acquire(&settings.database.path)?;
    let db = Db::open(&settings.database.path).await?;
    daemon::recover(&db).await?;
    Ok(OneShot {
        _lock: lock,
        db,
        client,
        stop,
    })
}

/// Asks the daemon that owns the database to run `request` now; `None` when no daemon runs.
async fn ask_daemon(settings: &Settings, request: Request) -> anyhow::Result<Option<RunSummary>> {
    let socket = control::socket_path(&settings.database.path);
    match control::ask(&socket, &request, None).await {
        Ok(Reply::Run(summary)) => Ok(Some(summary)),
        Ok(Reply::Refused { message }) => anyhow::bail!("the daemon refused: {message}"),
        Ok(other) => anyhow::bail!("the daemon answered out of turn: {other:?}"),
        Err(AskError::NoDaemon) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Prints a run's result on stdout (stderr for a failure) and turns it into the exit status.
fn report(job: &str, summary: &RunSummary, by_daemon: bool) -> anyhow::Result<()> {
    let c = &summary.counts;
    let counts = match job {
        "pull" => format!(
            "{} devices, {} added, {} changed, {} removed",
            c.items, c.added, c.changed, c.removed
        ),
        _ => format!("{} rows, {} sent, {} failed", c.items, c.sent, c.failed),
    };
    let run = summary
        .run_id
        .map(|id| format!(" (run {id})"))
        .unwrap_or_default();
    let by = if by_daemon { " by the daemon" } else { "" };
    let secs = summary.duration_ms as f64 / 1000.0;
    match summary.outcome {
        Outcome::Ok => {
            say!("{job} ok{by}{run}: {counts} in {secs:.1}s");
            Ok(())
        }
        Outcome::Idle => {
            say!("{job}: nothing to do");
            Ok(())
        }
        Outcome::Held => Err(Reported(format!(
            "{job} held{by}{run} by the mass-deletion guard: {counts}; apply it with `d42sync pull --allow-mass-delete`"
        ))
        .into()),
        Outcome::Paused => Err(Reported(format!(
            "{job} not run{by}: Device42 is unreachable and calls are paused until the next probe"
        ))
        .into()),
        Outcome::Failed => Err(Reported(format!(
            "{job} failed{by}{run}: {}",
            summary.error.as_deref().unwrap_or("see the log")
        ))
        .into()),
    }
}

async fn pull(settings: &Settings, options: pull::PullOptions) -> anyhow::Result<()> {
    if let Some(summary) = ask_daemon(settings, Request::Pull(options)).await? {
        return report("pull", &summary, true);
    }
    let run = one_shot(settings).await?;
    let result = pull::run(&run.db, &run.client, &settings.devices, options, &run.stop).await;
    run.db.close().await;
    report("pull", &RunSummary::of(&result), false)
}

async fn push(settings: &Settings) -> anyhow::Result<()> {
    if let Some(summary) = ask_daemon(settings, Request::Push).await? {
        return report("push", &summary, true);
    }
    let run = one_shot(settings).await?;
    let result = push_buildings::run(&run.db, &run.client, &settings.buildings, &run.stop).await;
    run.db.close().await;
    report("push", &RunSummary::of(&result), false)
}

async fn enqueue(settings: &Settings, args: EnqueueArgs) -> anyhow::Result<()> {
    let building = building_fields(args);
    let db = Db::open(&settings.database.path).await?;
    let id = queue::enqueue(&db, &building).await?;
    db.close().await;
    say!("queued building {:?} as row {id}", building.name);
    Ok(())
}

/// The queue row `enqueue-building` asks for; [`crate::cli`] has checked its values.
fn building_fields(args: EnqueueArgs) -> queue::BuildingFields {
    queue::BuildingFields {
        name: args.name,
        address: args.address,
        contact_name: args.contact_name,
        contact_phone: args.contact_phone,
        notes: args.notes,
        latitude: args.latitude,
        longitude: args.longitude,
        groups: args.groups,
    }
}

async fn requeue(settings: &Settings, id: Option<i64>) -> anyhow::Result<()> {
    let db = Db::open(&settings.database.path).await?;
    let n = queue::requeue(&db, id).await?;
    db.close().await;
    match (id, n) {
        (Some(id), 0) => {
            anyhow::bail!("row {id} is not dead (or does not exist); nothing requeued")
        }
        _ => {
            say!("requeued {n} row(s)");
            Ok(())
        }
    }
}

async fn check_config(settings: &Settings, connect: bool) -> anyhow::Result<()> {
    // Without `--connect` nothing is sent, so the secret is reported, not required: an
    // administrator's shell need not be able to read it (the unit hands it to the daemon).
    if let (
        SecretKey::Unavailable {
            key,
            message,
            out_of_reach: true,
        },
        false,
    ) = (&settings.device42.secret_key, connect)
    {
        say!("config ok; secret key not checked: {key}: {message}");
        say!("(`run`, `check-config --connect`, and `pull`/`push` without a daemon need it)");
        return Ok(());
    }
    settings.device42.secret_key.get()?;
    let client = daemon::client(&settings.device42, crate::metrics::Metrics::default())?;
    say!("config ok");
    if connect {
        client
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("cannot obtain a token: {e}"))?;
        say!(
            "connected to {}: token obtained",
            settings.device42.base_url
        );
    }
    Ok(())
}
