//! The control socket: how `pull`, `push` and `status` run from a shell reach the running daemon.
//!
//! The daemon listens on a Unix socket beside the database, `<database>.sock`, mode 0660: the
//! service user and its group (the administrators) may connect, nobody else. It needs no secret
//! and no network port. A request is one JSON line; the answer is one JSON line, sent when the
//! requested run has ended. A requested run queues behind a run of the same job that is going
//! on and never runs beside it. The daemon removes the socket when it stops; one left by a
//! crash is replaced at the next start, which holds the single-instance lock first.

use crate::jobs::pull::PullOptions;
use crate::jobs::{Outcome, RunReport};
use crate::store::runs::RunCounts;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

/// The longest request line read; requests are a few dozen bytes.
const MAX_REQUEST: u64 = 4096;

/// How long `status` waits for the daemon to answer before calling it unresponsive.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// The socket of the daemon that owns the database at `db_path`: beside the database file
/// itself, symlinks resolved as for the lock, so every name of the database finds it.
pub fn socket_path(db_path: &Path) -> PathBuf {
    let file = super::lock::database_file(db_path).unwrap_or_else(|_| db_path.to_path_buf());
    let mut name = file.into_os_string();
    name.push(".sock");
    PathBuf::from(name)
}

/// What a shell asks the daemon.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// A device pull now, with these options (on the wire beside the tag:
    /// `{"request":"pull","allow_mass_delete":false,"full":false}`).
    Pull(PullOptions),
    /// A pass over the building queue now.
    Push,
    /// Who is running.
    Status,
}

/// What the daemon answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The requested run ended.
    Run(RunSummary),
    /// The daemon's identity.
    Daemon(DaemonInfo),
    /// The request could not be served (the daemon is stopping, an unknown request).
    Refused {
        /// Why.
        message: String,
    },
}

/// A finished run as the daemon reports it to a shell.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunSummary {
    /// How the run ended, as [`RunReport::outcome`].
    pub outcome: Outcome,
    /// The `sync_runs` id, when the run was recorded.
    pub run_id: Option<i64>,
    /// The counts recorded.
    pub counts: RunCounts,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
    /// Why it failed, for `failed`.
    pub error: Option<String>,
}

impl RunSummary {
    /// The summary of a job's result.
    pub fn of(result: &anyhow::Result<RunReport>) -> Self {
        match result {
            Ok(r) => Self {
                outcome: r.outcome,
                run_id: r.run_id,
                counts: r.counts,
                duration_ms: r.duration.as_millis() as u64,
                error: None,
            },
            Err(e) => Self {
                outcome: Outcome::Failed,
                run_id: None,
                counts: RunCounts::default(),
                duration_ms: 0,
                error: Some(format!("{e:#}")),
            },
        }
    }
}

/// The running daemon, for `status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DaemonInfo {
    /// Its process id.
    pub pid: u32,
    /// When it started (UTC, ISO-8601).
    pub started_at: String,
    /// Its version.
    pub version: String,
}

/// Serves requests: what the daemon does with each.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request; may take as long as the run it asks for.
    fn handle(&self, request: Request) -> impl Future<Output = Reply> + Send;
}

/// Binds the socket at `path` (replacing a stale one) and serves until `stop`. The caller must
/// hold the single-instance lock, so a socket already there is a dead daemon's.
pub fn serve<H: Handler>(
    path: &Path,
    handler: Arc<H>,
    stop: CancellationToken,
) -> std::io::Result<Listening> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    let task = tokio::spawn(accept_loop(listener, handler, stop));
    Ok(Listening {
        path: path.to_path_buf(),
        task,
    })
}

/// The socket being served; dropping it stops accepting and removes the socket.
pub struct Listening {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop<H: Handler>(listener: UnixListener, handler: Arc<H>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, handler.as_ref()).await {
                tracing::debug!(error = %e, "control socket: connection ended early");
            }
        });
    }
}

async fn answer<H: Handler>(stream: UnixStream, handler: &H) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let reply = match serde_json::from_str::<Request>(line.trim()) {
        Ok(request) => {
            tracing::info!(request = ?request, "control request");
            handler.handle(request).await
        }
        Err(e) => Reply::Refused {
            message: format!("bad request: {e}"),
        },
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// No daemon listens there.
    #[error("no daemon is running")]
    NoDaemon,
    /// The socket exists but may not be used by this user.
    #[error("cannot reach the daemon at {path}: permission denied (join the service's group)")]
    Denied {
        /// The socket.
        path: PathBuf,
    },
    /// The connection broke or the answer made no sense.
    #[error("the daemon did not answer: {0}")]
    Broken(String),
}

/// Sends `request` to the daemon at `path` and waits for its answer (as long as the run takes,
/// or `timeout` when given).
pub async fn ask(
    path: &Path,
    request: &Request,
    timeout: Option<Duration>,
) -> Result<Reply, AskError> {
    let exchange = async {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    AskError::NoDaemon
                }
                std::io::ErrorKind::PermissionDenied => AskError::Denied {
                    path: path.to_path_buf(),
                },
                _ => AskError::Broken(e.to_string()),
            })?;
        let broken = |e: std::io::Error| AskError::Broken(e.to_string());
        let (read, mut write) = stream.into_split();
        let mut out = serde_json::to_vec(request).map_err(|e| AskError::Broken(e.to_string()))?;
        out.push(b'\n');
        write.write_all(&out).await.map_err(broken)?;
        let mut line = String::new();
        BufReader::new(read)
            .read_line(&mut line)
            .await
            .map_err(broken)?;
        if line.trim().is_empty() {
            return Err(AskError::Broken(
                "the connection closed before an answer (the daemon stopped?)".into(),
            ));
        }
        serde_json::from_str(line.trim()).map_err(|e| AskError::Broken(e.to_string()))
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, exchange).await.unwrap_or_else(|_| {
            Err(AskError::Broken(format!(
                "no answer within {}s",
                t.as_secs()
            )))
        }),
        None => exchange.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Handler for Echo {
        async fn handle(&self, request: Request) -> Reply {
            match request {
                Request::Status => Reply::Daemon(DaemonInfo {
                    pid: 7,
                    started_at: "2026-12-03T00:00:00.000Z".into(),
                    version: "x".into(),
                }),
                other => Reply::Refused {
                    message: format!("{other:?}"),
                },
            }
        }
    }

    #[test]
    fn a_pull_request_of_an_older_client_without_full_is_not_full() {
        let line = r#"{"request":"pull","allow_mass_delete":true}"#;

        let request: Request = serde_json::from_str(line).unwrap();

        assert_eq!(
            request,
            Request::Pull(PullOptions {
                allow_mass_delete: true,
                full: false
            })
        );
    }

    #[test]
    fn every_name_of_the_database_leads_to_one_socket() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("inventory.db");
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();

        assert_eq!(socket_path(&link), socket_path(&db));
        assert!(socket_path(&db).ends_with("inventory.db.sock"));
    }

    #[tokio::test]
    async fn a_request_is_answered_and_the_socket_goes_with_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(&dir.path().join("inventory.db"));
        std::fs::write(&path, "stale").unwrap();
        let stop = CancellationToken::new();

        let listening = serve(&path, Arc::new(Echo), stop.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let reply = ask(&path, &Request::Status, Some(STATUS_TIMEOUT))
            .await
            .unwrap();
        let pull = ask(
            &path,
            &Request::Pull(PullOptions {
                allow_mass_delete: true,
                full: true,
            }),
            None,
        )
        .await
        .unwrap();
        drop(listening);

        assert_eq!(mode, 0o660);
        assert!(
            matches!(reply, Reply::Daemon(DaemonInfo { pid: 7, .. })),
            "{reply:?}"
        );
        assert_eq!(
            pull,
            Reply::Refused {
                message: "Pull(PullOptions { allow_mass_delete: true, full: true })".into()
            }
        );
        assert!(!path.exists());
        assert!(matches!(
            ask(&path, &Request::Status, None).await,
            Err(AskError::NoDaemon)
        ));
    }
}
