//! The single-instance lock: an exclusive `flock` on `<database>.lock`, holding the owner's pid.
//!
//! The kernel releases the lock when the process dies, however it dies, so a crash never leaves
//! a stale lock behind. `run`, `pull` and `push` take it; readers do not need it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

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
        let mut name = db_path.as_os_str().to_owned();
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
}
