//! Benchmark floor: the time to only download every devices page, nothing else.
//!
//! Gets a token, reads the first page for `total_count`, then fetches the remaining pages
//! (`limit`/`offset`, no overlap) `--concurrency` at a time over keep-alive connections and
//! discards each body chunk by chunk as it arrives. No JSON parsing, no database. It is a lower
//! bound on what any pull of the same endpoint can take; `bench/run.py` times the whole process.
//!
//! ```text
//! cargo run --release --example floor_download -- --base-url http://127.0.0.1:PORT \
//!     [--endpoint /api/1.0/devices/all/] [--page-size 1000] [--concurrency 8]
//! ```
//!
//! Prints one JSON line: `{"pages": .., "bytes": .., "seconds": ..}` (seconds from the token
//! request to the last byte).

use anyhow::{Context, bail};
use futures::StreamExt;
use std::time::Instant;

/// The simulator's default API client credentials (`d42sim simulate`).
const CLIENT_KEY: &str = "sim-client-key";
const SECRET_KEY: &str = "sim-secret-key";

/// Command-line options, all with the benchmark's defaults.
struct Options {
    /// `http://127.0.0.1:PORT` of the simulator.
    base_url: String,
    /// The devices list pulled.
    endpoint: String,
    /// Items asked per page.
    page_size: u64,
    /// Pages in flight at once (the product's `devices.concurrency` in the benchmark).
    concurrency: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        base_url: String::new(),
        endpoint: "/api/1.0/devices/all/".into(),
        page_size: 1000,
        concurrency: 8,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--base-url" => o.base_url = value,
            "--endpoint" => o.endpoint = value,
            "--page-size" => o.page_size = value.parse().context("--page-size")?,
            "--concurrency" => o.concurrency = value.parse().context("--concurrency")?,
            other => bail!("unknown option {other}"),
        }
    }
    if o.base_url.is_empty() {
        bail!("--base-url is required");
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let started = Instant::now();
    let http = reqwest::Client::builder().no_proxy().build()?;
    let token = token(&http, &o.base_url).await?;
    let url = format!("{}{}", o.base_url, o.endpoint);

    let first = http
        .get(&url)
        .bearer_auth(&token)
        .query(&[("limit", o.page_size), ("offset", 0)])
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let head: serde_json::Value = serde_json::from_slice(&first).context("first page")?;
    let total = head["total_count"].as_u64().context("no total_count")?;
    let step = head["limit"].as_u64().unwrap_or(o.page_size).max(1);
    let mut bytes = first.len() as u64;
    drop(head);

    let offsets: Vec<u64> = (1..).map(|k| k * step).take_while(|o| *o < total).collect();
    let pages = 1 + offsets.len() as u64;
    let mut fetches = futures::stream::iter(offsets)
        .map(|offset| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            async move {
                let mut response = http
                    .get(&url)
                    .bearer_auth(&token)
                    .query(&[("limit", step), ("offset", offset)])
                    .send()
                    .await?
                    .error_for_status()?;
                let mut n = 0u64;
                while let Some(chunk) = response.chunk().await? {
                    n += chunk.len() as u64;
                }
                anyhow::Ok(n)
            }
        })
        .buffer_unordered(o.concurrency);
    while let Some(n) = fetches.next().await {
        bytes += n?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(r#"{{"pages": {pages}, "bytes": {bytes}, "seconds": {seconds:.3}}}"#);
    Ok(())
}

/// `POST /tauth/1.0/token/` with Basic auth; the bearer token.
async fn token(http: &reqwest::Client, base_url: &str) -> anyhow::Result<String> {
    let body = http
        .post(format!("{base_url}/tauth/1.0/token/"))
        .basic_auth(CLIENT_KEY, Some(SECRET_KEY))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    // Parsed by hand: d42sync does not enable reqwest's `json` feature.
    let grant: serde_json::Value = serde_json::from_slice(&body).context("token answer")?;
    grant["token"]
        .as_str()
        .map(str::to_string)
        .context("no token in the answer")
}
