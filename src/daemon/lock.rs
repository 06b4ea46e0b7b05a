//! The single-instance lock: an exclusive `flock` on `<database>.lock`, holding the owner's pid.
//!
//! The kernel releases the lock when the process dies, however it dies, so a crash never leaves
//! a stale lock behind. `run`, `pull` and `push` take it; readers do not need it.
//!
//! The lock sits next to the database file itself, with every symlink on the way resolved (as
//! SQLite does for its `-wal` and `-shm`), so two daemons that reach one database by different
//! names (a symlinked file or directory) meet at the same lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Symlinks followed before giving up, as the kernel's own limit (`MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// The lock file's mode before the umask: group-writable like the database beside it.
const LOCK_FILE_MODE: u32 = 0o660;

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    /// The lock file, for messages.
    pub path: PathBuf,
}

/// Another process holds the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another d42sync owns the database.
    #[error("another d42sync (pid {pid}) holds {path}")]
    Held {
        /// The owner's pid as it wrote it, or "unknown".
        pid: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened.
    #[error("cannot open lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl InstanceLock {
    /// Takes the lock for the database at `db_path`, failing at once if it is held.
    pub fn acquire(db_path: &Path) -> Result<Self, LockError> {
        let real = database_file(db_path).map_err(|source| LockError::Io {
            path: db_path.to_path_buf(),
            source,
        })?;
        let mut name = real.into_os_string();
        name.push(".lock");
        let path = PathBuf::from(name);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(LOCK_FILE_MODE)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let pid = if pid.is_empty() {
                    "unknown".to_string()
                } else {
                    pid.to_string()
                };
                return Err(LockError::Held { pid, path });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file, path })
    }
}

/// The database file `db_path` names, with every symlink resolved: in its directories, and in
/// the file name itself, even when the link points at a database not created yet. What belongs
/// to one database (its lock, its control socket) is named after this.
pub fn database_file(db_path: &Path) -> std::io::Result<PathBuf> {
    let mut path = std::path::absolute(db_path)?;
    for _ in 0..MAX_SYMLINKS {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(path);
        };
        let dir = std::fs::canonicalize(dir)?;
        let joined = dir.join(name);
        match std::fs::read_link(&joined) {
            // A relative target is relative to the link's directory; an absolute one replaces it.
            Ok(target) => path = dir.join(target),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::NotFound
                ) =>
            {
                return Ok(joined);
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("inventory.db");
        let first = InstanceLock::acquire(&db).unwrap();
        let err = InstanceLock::acquire(&db).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("inventory.db.lock"), "{msg}");
        drop(first);
        InstanceLock::acquire(&db).unwrap();
    }

    #[test]
    fn a_symlink_to_the_database_or_its_directory_leads_to_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let db = state.join("inventory.db");
        std::fs::write(&db, b"").unwrap();
        std::os::unix::fs::symlink(&db, dir.path().join("link.db")).unwrap();
        std::os::unix::fs::symlink(&state, dir.path().join("state-link")).unwrap();
        let _first = InstanceLock::acquire(&db).unwrap();

        for other in [
            dir.path().join("link.db"),
            dir.path().join("state-link/inventory.db"),
            state.join("./inventory.db"),
        ] {
            let err = InstanceLock::acquire(&other).unwrap_err();
            assert!(
                matches!(err, LockError::Held { .. }),
                "{}: {err}",
                other.display()
            );
        }
    }

    #[test]
    fn a_symlink_to_a_database_not_created_yet_leads_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("inventory.db");
        std::os::unix::fs::symlink("inventory.db", dir.path().join("link.db")).unwrap();
        let _first = InstanceLock::acquire(&dir.path().join("link.db")).unwrap();

        let err = InstanceLock::acquire(&db).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
    }
}
