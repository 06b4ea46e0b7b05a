//! How many pages of a pass are held at once: in flight, received, or being staged.
//!
//! A received page costs its body and what its records' parse derives (about 6 MiB of resident
//! memory for 1 000 full records), so holding more pages than the stage can use only costs
//! memory. The stage needs, besides the page it is staging, enough pages on their way to cover
//! one page's fetch: `fetch time / stage time` of them. The window follows both times as the
//! pass goes and lets a page be requested only while fewer than that many (plus `SPARE`) are
//! held, never more than the pager's lookahead. Against a fast appliance, where the stage is
//! the bottleneck, a first load of 100 000 devices then held 5 to 7 pages instead of 10 (peak
//! RSS 80-84 -> 59-63 MiB, wall time unchanged; the rest of that peak was the pages sent with
//! the first one, see `paging`); on a slow link the window opens to the lookahead, as if it were
//! not there (`bench/findings.md`).

use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// Pages held beyond those that cover a fetch: the one being staged. Since custom fields are
/// stored sparsely and a first load's child rows are written in batches, a page stages in about
/// a third of its fetch, so the window of a fast appliance is set by this number: a first load
/// of 100 000 devices peaked at 60-62 MiB with two, 50-54 MiB with one (58-69 MiB with three
/// before the batches), wall time the same; on a 200 ms link the window is the lookahead either
/// way (`bench/findings.md`).
const SPARE: usize = 1;

/// Weight of the newest sample in each running average.
const NEWEST: f64 = 0.25;

/// The pages held by one pass, and the times that size the window.
#[derive(Debug)]
pub(super) struct Window {
    /// The pager's lookahead: the window never opens wider.
    widest: usize,
    state: Mutex<State>,
    /// Told when a page is released or the times change.
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Pages requested and not yet released by the stage.
    held: usize,
    /// Running average of a page's fetch and parse, in seconds.
    fetch: Option<f64>,
    /// Running average of a page's stage, in seconds.
    stage: Option<f64>,
}

impl State {
    /// Pages that may be held now: the widest until both times are known.
    fn limit(&self, widest: usize) -> usize {
        match (self.fetch, self.stage) {
            (Some(fetch), Some(stage)) if stage > 0.0 => {
                let covering = (fetch / stage).ceil();
                if covering >= widest as f64 {
                    widest
                } else {
                    (covering as usize + SPARE).min(widest)
                }
            }
            _ => widest,
        }
    }
}

fn average(old: Option<f64>, sample: Duration) -> Option<f64> {
    let sample = sample.as_secs_f64();
    Some(old.map_or(sample, |old| old + NEWEST * (sample - old)))
}

impl Window {
    /// A window of at most `widest` pages.
    pub(super) fn new(widest: usize) -> Self {
        Self {
            widest: widest.max(1),
            state: Mutex::default(),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a page requested without waiting (the pages sent with the first one).
    pub(super) fn hold(&self) {
        self.state().held += 1;
    }

    /// Stops counting a held page: one the stage is done with, or one requested without
    /// waiting that the pass will not take.
    pub(super) fn forget(&self) {
        {
            let mut state = self.state();
            state.held = state.held.saturating_sub(1);
        }
        self.changed.notify_one();
    }

    /// Waits until one more page may be held, and holds it.
    pub(super) async fn admit(&self) {
        loop {
            {
                let mut state = self.state();
                if state.held < state.limit(self.widest) {
                    state.held += 1;
                    return;
                }
            }
            self.changed.notified().await;
        }
    }

    /// A held page is staged (or dropped): `staged` is how long its stage took.
    pub(super) fn release(&self, staged: Duration) {
        self.forget();
        self.staged(staged);
    }

    /// A page's stage took `took`.
    pub(super) fn staged(&self, took: Duration) {
        {
            let mut state = self.state();
            state.stage = average(state.stage, took);
        }
        self.changed.notify_one();
    }

    /// A page took `took` from its request to its parse.
    pub(super) fn fetched(&self, took: Duration) {
        {
            let mut state = self.state();
            state.fetch = average(state.fetch, took);
        }
        self.changed.notify_one();
    }

    /// Pages that may be held now.
    pub(super) fn limit(&self) -> usize {
        self.state().limit(self.widest)
    }

    /// Whether the stage waits for the link: both times are known and the pages that cover
    /// one page's fetch at the current stage rate are as many as the lookahead, so the window
    /// is at its widest because the link is slow, not for want of measurements.
    pub(super) fn stage_waits(&self) -> bool {
        let state = self.state();
        matches!(
            (state.fetch, state.stage),
            (Some(fetch), Some(stage)) if fetch >= stage * self.widest as f64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn is_as_wide_as_allowed_until_both_times_are_known() {
        let window = Window::new(10);
        assert_eq!(window.limit(), 10);
        window.fetched(MS(30));
        assert_eq!(window.limit(), 10);
    }

    #[test]
    fn a_slow_stage_narrows_it_and_a_slow_link_opens_it() {
        // Stage-bound: a 30 ms fetch is covered by one page on its way.
        let window = Window::new(10);
        window.hold();
        window.fetched(MS(30));
        window.release(MS(40));
        assert_eq!(window.limit(), 1 + SPARE);
        // Link-bound: 200 ms fetches against 40 ms stages need 5 on their way.
        let window = Window::new(10);
        window.hold();
        window.fetched(MS(200));
        window.release(MS(40));
        assert_eq!(window.limit(), 5 + SPARE);
        // Slower still: never wider than the lookahead.
        window.fetched(MS(5000));
        assert_eq!(window.limit(), 10);
    }

    #[test]
    fn the_stage_waits_when_a_page_fetch_covers_the_whole_lookahead_of_stages() {
        let window = Window::new(10);
        assert!(!window.stage_waits(), "nothing measured yet");
        window.fetched(MS(200));
        assert!(!window.stage_waits(), "no stage measured yet");
        window.staged(MS(40));
        assert!(
            !window.stage_waits(),
            "5 stages per fetch: the stage is busy"
        );
        let window = Window::new(10);
        window.fetched(MS(200));
        window.staged(MS(20));
        assert!(window.stage_waits(), "10 stages per fetch");
        window.fetched(MS(30));
        assert!(!window.stage_waits(), "the link got fast");
    }

    #[tokio::test]
    async fn a_page_waits_while_the_window_is_full_and_goes_when_one_is_released() {
        let window = std::sync::Arc::new(Window::new(10));
        window.hold();
        window.fetched(MS(10));
        window.release(MS(100));
        assert_eq!(window.limit(), 1 + SPARE);
        for _ in 0..window.limit() {
            window.admit().await;
        }
        let waiting = tokio::spawn({
            let window = std::sync::Arc::clone(&window);
            async move { window.admit().await }
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(MS(20)).await;
        assert!(!waiting.is_finished(), "admitted past a full window");
        window.release(MS(100));
        tokio::time::timeout(MS(5000), waiting)
            .await
            .expect("not admitted after a release")
            .unwrap();
    }
}
