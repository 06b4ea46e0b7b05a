//! Tracing setup: JSON lines (the default, for the journal) or text, on stderr.
//!
//! Stdout is left to commands that print results (`status`, `demo`); every log line goes to
//! stderr, which systemd sends to the journal.

use crate::config::LogFormat;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The scheduler crate logs its own bookkeeping at INFO ("Uninited", "Job creator created" at
/// start and on every reload): kept to warnings unless the filter names it.
const QUIET: &str = "tokio_cron_scheduler";

/// Installs the global subscriber. Calling it twice keeps the first one (tests call it freely).
pub fn init(format: LogFormat, level: &str) {
    let filter = filter(level);
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

/// The filter for `log.level`, with [`QUIET`] at `warn` unless the setting names it or is
/// quieter already.
fn filter(level: &str) -> EnvFilter {
    let filter = EnvFilter::builder()
        .parse(level)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let quiet_already = filter
        .max_level_hint()
        .is_some_and(|max| max <= LevelFilter::WARN);
    if level.contains(QUIET) || quiet_already {
        return filter;
    }
    match format!("{QUIET}=warn").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_crate_is_kept_to_warnings_unless_named() {
        let shown = |level: &str| filter(level).to_string();
        assert!(
            shown("info").contains("tokio_cron_scheduler=warn"),
            "{}",
            shown("info")
        );
        assert!(shown("debug").contains("tokio_cron_scheduler=warn"));
        assert!(!shown("tokio_cron_scheduler=debug").contains("=warn"));
        // A quieter setting is not made louder for it.
        assert_eq!(shown("error"), "error");
        assert_eq!(filter("info").max_level_hint(), Some(LevelFilter::INFO));
    }
}
