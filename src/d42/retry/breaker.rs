//! [`Breaker`]: stops calling an appliance that keeps failing, and says so once.
//!
//! Every call to Device42 (a GET with its retries, a building POST, a token request) asks the
//! breaker first and reports how it ended. After `threshold` calls in a row fail in a way that
//! points at the appliance (no connection, a timeout, a reset, 408, 429 or a 5xx), the breaker
//! opens: one WARN, and calls are refused without touching the network. Once per
//! `probe_interval` one call is let through as a probe; while it is out every other call is
//! still refused. A probe that fails keeps the breaker open for another interval, quietly. Any
//! call that reaches the appliance and gets an answer that is not an outage (a 2xx, but also a
//! 4xx or a malformed page) closes it: one INFO with the outage's length.
//!
//! Time is passed in, so the rules are tested without sleeping.

use crate::metrics::Metrics;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a job may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The appliance answers: call freely.
    Closed,
    /// The appliance was failing and a probe is due: one call may go.
    Probe,
    /// The appliance was failing: no call before `retry_in` has passed.
    Open {
        /// Time until the next probe.
        retry_in: Duration,
    },
}

/// The breaker of one client (one appliance).
#[derive(Debug)]
pub struct Breaker {
    /// Failed calls in a row that open the breaker; 0 never opens it.
    threshold: u32,
    /// Time between probes while open.
    probe_interval: Duration,
    state: Mutex<State>,
    /// Where the breaker reports Device42 up or down, its openings and the calls it refused.
    metrics: Metrics,
}

#[derive(Debug, Default)]
struct State {
    /// Calls failed in a row since the last answer.
    failures: u32,
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    since: Instant,
    next_probe: Instant,
    /// A probe is out: refuse every other call until it ends.
    probing: bool,
    /// Probes let through so far.
    probes: u32,
}

/// Permission for one call. Report its end with [`Permit::finish`]; a permit dropped unfinished
/// (the call was cancelled) frees the probe slot for the next call.
#[must_use = "report how the call ended with Permit::finish"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    finished: bool,
}

impl Permit<'_> {
    /// Records how the call ended: `outage` when it failed in a way that points at the
    /// appliance being down or overloaded.
    pub fn finish(mut self, outage: Option<&dyn std::fmt::Display>, now: Instant) {
        self.finished = true;
        match outage {
            None => self.breaker.answered(now),
            Some(error) => self.breaker.failed(self.probe, error, now),
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.finished {
            let mut state = self.breaker.lock();
            if let Some(open) = state.open.as_mut() {
                open.probing = false;
            }
        }
    }
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failed calls in a row (0: never) and then
    /// probes once per `probe_interval`, reporting into `metrics`.
    pub fn new(threshold: u32, probe_interval: Duration, metrics: Metrics) -> Breaker {
        metrics.set_device42_up(true);
        Breaker {
            threshold,
            probe_interval,
            state: Mutex::new(State::default()),
            metrics,
        }
    }

    /// Whether this breaker was built with these settings.
    pub fn is_configured_as(&self, threshold: u32, probe_interval: Duration) -> bool {
        self.threshold == threshold && self.probe_interval == probe_interval
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a call made now would meet, without taking the probe.
    pub fn gate(&self, now: Instant) -> Gate {
        match &self.lock().open {
            None => Gate::Closed,
            Some(open) if open.probing => Gate::Open {
                retry_in: self.probe_interval,
            },
            Some(open) if now >= open.next_probe => Gate::Probe,
            Some(open) => Gate::Open {
                retry_in: open.next_probe - now,
            },
        }
    }

    /// Whether calls are being refused or probed.
    pub fn is_open(&self) -> bool {
        self.lock().open.is_some()
    }

    /// While open, the time until the next probe (zero when one is due or out).
    pub fn paused_for(&self, now: Instant) -> Option<Duration> {
        let state = self.lock();
        let open = state.open.as_ref()?;
        Some(open.next_probe.saturating_duration_since(now))
    }

    /// Lets a call go, as a probe when the breaker is open and one is due; `Err` with the time
    /// until the next probe when it is refused.
    pub fn admit(&self, now: Instant) -> Result<Permit<'_>, Duration> {
        let mut state = self.lock();
        let probe = match state.open.as_mut() {
            None => false,
            Some(open) if !open.probing && now >= open.next_probe => {
                open.probing = true;
                open.probes += 1;
                true
            }
            Some(open) => {
                self.metrics.call_refused();
                return Err(if open.probing {
                    self.probe_interval
                } else {
                    open.next_probe - now
                });
            }
        };
        Ok(Permit {
            breaker: self,
            probe,
            finished: false,
        })
    }

    fn answered(&self, now: Instant) {
        let mut state = self.lock();
        state.failures = 0;
        if let Some(open) = state.open.take() {
            self.metrics.set_device42_up(true);
            tracing::info!(
                outage_s = (now - open.since).as_secs(),
                probes = open.probes,
                "Device42 answers again; calls resumed"
            );
        }
    }

    fn failed(&self, probe: bool, error: &dyn std::fmt::Display, now: Instant) {
        let mut state = self.lock();
        state.failures = state.failures.saturating_add(1);
        let failures = state.failures;
        match state.open.as_mut() {
            Some(open) if probe => {
                open.probing = false;
                open.next_probe = now + self.probe_interval;
                tracing::debug!(error = %error, probe_in_s = self.probe_interval.as_secs(), "probe failed; Device42 still unreachable");
            }
            // A call let through before the breaker opened: the outage is already reported.
            Some(_) => {}
            None if self.threshold > 0 && failures >= self.threshold => {
                state.open = Some(Open {
                    since: now,
                    next_probe: now + self.probe_interval,
                    probing: false,
                    probes: 0,
                });
                self.metrics.set_device42_up(false);
                self.metrics.breaker_opened();
                tracing::warn!(
                    failures,
                    probe_every_s = self.probe_interval.as_secs(),
                    error = %error,
                    "Device42 unreachable; calls paused, one probe per interval until it answers"
                );
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_secs(60);

    fn fail(b: &Breaker, now: Instant) {
        b.admit(now).unwrap().finish(Some(&"HTTP 503"), now);
    }

    #[test]
    fn opens_only_after_threshold_failures_in_a_row() {
        let b = Breaker::new(3, EVERY, Metrics::default());
        let t = Instant::now();
        fail(&b, t);
        fail(&b, t);
        b.admit(t).unwrap().finish(None, t);
        fail(&b, t);
        fail(&b, t);
        assert_eq!(b.gate(t), Gate::Closed, "an answer resets the count");
        fail(&b, t);
        assert_eq!(b.gate(t), Gate::Open { retry_in: EVERY });
        assert!(b.is_open());
        assert_eq!(
            b.admit(t + Duration::from_secs(1)).err(),
            Some(EVERY - Duration::from_secs(1))
        );
    }

    #[test]
    fn one_probe_per_interval_and_an_answer_closes() {
        let b = Breaker::new(1, EVERY, Metrics::default());
        let t = Instant::now();
        fail(&b, t);
        assert!(b.admit(t + EVERY - Duration::from_millis(1)).is_err());
        let later = t + EVERY;
        assert_eq!(b.gate(later), Gate::Probe);
        let probe = b.admit(later).unwrap();
        assert!(
            b.admit(later).is_err(),
            "a second call while the probe is out"
        );
        assert_eq!(b.gate(later), Gate::Open { retry_in: EVERY });
        probe.finish(Some(&"reset"), later);
        assert!(
            b.admit(later + EVERY - Duration::from_millis(1)).is_err(),
            "a failed probe waits a whole interval"
        );
        let probe = b.admit(later + EVERY).unwrap();
        probe.finish(None, later + EVERY);
        assert_eq!(b.gate(later + EVERY), Gate::Closed);
        assert!(b.admit(later + EVERY).is_ok());
    }

    #[test]
    fn a_cancelled_probe_frees_the_slot_at_once() {
        let b = Breaker::new(1, EVERY, Metrics::default());
        let t = Instant::now();
        fail(&b, t);
        drop(b.admit(t + EVERY).unwrap());
        assert_eq!(b.gate(t + EVERY), Gate::Probe);
        assert!(b.admit(t + EVERY).is_ok());
    }

    #[test]
    fn calls_admitted_before_it_opened_neither_extend_nor_report_it() {
        let b = Breaker::new(1, EVERY, Metrics::default());
        let t = Instant::now();
        let earlier = b.admit(t).unwrap();
        fail(&b, t);
        earlier.finish(Some(&"timeout"), t + Duration::from_secs(30));
        assert_eq!(
            b.gate(t + EVERY),
            Gate::Probe,
            "the probe time is unchanged"
        );
    }

    #[test]
    fn it_reports_the_outage_its_openings_and_refusals_into_its_metrics() {
        let metrics = Metrics::default();
        let b = Breaker::new(1, EVERY, metrics.clone());
        let t = Instant::now();
        assert!(metrics.render().contains("\nd42sync_device42_up 1\n"));

        fail(&b, t);
        assert!(b.admit(t).is_err());

        let text = metrics.render();
        assert!(text.contains("\nd42sync_device42_up 0\n"), "{text}");
        assert!(
            text.contains("\nd42sync_breaker_opened_total 1\n"),
            "{text}"
        );
        assert!(text.contains("\nd42sync_calls_refused_total 1\n"), "{text}");
        b.admit(t + EVERY).unwrap().finish(None, t + EVERY);
        assert!(metrics.render().contains("\nd42sync_device42_up 1\n"));
    }

    #[test]
    fn threshold_zero_never_opens() {
        let b = Breaker::new(0, EVERY, Metrics::default());
        let t = Instant::now();
        for _ in 0..100 {
            fail(&b, t);
        }
        assert_eq!(b.gate(t), Gate::Closed);
    }
}
