//! Tracing setup: JSON lines (the default, for the journal) or text, on stderr. A SIGHUP reload
//! applies a new `log.level` and `log.format` to the running daemon ([`apply`]).
//!
//! Stdout is left to commands that print results (`status`, `demo`); every log line goes to
//! stderr, which systemd sends to the journal.

use crate::config::LogFormat;
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, reload};

/// The TLS and HTTP libraries: their lines (bridged from the `log` crate, with the paths of
/// their sources) say what the client's own errors already say, once per connection. Kept out
/// unless the filter names them. A target covers the crates whose names it begins
/// (`rustls` also `rustls_native_certs`, `hyper` also `hyper_util`).
const SILENT: &[&str] = &["rustls", "tokio_rustls", "webpki", "hyper", "reqwest", "h2"];

type Base = tracing_subscriber::Registry;
type Filtered = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Base>, Base>;
type Output = Box<dyn Layer<Filtered> + Send + Sync>;

/// What a SIGHUP reload changes: the filter and the output format.
struct Handles {
    filter: reload::Handle<EnvFilter, Base>,
    output: reload::Handle<Output, Filtered>,
}

/// Set by the first [`init`]; [`apply`] goes through it.
static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Installs the global subscriber. Calling it twice keeps the first one (tests call it freely).
pub fn init(format: LogFormat, level: &str) {
    let (filter, filter_handle) = reload::Layer::new(filter(level));
    let (output, output_handle) = reload::Layer::new(output(format));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok();
    if installed {
        let _ = HANDLES.set(Handles {
            filter: filter_handle,
            output: output_handle,
        });
    }
}

/// Applies a reloaded `log.format` and `log.level` to the running subscriber.
pub fn apply(format: LogFormat, level: &str) -> Result<(), String> {
    let handles = HANDLES.get().ok_or("logging is not initialised")?;
    handles
        .filter
        .reload(filter(level))
        .map_err(|e| e.to_string())?;
    handles
        .output
        .reload(output(format))
        .map_err(|e| e.to_string())
}

/// The formatting layer: JSON lines with the run's span fields, or text for people, coloured
/// only when stderr is a terminal.
fn output(format: LogFormat) -> Output {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Json => Box::new(
            layer
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false),
        ),
        LogFormat::Text => Box::new(layer.with_ansi(std::io::stderr().is_terminal())),
    }
}

/// The filter for `log.level`, with each of [`SILENT`] off unless the setting names it.
fn filter(level: &str) -> EnvFilter {
    let mut filter = EnvFilter::builder()
        .parse(level)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    for target in SILENT.iter().filter(|target| !level.contains(*target)) {
        if let Ok(directive) = format!("{target}=off").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
pub(crate) mod capture;

#[cfg(test)]
mod tests {
    use super::*;

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
