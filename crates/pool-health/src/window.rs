//! # Implementation details
//!
//! Acquire timeouts within a sliding window, from the pool's cumulative counter.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// More change points than this are not kept (the oldest go first): memory stays bounded
/// whatever the call rate, at the cost of a slightly short window under extreme churn.
const MAX_SAMPLES: usize = 256;

/// Change points `(when, cumulative count)` of a counter, enough to tell how much it grew
/// since the start of the window.
#[derive(Debug)]
pub(crate) struct TimeoutWindow {
    samples: VecDeque<(Instant, u64)>,
}

impl TimeoutWindow {
    /// Starts with the counter's value when the checker first saw the pool, so timeouts from
    /// before the checker existed are not counted against it.
    pub(crate) fn new(now: Instant, count: u64) -> Self {
        TimeoutWindow {
            samples: VecDeque::from([(now, count)]),
        }
    }

    /// Records the counter's value `count` at `now`, and returns how much it grew since the
    /// start of the window (`now - window`), or since the oldest sample when the checker
    /// looked less often than that.
    pub(crate) fn record(&mut self, now: Instant, count: u64, window: Duration) -> u64 {
        if self.samples.back().is_none_or(|&(_, last)| last != count) {
            if self.samples.len() == MAX_SAMPLES {
                self.samples.pop_front();
            }
            self.samples.push_back((now, count));
        }
        if let Some(start) = now.checked_sub(window) {
            // Keep the last change point at or before the window's start: its count is the
            // counter's value when the window began.
            while self.samples.get(1).is_some_and(|&(at, _)| at <= start) {
                self.samples.pop_front();
            }
        }
        let baseline = self.samples.front().map_or(count, |&(_, c)| c);
        count.saturating_sub(baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    #[test]
    fn counts_timeouts_within_the_window_only() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = TimeoutWindow::new(t0, 5);
        assert_eq!(
            w.record(t0 + s(1), 5, WINDOW),
            0,
            "history before the checker is ignored"
        );
        assert_eq!(w.record(t0 + s(2), 7, WINDOW), 2);
        assert_eq!(w.record(t0 + s(5), 8, WINDOW), 3);
        // At 13 s the window starts at 3 s: the counter then was 7.
        assert_eq!(w.record(t0 + s(13), 8, WINDOW), 1);
        // At 16 s the window starts at 6 s: nothing new since 8.
        assert_eq!(w.record(t0 + s(16), 8, WINDOW), 0);
    }

    #[test]
    fn checks_further_apart_than_the_window_count_since_the_previous_one() {
        let t0 = Instant::now();
        let mut w = TimeoutWindow::new(t0, 0);
        assert_eq!(w.record(t0 + Duration::from_secs(60), 3, WINDOW), 3);
        assert_eq!(w.record(t0 + Duration::from_secs(120), 3, WINDOW), 0);
    }

    #[test]
    fn memory_stays_bounded() {
        let t0 = Instant::now();
        let mut w = TimeoutWindow::new(t0, 0);
        for i in 1..10_000u64 {
            w.record(t0 + Duration::from_millis(i), i, WINDOW);
        }
        assert!(w.samples.len() <= MAX_SAMPLES);
    }
}
