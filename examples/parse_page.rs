//! Times the parse of one devices page, as a pull parses each page it fetches: typed columns and
//! child rows of every record, each record's text kept as sent.
//!
//! Starts the simulator in-process, renders its first `--devices` records the way a pull asks
//! for them (v1 full records by default), puts them in one page body as the simulator sends it,
//! and parses that body `--runs` times. For reference it also times one scan of the same body
//! that reads nothing (`serde::de::IgnoredAny`): the least any JSON parse of it costs.
//!
//! ```text
//! cargo run --release --example parse_page -- [--devices 1000] [--runs 100] \
//!     [--endpoint /api/1.0/devices/all/]
//! ```
//!
//! Prints one JSON line: `{"records": .., "bytes": .., "ms_per_page": .., "scan_ms_per_page": ..}`.

use anyhow::{Context, bail};
use std::time::Instant;

/// Command-line options, with the defaults of the figures in `bench/findings.md`.
struct Options {
    devices: usize,
    runs: u32,
    endpoint: String,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        devices: 1000,
        runs: 100,
        endpoint: "/api/1.0/devices/all/".to_string(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--devices" => options.devices = value.parse().context("--devices")?,
            "--runs" => options.runs = value.parse().context("--runs")?,
            "--endpoint" => options.endpoint = value,
            other => bail!("unknown option {other}"),
        }
    }
    if options.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(options)
}

/// The milliseconds per run of `parse` over `runs` runs.
fn timed(runs: u32, mut parse: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..runs {
        parse();
    }
    started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let cfg = d42sim::SimConfig {
        devices: options.devices,
        ..Default::default()
    };
    let sim = d42sim::Simulator::start(cfg, "127.0.0.1:0".parse()?).await?;
    // The default columns of a v2 pull, which carry the child lists; v1 records have them all.
    let include_cols: Vec<String> = d42sync::config::DevicesSettings::default().include_cols;
    let records: Vec<String> = sim
        .rendered_devices(&options.endpoint, &include_cols)
        .into_iter()
        .map(|(_, raw)| raw)
        .collect();
    let body = format!(
        r#"{{"total_count": {n}, "offset": 0, "limit": {n}, "Devices": [{}]}}"#,
        records.join(", "),
        n = records.len()
    );
    let page = d42sync::d42::models::parse_device_page(body.as_bytes())
        .map_err(|cause| anyhow::anyhow!("the page does not parse: {cause}"))?;
    let parsed = page.items.len();
    let ms = timed(options.runs, || {
        let page = d42sync::d42::models::parse_device_page(body.as_bytes());
        std::hint::black_box(page.map(|p| p.items.len()).unwrap_or_default());
    });
    let scan_ms = timed(options.runs, || {
        let scan = serde_json::from_str::<serde::de::IgnoredAny>(&body);
        std::hint::black_box(scan.is_ok());
    });
    println!(
        r#"{{"records": {parsed}, "bytes": {}, "ms_per_page": {ms:.2}, "scan_ms_per_page": {scan_ms:.2}}}"#,
        body.len()
    );
    Ok(())
}
