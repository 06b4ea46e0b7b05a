//! [`Retrier`]: how often and how soon a call is tried again, and whether it is sent at all.
//!
//! Every call passes the [`Breaker`]: after repeated outage failures calls are refused at once
//! ([`Error::Paused`]) except for one probe per interval. A GET is retried on retryable failures
//! with capped exponential backoff with jitter; a `Retry-After` replaces the planned step, never
//! past `device42.max_retry_after`; once the breaker opens the GET stops retrying. Retries are
//! logged at WARN once per endpoint per quiet period ([`log`]).
//!
//! Time is tokio's clock, so tests run the rules on paused time.

pub mod breaker;
pub mod log;

use super::error::Error;
use backon::{ExponentialBuilder, Retryable};
use breaker::Breaker;
use log::{Level, RetryLog};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Retry timing for GETs.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff step.
    pub base: Duration,
    /// Longest backoff step (before jitter, which adds up to as much again).
    pub max: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

/// Now, by tokio's clock (paused in tests), as the breaker and the retry log take it.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The retry rules and the breaker of one client.
#[derive(Debug)]
pub struct Retrier {
    /// Backoff and `Retry-After` limits.
    policy: RetryPolicy,
    /// Shared with the client a reload replaces when the appliance stays the same.
    breaker: Arc<Breaker>,
    /// Keeps retries to one WARN per endpoint at a time.
    log: RetryLog,
}

impl Retrier {
    /// Retries by `policy`, calls through `breaker`.
    pub fn new(policy: RetryPolicy, breaker: Arc<Breaker>) -> Self {
        Self {
            policy,
            breaker,
            log: RetryLog::default(),
        }
    }

    /// The retry timing.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// The breaker, to be kept by a reloaded client for the same appliance.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    /// Runs one call through the breaker, without retries: refused at once while it holds
    /// calls; an end that points at an outage counts towards opening it, any other end closes
    /// it.
    pub async fn once<T>(
        &self,
        endpoint: impl FnOnce() -> String,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let permit = self
            .breaker
            .admit(now())
            .map_err(|retry_in| Error::Paused {
                endpoint: endpoint(),
                retry_in,
            })?;
        let result = call.await;
        match &result {
            // A retry the breaker held back: the call says nothing about the appliance.
            Err(Error::Paused { .. }) => drop(permit),
            Err(e) if e.is_retryable() => permit.finish(Some(e), now()),
            _ => permit.finish(None, now()),
        }
        result
    }

    /// Runs `attempt` through the breaker, again after each retryable failure as the policy
    /// allows. `endpoint` names the request in messages; `family` is the endpoint whatever the
    /// page, whose retries share one WARN.
    pub async fn retried<T, F, Fut>(
        &self,
        endpoint: &str,
        family: &str,
        attempt: F,
    ) -> Result<T, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let policy = self.policy;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.base)
            .with_max_delay(policy.max)
            .with_max_times(policy.max_retries as usize)
            .with_jitter();
        let tries = AtomicU32::new(0);
        // The failure a retry was planned for: the call's cause if the breaker holds the retry.
        let last_failure = Mutex::new(None);
        let guarded = || async {
            // A retry already waiting when the breaker opened is not sent either; the call
            // ends with the failure that made it retry, which names the cause.
            if tries.fetch_add(1, Ordering::Relaxed) > 0
                && let Some(retry_in) = self.breaker.paused_for(now())
            {
                let last = last_failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                return Err(last.unwrap_or_else(|| Error::Paused {
                    endpoint: endpoint.to_string(),
                    retry_in,
                }));
            }
            attempt().await
        };
        let attempts = guarded
            .retry(backoff)
            // Once the breaker opens (this call's failures or another's), stop: a probe is
            // one attempt, and an outage is reported once, not per retry.
            .when(|e| e.is_retryable() && !self.breaker.is_open())
            .adjust(|e, planned| {
                // Retry-After replaces the planned step (never past the cap); an exhausted
                // backoff stays exhausted.
                planned.map(|d| {
                    e.retry_after()
                        .map_or(d, |ra| ra.min(policy.max_retry_after))
                })
            })
            .notify(|e: &Error, after| {
                *last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
                self.log_retry(family, endpoint, e, after);
            });
        self.once(|| endpoint.to_string(), attempts).await
    }

    /// Logs a planned retry: one WARN per endpoint family while retries keep coming, DEBUG for
    /// the rest.
    fn log_retry(&self, family: &str, endpoint: &str, e: &Error, after: Duration) {
        let retry_in_ms = after.as_millis() as u64;
        match self.log.level(family, now()) {
            Level::Warn { quietened } => {
                tracing::warn!(endpoint = %family, request = %endpoint, retry_in_ms, quietened, error = %e, "request failed, retrying; more retries of this endpoint at debug");
            }
            Level::Debug => {
                tracing::debug!(endpoint = %endpoint, retry_in_ms, error = %e, "request failed, retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests;
