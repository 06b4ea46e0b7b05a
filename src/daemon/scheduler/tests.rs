use super::*;
use crate::telemetry::capture::capture;
use std::sync::atomic::AtomicUsize;
use tokio::sync::Semaphore;

/// A job whose runs count themselves and then wait for a permit from `gate`.
fn gated_job(runs: Arc<AtomicUsize>, gate: Arc<Semaphore>) -> JobFn {
    Arc::new(move |_stop| {
        let (runs, gate) = (runs.clone(), gate.clone());
        Box::pin(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            gate.acquire().await.unwrap().forget();
        })
    })
}

/// A schedule that does not come round during a test.
fn yearly() -> Schedule {
    Schedule::parse("0 0 0 1 1 *").unwrap()
}

async fn until(what: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !what() {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition not reached in 5 s");
}

#[tokio::test]
async fn a_job_replaced_during_a_run_runs_again_once_that_run_ends() {
    let scheduler = Scheduler::new(CancellationToken::new(), Metrics::default())
        .await
        .unwrap();
    let (runs, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
    let job = gated_job(runs.clone(), gate.clone());
    scheduler.add("j", &yearly(), job.clone()).await.unwrap();
    scheduler.trigger("j").await;
    until(|| runs.load(Ordering::SeqCst) == 1).await;

    scheduler.add("j", &yearly(), job).await.unwrap(); // a reload mid-run
    scheduler.trigger("j").await; // skipped: the first run still goes on
    gate.add_permits(1);
    until(|| !scheduler_running(&scheduler, "j")).await;
    scheduler.trigger("j").await;

    until(|| runs.load(Ordering::SeqCst) == 2).await;
    gate.add_permits(1);
    assert!(scheduler.shutdown(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_requested_run_waits_for_the_running_one_and_returns_its_result() {
    let scheduler = Scheduler::new(CancellationToken::new(), Metrics::default())
        .await
        .unwrap();
    let (runs, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Semaphore::new(0)));
    scheduler
        .add("j", &yearly(), gated_job(runs.clone(), gate.clone()))
        .await
        .unwrap();
    scheduler.trigger("j").await;
    until(|| runs.load(Ordering::SeqCst) == 1).await;

    let seen = runs.clone();
    let requested = scheduler.run_now("j", async move { seen.load(Ordering::SeqCst) });
    let requested = tokio::time::timeout(Duration::from_millis(200), requested).await;
    assert!(
        requested.is_err(),
        "the requested run started beside the running one"
    );

    gate.add_permits(1);
    let seen = runs.clone();
    let result = scheduler.run_now("j", async move { seen.load(Ordering::SeqCst) * 10 });
    assert_eq!(result.await, Some(10));
    assert_eq!(scheduler.run_now("nope", async {}).await, None);
    assert!(scheduler.shutdown(Duration::from_secs(1)).await);
}

fn scheduler_running(scheduler: &Scheduler, name: &str) -> bool {
    scheduler
        .jobs
        .try_lock()
        .map(|jobs| {
            jobs.iter()
                .any(|(n, r, _)| n == name && r.state.running.load(Ordering::Acquire))
        })
        .unwrap_or(true)
}

/// A job that does nothing.
fn idle_job() -> JobFn {
    Arc::new(|_stop| Box::pin(async {}))
}

/// The next tick tokio-cron-scheduler holds for job `name`.
async fn next_tick(scheduler: &Scheduler, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let id = scheduler.jobs.lock().await.iter().find(|j| j.0 == name)?.2;
    scheduler.inner.clone().next_tick_for_job(id).await.ok()?
}

#[tokio::test]
async fn a_job_ticks_on_the_schedule_config_parsed_five_fields_included() {
    let scheduler = Scheduler::new(CancellationToken::new(), Metrics::default())
        .await
        .unwrap();
    // 04:30 UTC daily: five fields, seconds prefixed by config.
    let schedule = Schedule::parse("30 4 * * *").unwrap();

    scheduler.add("j", &schedule, idle_job()).await.unwrap();

    // Whole seconds: tokio-cron-scheduler keeps its ticks in seconds.
    let expected = schedule.next_after(chrono::Utc::now()).unwrap().timestamp();
    let ticks_at = next_tick(&scheduler, "j").await.map(|t| t.timestamp());
    assert_eq!(ticks_at, Some(expected));
    assert_eq!(schedule.cron().pattern.to_string(), "0 30 4 * * *");
    assert!(scheduler.shutdown(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_ticker_that_does_not_tick_shows_as_overdue() {
    let scheduler = Scheduler::new(CancellationToken::new(), Metrics::default())
        .await
        .unwrap();
    let every_second = Schedule::parse("* * * * * *").unwrap();
    scheduler.add("j", &every_second, idle_job()).await.unwrap();

    // Not started: nothing moves the job's next tick on.
    let started = std::time::Instant::now();
    while scheduler.overdue().await < Duration::from_secs(1) {
        assert!(started.elapsed() < Duration::from_secs(5), "never overdue");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scheduler.start().await.unwrap();
    while scheduler.overdue().await >= Duration::from_secs(1) {
        assert!(started.elapsed() < Duration::from_secs(10), "still overdue");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert!(scheduler.shutdown(Duration::from_secs(1)).await);
}

#[tokio::test(flavor = "current_thread")]
async fn starting_and_replacing_jobs_logs_nothing_at_info() {
    let (captured, _logging) = capture(tracing::Level::INFO);

    let scheduler = Scheduler::new(CancellationToken::new(), Metrics::default())
        .await
        .unwrap();
    scheduler.add("j", &yearly(), idle_job()).await.unwrap();
    scheduler.start().await.unwrap();
    scheduler.add("j", &yearly(), idle_job()).await.unwrap(); // a reload
    assert!(scheduler.shutdown(Duration::from_secs(1)).await);

    assert_eq!(captured.text(), "");
}
