//! Typed, validated settings: the only code that reads the config file and the environment.
//!
//! Settings come from a TOML file and `D42SYNC_*` environment overrides (sections joined by `__`,
//! e.g. `D42SYNC_DEVICE42__BASE_URL`), merged by the `config` crate and read into one serde
//! structure, [`Settings`], whose sections refuse keys they do not have. Every value is checked
//! as it is read; a bad one is reported as a [`ConfigError`] naming its key (and the variable,
//! when the environment set it), which the binary turns into exit code 78.
//!
//! Layout: `settings` (the shape and its defaults), `fields` (how one value is read and
//! checked), `strict` (the deserializer that keeps file values' types), `checks` (files the
//! settings name, rules between keys), `secret` (the secret key), `schedule` (cron), `error`.

mod checks;
mod error;
mod fields;
mod schedule;
mod secret;
mod settings;
mod strict;

pub use error::ConfigError;
pub use schedule::Schedule;
pub use secret::SecretKey;
pub use settings::{
    BuildingsSettings, DEFAULT_INCLUDE_COLS, DatabaseSettings, Device42Settings, DevicesSettings,
    LogFormat, LogSettings, MetricsSettings, Settings,
};

use config::{Config, Environment, File, FileFormat};
use std::collections::HashMap;
use std::path::Path;

/// The environment variable that names the config file; it is not a setting itself.
pub const CONFIG_PATH_ENV: &str = "D42SYNC_CONFIG";

/// Where the config file is looked for when neither `--config` nor `$D42SYNC_CONFIG` says.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/d42sync/d42sync.toml";

/// The prefix of the variables that override settings.
const PREFIX: &str = "D42SYNC_";

/// `D42SYNC_*` variables that are not settings: the config path and the crash tests' failpoint.
const NOT_SETTINGS: &[&str] = &[CONFIG_PATH_ENV, "D42SYNC_FAILPOINT"];

/// The variable that would carry the secret key, which is never taken from the environment.
const SECRET_KEY_VARIABLE: &str = "D42SYNC_DEVICE42__SECRET_KEY";

/// Loads settings from `path` and the process environment.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    load_with_env(path, &env)
}

/// Loads settings from `path` and the given environment (tests pass their own).
pub fn load_with_env(path: &Path, env: &HashMap<String, String>) -> Result<Settings, ConfigError> {
    let file_key = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            &file_key,
            format!("cannot read config file: {}", secret::io_reason(&e)),
        )
    })?;
    let overrides: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(PREFIX) && !NOT_SETTINGS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if overrides.contains_key(SECRET_KEY_VARIABLE) {
        let error = ConfigError::new(
            "device42.secret_key",
            "is not taken from the environment; use secret_key_file or systemd credentials",
        );
        return Err(from_variable(error, SECRET_KEY_VARIABLE));
    }
    let variables: HashMap<String, String> = overrides
        .keys()
        .map(|var| (key_of(var), var.clone()))
        .collect();
    let cfg = Config::builder()
        .add_source(File::from_str(&text, FileFormat::Toml))
        .add_source(
            Environment::with_prefix("D42SYNC")
                .prefix_separator("_")
                .separator("__")
                .source(Some(overrides.into_iter().collect())),
        )
        .build()
        .map_err(|e| ConfigError::new(&file_key, e.to_string().to_lowercase()))?;
    strict::from_tree::<Settings>(cfg.cache)
        .map_err(|e| {
            ConfigError::new(
                e.key.filter(|k| !k.is_empty()).unwrap_or(file_key),
                e.message,
            )
        })
        .and_then(|settings| settings.checked(env))
        .map_err(|e| match variables.get(&e.key) {
            Some(var) => from_variable(e, var),
            None => e,
        })
}

/// The dotted key a `D42SYNC_*` variable sets, as the `config` crate reads it:
/// `D42SYNC_DEVICES__PAGE_SIZE` sets `devices.page_size`.
fn key_of(variable: &str) -> String {
    variable[PREFIX.len()..].to_lowercase().replace("__", ".")
}

/// `error`, said to come from `variable`.
fn from_variable(mut error: ConfigError, variable: &str) -> ConfigError {
    error.variable = Some(variable.to_string());
    error
}

#[cfg(test)]
mod tests;
