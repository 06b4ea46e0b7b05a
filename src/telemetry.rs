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

/// The TLS and HTTP libraries: their lines (bridged from the `log` crate, with the paths of
/// their sources) say what the client's own errors already say, once per connection. Kept out
/// unless the filter names them. A target covers the crates whose names it begins
/// (`rustls` also `rustls_native_certs`, `hyper` also `hyper_util`).
const SILENT: &[&str] = &["rustls", "tokio_rustls", "webpki", "hyper", "reqwest", "h2"];

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
/// quieter already, and each of [`SILENT`] off unless the setting names it.
fn filter(level: &str) -> EnvFilter {
    let mut filter = EnvFilter::builder()
        .parse(level)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let quiet_already = filter
        .max_level_hint()
        .is_some_and(|max| max <= LevelFilter::WARN);
    let mut caps: Vec<String> = SILENT
        .iter()
        .filter(|target| !level.contains(*target))
        .map(|target| format!("{target}=off"))
        .collect();
    if !(level.contains(QUIET) || quiet_already) {
        caps.push(format!("{QUIET}=warn"));
    }
    for cap in caps {
        if let Ok(directive) = cap.parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
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
        assert!(!shown("error").contains("tokio_cron_scheduler"));
        assert_eq!(filter("info").max_level_hint(), Some(LevelFilter::INFO));
    }

    #[test]
    fn the_tls_and_http_libraries_are_kept_out_unless_named() {
        for level in ["info", "debug", "error"] {
            let shown = filter(level).to_string();
            for target in SILENT {
                assert!(shown.contains(&format!("{target}=off")), "{level}: {shown}");
            }
        }
        let named = filter("info,rustls=debug").to_string();
        let directives: Vec<&str> = named.split(',').collect();
        assert!(directives.contains(&"rustls=debug"), "{named}");
        assert!(!directives.contains(&"rustls=off"), "{named}");
        assert!(directives.contains(&"hyper=off"), "{named}");
    }
}
