//! The error every bad setting is reported with: the key, the environment variable when the
//! value came from there, and what is wrong.

use std::fmt;

/// A setting that is missing or invalid, with the key that names it.
#[derive(Debug)]
pub struct ConfigError {
    /// The dotted key (`device42.base_url`), or the file for errors in the file as a whole.
    pub key: String,
    /// The environment variable that set the key (`D42SYNC_DEVICES__PAGE_SIZE`), when one did:
    /// that is where an operator has to look.
    pub variable: Option<String>,
    /// What is wrong, lowercase, without the value when the value is a secret.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            variable: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variable {
            Some(variable) => write!(f, "{} (from {variable}): {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}
