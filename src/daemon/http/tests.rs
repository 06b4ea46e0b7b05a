use super::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// An endpoint on a free port whose health follows `healthy`, and its base URL.
async fn start(
    metrics: Metrics,
    healthy: Arc<AtomicBool>,
    stop: &CancellationToken,
) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let health: Health = Arc::new(move || match healthy.load(Ordering::SeqCst) {
        true => Ok(()),
        false => Err("main loop stalled for 12s".into()),
    });
    let task = spawn(listener, Endpoint { metrics, health }, stop.clone());
    (base, task)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn metrics_answers_the_openmetrics_exposition_of_the_daemons_handle() {
    let metrics = Metrics::default();
    metrics.set_devices_stored(7);
    let stop = CancellationToken::new();
    let (base, _task) = start(metrics, Arc::new(AtomicBool::new(true)), &stop).await;

    let answer = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();

    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert_eq!(content_type, metrics::CONTENT_TYPE);
    let text = answer.text().await.unwrap();
    assert!(text.contains("\nd42sync_devices_stored 7\n"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    stop.cancel();
}

#[tokio::test]
async fn healthz_answers_ok_while_healthy_and_503_with_the_reason_when_not() {
    let healthy = Arc::new(AtomicBool::new(true));
    let stop = CancellationToken::new();
    let (base, _task) = start(Metrics::default(), healthy.clone(), &stop).await;
    let url = format!("{base}/healthz");

    let ok = client().get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "ok\n");

    healthy.store(false, Ordering::SeqCst);
    let sick = client().get(&url).send().await.unwrap();

    assert_eq!(sick.status(), 503);
    assert_eq!(
        sick.text().await.unwrap(),
        "unhealthy: main loop stalled for 12s\n"
    );
    stop.cancel();
}

#[tokio::test]
async fn an_unknown_path_is_404_and_any_method_but_get_is_405() {
    let stop = CancellationToken::new();
    let (base, _task) = start(Metrics::default(), Arc::new(AtomicBool::new(true)), &stop).await;
    let http = client();

    let cases = [
        (Method::GET, "/nowhere", 404, "not found\n"),
        (Method::POST, "/metrics", 405, "method not allowed\n"),
        (Method::DELETE, "/healthz", 405, "method not allowed\n"),
        (Method::POST, "/nowhere", 405, "method not allowed\n"),
    ];
    for (method, path, status, body) in cases {
        let answer = http
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();

        assert_eq!(answer.status(), status, "{method} {path}");
        assert_eq!(answer.text().await.unwrap(), body, "{method} {path}");
    }
    stop.cancel();
}

#[tokio::test]
async fn the_endpoint_stops_when_the_daemon_stops() {
    let stop = CancellationToken::new();
    let (base, task) = start(Metrics::default(), Arc::new(AtomicBool::new(true)), &stop).await;
    let url = format!("{base}/healthz");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);

    stop.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the server ends on stop")
        .unwrap();

    let refused = client().get(&url).send().await;
    assert!(refused.is_err(), "{refused:?}");
}
