//! The ops assets in `ops/`: the Prometheus alert rules pass `promtool check rules` and their own
//! `promtool test rules` cases, and the rules and the Grafana dashboard name only metrics the
//! daemon exports (the families [`d42sync::metrics::Metrics`] renders), which Prometheus reads.
//!
//! promtool comes with Debian's `prometheus` package; `.ci/run` installs it. Without it the
//! promtool test prints why it checked nothing, and fails when `CI` is set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn ops_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ops")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The metric names the daemon exports: from each `# TYPE` line of its exposition, the names its
/// samples carry in OpenMetrics.
fn exported_metrics() -> BTreeSet<String> {
    let exposition = exposition_with_every_family();
    let names: BTreeSet<String> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .flat_map(|(family, kind)| sample_names(family, kind))
        .collect();
    assert!(names.len() >= 10, "too few families parsed: {names:?}");
    names
}

/// The exposition of a daemon that has recorded into every family (a labelled family without a
/// sample is not rendered).
fn exposition_with_every_family() -> String {
    let metrics = d42sync::metrics::Metrics::default();
    metrics.http_request(Some(200));
    metrics.token_obtained(0);
    metrics.run_finished("pull_devices", "ok", 1.5);
    metrics.tick_skipped("pull_devices");
    metrics.set_queue_depth(&Default::default());
    metrics.render()
}

/// The names of a family's samples: a counter's end in `_total`, a histogram has `_bucket`,
/// `_sum` and `_count`, any other family's carry its name.
fn sample_names(family: &str, kind: &str) -> Vec<String> {
    let suffixes: &[&str] = match kind {
        "counter" => &["_total"],
        "histogram" => &["_bucket", "_sum", "_count"],
        _ => &[""],
    };
    suffixes.iter().map(|s| format!("{family}{s}")).collect()
}

/// Every `d42sync_...` metric name written in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("d42sync_") {
        let starts_word = !rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if starts_word {
            names.insert(word.clone());
        }
        rest = &rest[at + word.len()..];
    }
    names
}

/// Label matchers on the daemon's own `job` label spelled as `job=`: a default scrape renames
/// that label to `exported_job`, so such a query matches nothing.
fn unrenamed_job_matchers(text: &str) -> Vec<String> {
    ["pull_devices", "push_buildings"]
        .iter()
        .flat_map(|job| {
            text.match_indices(&format!("job=\"{job}\""))
                .filter(|(at, _)| !text[..*at].ends_with("exported_"))
                .map(|(_, m)| m.to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `expr` strings of every panel target, and the template variables' queries.
fn dashboard_queries(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(q)) => found.push(q.clone()),
                    _ => dashboard_queries(v, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, found)),
        _ => {}
    }
}

#[test]
fn the_dashboard_is_json_whose_queries_name_only_metrics_the_daemon_exports() {
    let exported = exported_metrics();
    let path = ops_dir().join("grafana/d42sync.dashboard.json");

    let dashboard: serde_json::Value = serde_json::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);

    let panels = dashboard["panels"].as_array().map_or(0, Vec::len);
    assert!(panels >= 4, "the dashboard has {panels} panels");
    assert!(
        queries.len() >= panels,
        "{} queries for {panels} panels",
        queries.len()
    );
    for query in &queries {
        let names = metric_names(query);
        assert!(
            !names.is_empty(),
            "a query names no d42sync metric: {query}"
        );
        let unknown: Vec<_> = names.difference(&exported).collect();
        assert!(unknown.is_empty(), "not exported: {unknown:?} in {query}");
        let wrong = unrenamed_job_matchers(query);
        assert!(
            wrong.is_empty(),
            "{wrong:?} should be exported_job in {query}"
        );
    }
}

#[test]
fn the_alert_rules_and_their_tests_name_only_metrics_the_daemon_exports() {
    let exported = exported_metrics();
    for file in ["d42sync.rules.yml", "d42sync.rules.test.yml"] {
        let text = read(&ops_dir().join("prometheus").join(file));

        let names = metric_names(&text);

        assert!(!names.is_empty(), "{file} names no d42sync metric");
        let unknown: Vec<_> = names.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the daemon does not export: {unknown:?}"
        );
        let wrong = unrenamed_job_matchers(&text);
        assert!(wrong.is_empty(), "{file}: {wrong:?} should be exported_job");
    }
}

/// The `promtool` on `PATH`, if any.
fn promtool() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    })
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(promtool) = promtool() else {
        let why = "promtool is not installed (Debian: apt-get install prometheus): \
                   ops/prometheus/d42sync.rules.yml was not checked";
        assert!(
            std::env::var_os("CI").is_none(),
            "{why}; CI must install it"
        );
        eprintln!("SKIPPED: {why}");
        return;
    };
    let dir = ops_dir().join("prometheus");

    for args in [
        ["check", "rules", "d42sync.rules.yml"],
        ["test", "rules", "d42sync.rules.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));

        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Prometheus's own OpenMetrics parser reads every sample of the exposition: promtool's backfill
/// from OpenMetrics, which wants a timestamp on each sample, so one is appended to each.
/// (`promtool check metrics` knows only the older text format, where a counter's HELP and TYPE
/// name its samples, and so flags every OpenMetrics counter.)
#[test]
fn prometheus_reads_every_sample_of_the_exposition() {
    let Some(promtool) = promtool() else {
        let why = "promtool is not installed (Debian: apt-get install prometheus): \
                   the /metrics exposition was not checked";
        assert!(
            std::env::var_os("CI").is_none(),
            "{why}; CI must install it"
        );
        eprintln!("SKIPPED: {why}");
        return;
    };
    let exposition = exposition_with_every_family();
    let samples = exposition.lines().filter(|l| !l.starts_with('#')).count();
    let stamped: String = exposition
        .lines()
        .map(|l| match l.starts_with('#') {
            true => format!("{l}\n"),
            false => format!("{l} 1700000000\n"),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("metrics.om");
    std::fs::write(&input, stamped).unwrap();

    let out = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir.path().join("blocks"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));

    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool:\n{report}{}\n{exposition}",
        String::from_utf8_lossy(&out.stderr)
    );
    let series = report
        .lines()
        .nth(1)
        .and_then(|row| row.split_whitespace().nth(6))
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(series, Some(samples), "{report}\n{exposition}");
}
