//! The secret key: where it comes from (systemd's credential, `secret_key_file`, or inline), and
//! the checks on a file that holds it. A secret that cannot be read does not fail loading: only
//! the commands that call Device42 need it, and they ask through [`SecretKey::get`].

use super::ConfigError;
use secrecy::SecretString;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The key errors about the secret file are reported under.
const FILE_KEY: &str = "device42.secret_key_file";

/// The secret key as loading found it. Commands that never call Device42 (`status`, `migrate`,
/// `requeue`, `enqueue-building`, `check-config` without `--connect`) work without it, so an
/// administrator's shell needs no access to it; the others ask with [`SecretKey::get`], which
/// turns a missing or refused secret into the config error it is.
#[derive(Debug, Clone)]
pub enum SecretKey {
    /// Read and accepted.
    Loaded(SecretString),
    /// Not available to this process, and why.
    Unavailable {
        /// The key to name in the error.
        key: String,
        /// Why, as [`ConfigError::message`] says it.
        message: String,
        /// Not configured for, or not readable by, this process (an administrator's shell); the
        /// service may still have it. A file that is missing, empty or too open is not this.
        out_of_reach: bool,
    },
}

impl SecretKey {
    /// The secret, or the config error that kept it from being read.
    pub fn get(&self) -> Result<&SecretString, ConfigError> {
        match self {
            SecretKey::Loaded(s) => Ok(s),
            SecretKey::Unavailable { key, message, .. } => {
                Err(ConfigError::new(key.clone(), message.clone()))
            }
        }
    }

    /// What the settings hold until [`find`] has looked.
    pub(super) fn unread() -> Self {
        Self::unavailable(ConfigError::new(FILE_KEY, "not read yet"), false)
    }

    fn unavailable(e: ConfigError, out_of_reach: bool) -> Self {
        SecretKey::Unavailable {
            key: e.key,
            message: e.message,
            out_of_reach,
        }
    }
}

/// Finds the secret key: systemd's credential when the unit handed one over, else `file`, else
/// `inline` (warned). Setting both of the latter is an error at once; anything that keeps the
/// secret from being read is kept for [`SecretKey::get`].
pub(super) fn find(
    file: Option<&Path>,
    inline: Option<&SecretString>,
    env: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<SecretKey, ConfigError> {
    if file.is_some() && inline.is_some() {
        return Err(ConfigError::new(
            "device42.secret_key",
            "set either secret_key or secret_key_file, not both",
        ));
    }
    let credential = env
        .get("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(dir).join("secret_key"))
        .filter(|p| p.exists());
    let read = match (credential, file, inline) {
        (Some(path), _, _) => read_secret_file(&path, false),
        (None, Some(path), _) => read_secret_file(path, true),
        (None, None, Some(secret)) => {
            warnings.push("device42.secret_key is set inline in the config file; prefer secret_key_file or systemd credentials".into());
            Ok(secret.clone())
        }
        (None, None, None) => Err(SecretError::Denied(ConfigError::new(
            FILE_KEY,
            "no secret key: set secret_key_file, or run under systemd with LoadCredential=secret_key:...",
        ))),
    };
    Ok(match read {
        Ok(secret) => SecretKey::Loaded(secret),
        Err(SecretError::Invalid(e)) => SecretKey::unavailable(e, false),
        Err(SecretError::Denied(e)) => SecretKey::unavailable(e, true),
    })
}

/// Why a secret file was not read.
enum SecretError {
    /// Not configured for, or not readable by, this process (the service may have it).
    Denied(ConfigError),
    /// Missing, empty, or too open.
    Invalid(ConfigError),
}

/// Reads a secret file, refusing one that others than its owner and group can read, that its
/// group can write, or that someone other than root or this user owns (unless systemd provided
/// it). Group read is allowed so that one file, `root:d42sync` mode 0640, serves the unit and an
/// administrator in the service's group alike.
fn read_secret_file(path: &Path, check_mode: bool) -> Result<SecretString, SecretError> {
    let io_error = |e: std::io::Error| {
        let error = ConfigError::new(
            FILE_KEY,
            format!("cannot read {}: {}", path.display(), io_reason(&e)),
        );
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => SecretError::Denied(error),
            _ => SecretError::Invalid(error),
        }
    };
    let invalid = |message: String| SecretError::Invalid(ConfigError::new(FILE_KEY, message));
    let meta = std::fs::metadata(path).map_err(io_error)?;
    if check_mode {
        let mode = meta.mode() & 0o777;
        if mode & 0o027 != 0 {
            return Err(invalid(format!(
                "{} is accessible by others or writable by its group (mode {mode:04o}); chmod 0600 or 0640 it",
                path.display()
            )));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != euid && meta.uid() != 0 {
            return Err(invalid(format!(
                "{} is owned by uid {}, neither root nor the service user (uid {euid})",
                path.display(),
                meta.uid()
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(io_error)?;
    let secret = text.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(invalid(format!("{} is empty", path.display())));
    }
    Ok(SecretString::from(secret))
}

/// Why a file could not be read, in words for an operator.
pub(super) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}
