//! The token cache: a token is obtained once, shared by every request, refreshed shortly before
//! it expires, and re-obtained by exactly one caller when many find it refused at once (single
//! flight: the refresh happens under the cache's lock, and an invalidation only counts for the
//! token generation the caller actually used).

use crate::d42::models::TokenGrant;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use std::future::Future;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The smallest safety margin before expiry at which a token is replaced: a request started just
/// before the refresh point must still finish with a valid token.
const MIN_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// How long before expiry a token of `lifetime` is replaced: `max(60 s, lifetime / 5)`, but never
/// more than half the lifetime (so very short tokens, as in tests, are still used for a while).
pub fn refresh_margin(lifetime: Duration) -> Duration {
    MIN_REFRESH_MARGIN.max(lifetime / 5).min(lifetime / 2)
}

/// The lifetime to plan with: `ttl` counted from the moment the answer arrived, or the
/// appliance's own `expires - Date` when that is shorter and positive (both by the appliance's
/// clock, so clock skew between us and it cancels out).
pub fn planned_lifetime(grant: &TokenGrant, server_date: Option<DateTime<Utc>>) -> Duration {
    let from_ttl = Duration::from_secs_f64(grant.ttl_minutes * 60.0);
    let from_expires = match (grant.expires, server_date) {
        (Some(expires), Some(date)) => (expires - date).to_std().ok(),
        _ => None,
    };
    match from_expires {
        Some(d) if !d.is_zero() && d < from_ttl => d,
        _ => from_ttl,
    }
}

/// A token in use.
struct Cached {
    /// The bearer token.
    value: SecretString,
    /// When to replace it (monotonic clock).
    refresh_at: Instant,
    /// When it expires (monotonic clock), for the metrics.
    expires_at: Instant,
    /// Counts tokens obtained, so a stale refusal cannot throw away a fresh token.
    generation: u64,
}

/// The shared token state of one client.
#[derive(Default)]
pub struct TokenCache {
    current: Mutex<Option<Cached>>,
    generations: std::sync::atomic::AtomicU64,
}

impl TokenCache {
    /// The current token and its generation, obtaining a new one with `fetch` when there is none
    /// or it is due for refresh. Concurrent callers wait for the one fetch in progress.
    pub async fn get<F, Fut, E>(&self, fetch: F) -> Result<(SecretString, u64), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(TokenGrant, Option<DateTime<Utc>>), E>>,
    {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok((t.value.clone(), t.generation));
        }
        let (grant, server_date) = fetch().await?;
        let received = Instant::now();
        let lifetime = planned_lifetime(&grant, server_date);
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let token = Cached {
            value: grant.token,
            refresh_at: received + lifetime - refresh_margin(lifetime),
            expires_at: received + lifetime,
            generation,
        };
        let out = (token.value.clone(), generation);
        *current = Some(token);
        Ok(out)
    }

    /// Drops the token of `generation` after the server refused it; a newer token stays.
    pub async fn invalidate(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| t.generation == generation) {
            *current = None;
        }
    }

    /// Time left before the current token expires, if there is one (for metrics).
    pub fn expires_in(&self) -> Option<Duration> {
        let current = self.current.try_lock().ok()?;
        current
            .as_ref()
            .map(|t| t.expires_at.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn grant(ttl_minutes: f64) -> TokenGrant {
        TokenGrant {
            token: SecretString::from("t".to_string()),
            token_id: Some(1),
            ttl_minutes,
            expires: None,
        }
    }

    #[test]
    fn the_refresh_margin_follows_the_reliability_rule() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(720)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(600)),
            Duration::from_secs(120)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(180)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(5)),
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn a_skewed_expires_field_does_not_shorten_the_lifetime() {
        let now = Utc::now();
        let mut g = grant(10.0);
        g.expires = Some(now - chrono::Duration::minutes(10));
        assert_eq!(planned_lifetime(&g, Some(now)), Duration::from_secs(600));
        g.expires = Some(now + chrono::Duration::minutes(5));
        assert_eq!(planned_lifetime(&g, Some(now)), Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_reused_until_its_refresh_point() {
        let cache = TokenCache::default();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>((grant(10.0), None))
        };
        cache.get(fetch).await.unwrap();
        tokio::time::advance(Duration::from_secs(479)).await;
        cache.get(fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        cache.get(fetch).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_invalidation_keeps_the_newer_token() {
        let cache = TokenCache::default();
        let fetch = || async { Ok::<_, ()>((grant(10.0), None)) };
        let (_, first) = cache.get(fetch).await.unwrap();
        cache.invalidate(first).await;
        let (_, second) = cache.get(fetch).await.unwrap();
        cache.invalidate(first).await;
        let (_, still) = cache.get(fetch).await.unwrap();
        assert_eq!(second, still);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_every_100ms_with_5s_tokens_never_meet_an_expired_token() {
        const LIFETIME: Duration = Duration::from_secs(5);
        const REQUEST_TAKES: Duration = Duration::from_millis(50);
        let cache = TokenCache::default();
        let obtained = std::sync::Mutex::new(Vec::new());
        let fetch = || async {
            obtained.lock().unwrap().push(Instant::now());
            Ok::<_, ()>((grant(LIFETIME.as_secs_f64() / 60.0), None))
        };
        let started = Instant::now();

        let mut requests = 0;
        while started.elapsed() < Duration::from_secs(20) {
            let (_, generation) = cache.get(fetch).await.unwrap();
            let got_at = obtained.lock().unwrap()[generation as usize - 1];
            tokio::time::advance(REQUEST_TAKES).await;
            assert!(
                Instant::now() < got_at + LIFETIME,
                "request {requests} ended with an expired token"
            );
            requests += 1;
            tokio::time::advance(Duration::from_millis(100) - REQUEST_TAKES).await;
        }

        assert_eq!(requests, 200);
        let tokens = obtained.lock().unwrap().len();
        assert!(
            (5..=10).contains(&tokens),
            "20 s of 5 s tokens refreshed ahead: {tokens} tokens"
        );
    }
}
