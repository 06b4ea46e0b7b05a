//! What is checked after the values are read: the files the settings name (the secret key, the
//! CA, the database's directory) and the rules between keys.

use super::secret::{self, io_reason};
use super::{ConfigError, Settings};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

impl Settings {
    /// Reads the files the settings name and checks the rules between keys; `env` tells where
    /// systemd put its credentials.
    pub(super) fn checked(mut self, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let device42 = &mut self.device42;
        device42.secret_key = secret::find(
            device42.secret_key_file.as_deref(),
            device42.inline_secret_key.as_ref(),
            env,
            &mut self.warnings,
        )?;
        if let Some(path) = &device42.ca_file {
            device42.ca_pem = Some(read_ca_file(path)?);
        }
        if device42.insecure_skip_tls_verify {
            self.warnings.push("device42.insecure_skip_tls_verify is true: the appliance's certificate is not checked".into());
        }
        check_database_directory(&self.database.path)?;
        if self.buildings.retry_max < self.buildings.retry_base {
            return Err(ConfigError::new(
                "buildings.retry_max",
                "must not be shorter than buildings.retry_base",
            ));
        }
        Ok(self)
    }
}

/// The database's directory must exist and be writable: SQLite creates the file and its WAL
/// beside it.
fn check_database_directory(path: &Path) -> Result<(), ConfigError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(ConfigError::new(
            "database.path",
            format!("directory {} does not exist", dir.display()),
        ));
    }
    if !access_writable(&dir) {
        return Err(ConfigError::new(
            "database.path",
            format!("directory {} is not writable", dir.display()),
        ));
    }
    Ok(())
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let pem = std::fs::read(path).map_err(|e| {
        ConfigError::new(
            "device42.ca_file",
            format!("cannot read {}: {}", path.display(), io_reason(&e)),
        )
    })?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .filter(|c| c.is_ok())
        .count();
    if count == 0 {
        return Err(ConfigError::new(
            "device42.ca_file",
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(pem)
}

fn access_writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}
