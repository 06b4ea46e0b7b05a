//! Tracing setup: JSON lines (the default, for the journal) or text, on stderr.
//!
//! Stdout is left to commands that print results (`status`, `demo`); every log line goes to
//! stderr, which systemd sends to the journal.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Calling it twice keeps the first one (tests call it freely).
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::builder()
        .parse(level)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
