//! When a failed queue row is tried again: full jitter, `uniform(0, min(cap, base * 2^n))` after
//! failure `n`, and never before a `Retry-After` the server gave. Full jitter spreads the retries
//! of many rows that failed together (an appliance restart) instead of sending them in waves.

use chrono::{DateTime, Utc};
use rand::Rng;
use std::time::Duration;

/// The upper bound of the delay after failure `n` (1-based).
pub fn ceiling(n: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(n.min(31));
    base.saturating_mul(factor).min(cap)
}

/// The instant a row that failed for the `n`th time becomes due again.
pub fn next_attempt_at(
    now: DateTime<Utc>,
    n: u32,
    base: Duration,
    cap: Duration,
    retry_after: Option<Duration>,
    rng: &mut impl Rng,
) -> DateTime<Utc> {
    let upper = ceiling(n, base, cap);
    let jittered = Duration::from_secs_f64(rng.random_range(0.0..=upper.as_secs_f64()));
    let delay = retry_after.map_or(jittered, |ra| jittered.max(ra));
    crate::time::add(now, delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn every_delay_lies_within_the_full_jitter_bounds() {
        let now = crate::time::parse_iso("2026-11-28T00:00:00.000Z").unwrap();
        let (base, cap) = (Duration::from_secs(2), Duration::from_secs(3600));
        let mut rng = StdRng::seed_from_u64(7);
        for n in 1..=12 {
            let upper = ceiling(n, base, cap);
            assert_eq!(upper, (base * 2u32.pow(n)).min(cap));
            let mut seen_low = false;
            let mut seen_high = false;
            for _ in 0..500 {
                let at = next_attempt_at(now, n, base, cap, None, &mut rng);
                let delay = (at - now).to_std().unwrap();
                assert!(delay <= upper, "failure {n}: {delay:?} > {upper:?}");
                seen_low |= delay < upper / 4;
                seen_high |= delay > upper * 3 / 4;
            }
            assert!(
                seen_low && seen_high,
                "failure {n}: the delays do not spread over the range"
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let now = Utc::now();
        let mut rng = StdRng::seed_from_u64(1);
        let at = next_attempt_at(
            now,
            1,
            Duration::from_secs(2),
            Duration::from_secs(60),
            Some(Duration::from_secs(120)),
            &mut rng,
        );
        assert!((at - now).to_std().unwrap() >= Duration::from_secs(120));
    }
}
