use super::*;

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

#[test]
fn two_handles_in_one_process_do_not_share_counts() {
    let first = Metrics::default();
    let second = Metrics::default();

    first.run_finished("pull_devices", "ok", 1.5);
    first.http_request(Some(200));
    second.http_request(Some(503));

    let (a, b) = (first.render(), second.render());
    let ok = "d42sync_runs_total{job=\"pull_devices\",outcome=\"ok\"}";
    assert_eq!(sample(&a, ok), Some(1.0), "{a}");
    assert_eq!(sample(&b, ok), None, "{b}");
    assert_eq!(
        sample(&a, "d42sync_http_requests_total{class=\"2xx\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&b, "d42sync_http_requests_total{class=\"2xx\"}"),
        None
    );
    assert_eq!(
        sample(&b, "d42sync_http_requests_total{class=\"5xx\"}"),
        Some(1.0)
    );
}

#[test]
fn clones_of_a_handle_record_into_the_same_series() {
    let metrics = Metrics::default();
    let clone = metrics.clone();

    clone.tick_skipped("push_buildings");
    clone.set_devices_stored(42);

    let text = metrics.render();
    assert_eq!(
        sample(&text, "d42sync_skipped_ticks_total{job=\"push_buildings\"}"),
        Some(1.0)
    );
    assert_eq!(metrics.devices_stored(), 42);
}

#[test]
fn the_exposition_is_openmetrics_text_with_every_family_and_an_eof() {
    let metrics = Metrics::default();
    metrics.http_request(None);
    metrics.token_obtained(0);
    metrics.run_finished("pull_devices", "ok", 1.0);
    metrics.tick_skipped("pull_devices");
    metrics.set_queue_depth(&BTreeMap::new());
    metrics.set_device42_up(true);
    metrics.breaker_opened();
    metrics.call_refused();
    metrics.call_refused();

    let text = metrics.render();

    assert!(text.ends_with("# EOF\n"), "{text}");
    for family in [
        "d42sync_http_requests counter",
        "d42sync_token_refreshes counter",
        "d42sync_token_expiry_seconds gauge",
        "d42sync_runs counter",
        "d42sync_run_duration_seconds histogram",
        "d42sync_last_success_timestamp_seconds gauge",
        "d42sync_skipped_ticks counter",
        "d42sync_devices_stored gauge",
        "d42sync_device42_up gauge",
        "d42sync_breaker_opened counter",
        "d42sync_calls_refused counter",
        "d42sync_queue_depth gauge",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family}\n")),
            "{family} missing: {text}"
        );
    }
    assert_eq!(sample(&text, "d42sync_device42_up"), Some(1.0));
    assert_eq!(sample(&text, "d42sync_breaker_opened_total"), Some(1.0));
    assert_eq!(sample(&text, "d42sync_calls_refused_total"), Some(2.0));
}

#[test]
fn finished_runs_add_to_the_duration_sum_and_count_and_an_ok_run_sets_last_success() {
    let metrics = Metrics::default();
    let before = chrono::Utc::now().timestamp();

    metrics.run_finished("push_buildings", "ok", 0.25);
    metrics.run_finished("push_buildings", "failed", 2.0);
    metrics.run_counted("push_buildings", "paused");

    let text = metrics.render();
    let job = "{job=\"push_buildings\"}";
    assert_eq!(
        sample(&text, &format!("d42sync_run_duration_seconds_sum{job}")),
        Some(2.25)
    );
    assert_eq!(
        sample(&text, &format!("d42sync_run_duration_seconds_count{job}")),
        Some(2.0)
    );
    let paused = "d42sync_runs_total{job=\"push_buildings\",outcome=\"paused\"}";
    assert_eq!(sample(&text, paused), Some(1.0));
    let last = metrics.last_success("push_buildings").expect("a success");
    assert!(last >= before, "{last} < {before}");
    assert_eq!(metrics.last_success("pull_devices"), None);
}

#[test]
fn the_token_expiry_gauge_shows_the_time_left_and_zero_before_any_token() {
    let metrics = Metrics::default();
    let expiry = "d42sync_token_expiry_seconds";
    assert_eq!(sample(&metrics.render(), expiry), Some(0.0));

    metrics.token_obtained(chrono::Utc::now().timestamp() + 600);

    let text = metrics.render();
    let left = sample(&text, expiry).expect("a value");
    assert!((590.0..=600.0).contains(&left), "{left}");
    assert_eq!(sample(&text, "d42sync_token_refreshes_total"), Some(1.0));
}

#[test]
fn the_queue_depth_names_every_status_with_zero_for_those_without_rows() {
    let metrics = Metrics::default();

    metrics.set_queue_depth(&BTreeMap::from([("pending".to_string(), 3)]));

    let text = metrics.render();
    assert_eq!(
        sample(&text, "d42sync_queue_depth{status=\"pending\"}"),
        Some(3.0)
    );
    for status in ["sending", "done", "dead"] {
        let series = format!("d42sync_queue_depth{{status=\"{status}\"}}");
        assert_eq!(sample(&text, &series), Some(0.0), "{series}");
    }
}

#[test]
fn restored_totals_start_the_run_counters_and_the_last_success_times() {
    let metrics = Metrics::default();
    let total = |status: &str, runs, last: Option<&str>| RunTotal {
        job: "pull_devices".into(),
        status: status.into(),
        runs,
        last_finished: last.map(str::to_string),
    };

    metrics.restore(&[
        total("failed", 2, Some("2026-01-02T03:04:06.000Z")),
        total("ok", 5, Some("2026-01-02T03:04:05.000Z")),
    ]);
    metrics.run_counted("pull_devices", "ok");

    let text = metrics.render();
    let ok = "d42sync_runs_total{job=\"pull_devices\",outcome=\"ok\"}";
    let failed = "d42sync_runs_total{job=\"pull_devices\",outcome=\"failed\"}";
    assert_eq!(sample(&text, ok), Some(6.0), "{text}");
    assert_eq!(sample(&text, failed), Some(2.0));
    let at = crate::time::parse_iso("2026-01-02T03:04:05.000Z").unwrap();
    assert_eq!(metrics.last_success("pull_devices"), Some(at.timestamp()));
}
