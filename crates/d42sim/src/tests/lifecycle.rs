//! Starting, stopping, and the bounded request log.

use crate::SimConfig;
use crate::http::Request;
use crate::journal::{Journal, MAX_RECORDED};

use super::start;

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = start(SimConfig::default()).await;
    let addr = sim.addr();

    sim.shutdown().await;

    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn the_request_log_keeps_only_the_most_recent_requests() {
    let mut journal = Journal::default();
    let request = |n: usize| Request {
        method: "GET".into(),
        path: "/api/2.0/devices/".into(),
        query: format!("offset={n}"),
        headers: Vec::new(),
        body: Vec::new(),
    };

    let seqs: Vec<u64> = (0..MAX_RECORDED + 5)
        .map(|n| journal.arrived(&request(n)))
        .collect();
    journal.answered(seqs[3], "/api/2.0/devices/", 500, false);
    journal.answered(*seqs.last().unwrap(), "/api/2.0/devices/", 200, false);

    let kept = journal.requests();
    assert_eq!(kept.len(), MAX_RECORDED);
    assert_eq!(kept[0].query, "offset=5");
    assert_eq!(kept.last().unwrap().status, 200);
    assert!(
        kept.iter().all(|r| r.status != 500),
        "an evicted request's answer is dropped"
    );
}
