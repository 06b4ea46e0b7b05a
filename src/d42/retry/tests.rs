//! The retry rules on paused time: backoff, `Retry-After`, the breaker's open, probe and close,
//! and the retry WARN's rate limit.

use super::*;
use crate::d42::retry::breaker::Gate;
use crate::metrics::Metrics;
use crate::telemetry::capture::{Captured, capture};
use std::sync::atomic::AtomicUsize;
use tokio::time::Instant as TokioInstant;

const ENDPOINT: &str = "GET /api/2.0/devices/ (offset 0)";
const FAMILY: &str = "GET /api/2.0/devices/";
const PROBE_EVERY: Duration = Duration::from_secs(60);

fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base: Duration::from_secs(1),
        max: Duration::from_secs(4),
        max_retry_after: Duration::from_secs(30),
    }
}

fn retrier(max_retries: u32, breaker_failures: u32) -> Retrier {
    Retrier::new(
        policy(max_retries),
        Arc::new(Breaker::new(
            breaker_failures,
            PROBE_EVERY,
            Metrics::default(),
        )),
    )
}

fn unavailable(retry_after: Option<Duration>) -> Error {
    Error::Unavailable {
        endpoint: ENDPOINT.into(),
        status: 503,
        content_type: "text/html".into(),
        excerpt: "down".into(),
        retry_after,
    }
}

/// An attempt that fails with `failure` the first `failures` times, then succeeds; it counts
/// the attempts made.
struct Flaky {
    failures: usize,
    failure: Error,
    attempts: AtomicUsize,
}

impl Flaky {
    fn new(failures: usize, failure: Error) -> Self {
        Self {
            failures,
            failure,
            attempts: AtomicUsize::new(0),
        }
    }

    async fn attempt(&self) -> Result<&'static str, Error> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            Err(self.failure.clone())
        } else {
            Ok("page")
        }
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_steps_growing_to_the_maximum_plus_jitter() {
    // Failures before success, and the sum of the planned steps: 1, 2, 4, then 4 s each.
    for (failures, planned_s) in [(3, 7), (6, 19)] {
        let retrier = retrier(failures as u32, 0);
        let flaky = Flaky::new(failures, unavailable(None));
        let started = TokioInstant::now();

        let outcome = retrier.retried(ENDPOINT, FAMILY, || flaky.attempt()).await;

        assert_eq!(outcome.unwrap(), "page");
        assert_eq!(flaky.attempts(), failures + 1);
        // Jitter adds up to as much again to each step.
        let waited = started.elapsed();
        let planned = Duration::from_secs(planned_s);
        assert!(
            waited >= planned && waited < 2 * planned,
            "{failures}: {waited:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_that_is_not_retryable_is_returned_after_one_attempt() {
    let retrier = retrier(3, 0);
    let rejected = Error::Rejected {
        endpoint: ENDPOINT.into(),
        status: 400,
        message: "bad query".into(),
    };
    let flaky = Flaky::new(1, rejected);
    let started = TokioInstant::now();

    let e = retrier
        .retried(ENDPOINT, FAMILY, || flaky.attempt())
        .await
        .unwrap_err();

    assert!(matches!(e, Error::Rejected { status: 400, .. }), "{e}");
    assert_eq!(flaky.attempts(), 1);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn retry_after_replaces_the_planned_step_up_to_max_retry_after() {
    // What the server asked for, and the wait: as asked (no jitter), or the cap.
    let cap = policy(3).max_retry_after;
    for (asked, waited) in [
        (Duration::from_secs(3), Duration::from_secs(3)),
        (Duration::from_secs(3600), cap),
    ] {
        let retrier = retrier(3, 0);
        let flaky = Flaky::new(1, unavailable(Some(asked)));
        let started = TokioInstant::now();

        retrier
            .retried(ENDPOINT, FAMILY, || flaky.attempt())
            .await
            .unwrap();

        assert_eq!(started.elapsed(), waited, "Retry-After {asked:?}");
        assert_eq!(flaky.attempts(), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn retries_exhausted_end_with_the_last_failure() {
    let retrier = retrier(2, 0);
    let flaky = Flaky::new(usize::MAX, unavailable(None));

    let e = retrier
        .retried(ENDPOINT, FAMILY, || flaky.attempt())
        .await
        .unwrap_err();

    assert!(matches!(e, Error::Unavailable { status: 503, .. }), "{e}");
    assert_eq!(flaky.attempts(), 3, "the first try and two retries");
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_stops_retries_probes_once_per_interval_and_closes_on_an_answer() {
    let retrier = retrier(10, 3);
    let down = Flaky::new(usize::MAX, unavailable(None));

    // Open: three failed calls in a row, each after its retries.
    for _ in 0..3 {
        let e = retrier
            .retried(ENDPOINT, FAMILY, || down.attempt())
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Unavailable { .. }),
            "the cause, not the breaker: {e}"
        );
    }
    let sent_while_closed = down.attempts();
    assert_eq!(
        retrier.breaker().gate(now()),
        Gate::Open {
            retry_in: PROBE_EVERY
        }
    );

    // Open: a call is refused without an attempt.
    let e = retrier
        .retried(ENDPOINT, FAMILY, || down.attempt())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Paused { .. }), "{e}");
    assert_eq!(down.attempts(), sent_while_closed);

    // Half-open: after the interval one probe goes, once, and its failure keeps it open.
    tokio::time::advance(PROBE_EVERY).await;
    assert_eq!(retrier.breaker().gate(now()), Gate::Probe);
    retrier
        .retried(ENDPOINT, FAMILY, || down.attempt())
        .await
        .unwrap_err();
    assert_eq!(
        down.attempts(),
        sent_while_closed + 1,
        "a probe is one attempt"
    );
    assert_eq!(
        retrier.breaker().gate(now()),
        Gate::Open {
            retry_in: PROBE_EVERY
        }
    );

    // Closed: the next probe is answered.
    tokio::time::advance(PROBE_EVERY).await;
    let up = Flaky::new(0, unavailable(None));
    let outcome = retrier.retried(ENDPOINT, FAMILY, || up.attempt()).await;
    assert_eq!(outcome.unwrap(), "page");
    assert_eq!(retrier.breaker().gate(now()), Gate::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_call_not_sent_once_is_refused_while_the_breaker_is_open() {
    let retrier = retrier(0, 1);
    let sent = AtomicUsize::new(0);
    let post = || async {
        sent.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>(unavailable(None))
    };
    retrier.once(|| ENDPOINT.into(), post()).await.unwrap_err();

    let e = retrier.once(|| ENDPOINT.into(), post()).await.unwrap_err();

    assert!(
        matches!(e, Error::Paused { retry_in, .. } if retry_in == PROBE_EVERY),
        "{e}"
    );
    assert_eq!(sent.load(Ordering::SeqCst), 1);
}

/// The retry WARN lines in `captured`.
fn warnings(captured: &Captured) -> usize {
    captured
        .text()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("retrying"))
        .count()
}

#[tokio::test(start_paused = true)]
async fn retries_of_one_endpoint_warn_once_per_quiet_period() {
    let (captured, _logging) = capture(tracing::Level::WARN);
    let retrier = retrier(2, 0);
    let pull = || async {
        let flaky = Flaky::new(2, unavailable(None));
        retrier
            .retried(ENDPOINT, FAMILY, || flaky.attempt())
            .await
            .unwrap();
    };

    pull().await;
    pull().await;
    let within_the_period = warnings(&captured);
    tokio::time::advance(log::QUIET_FOR).await;
    pull().await;

    assert_eq!(within_the_period, 1, "four retries, one WARN");
    assert_eq!(warnings(&captured), 2, "a new period, a new WARN");
}
