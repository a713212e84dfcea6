//! # Implementation details
//!
//! A coarse clock for the hot path. Reading the system clock costs more than the rest of an
//! uncontended acquire and release on some machines, so idle and lifetime bookkeeping uses
//! milliseconds since the pool was built, refreshed by maintenance (at least every tick) and by
//! every slow path that reads the clock anyway. Its error is at most one maintenance tick,
//! which is at most half of the smallest threshold it is compared with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct CoarseClock {
    epoch: Instant,
    now_ms: AtomicU64,
}

impl CoarseClock {
    pub(crate) fn new() -> Self {
        CoarseClock {
            epoch: Instant::now(),
            now_ms: AtomicU64::new(0),
        }
    }

    /// The last refreshed time, in ms since the epoch. No system call.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        // Ordering: a stale value only delays a threshold by one tick; nothing is published.
        self.now_ms.load(Ordering::Relaxed)
    }

    /// Reads the system clock and moves the coarse time forward.
    pub(crate) fn refresh(&self) -> Instant {
        let now = Instant::now();
        let now_ms = self.ms_at(now);
        // Ordering: monotonic via fetch_max; see `now`. Read first: within the same
        // millisecond (most refreshes under load) the shared line is not written.
        if now_ms > self.now_ms.load(Ordering::Relaxed) {
            self.now_ms.fetch_max(now_ms, Ordering::Relaxed);
        }
        now
    }

    /// `at` in ms since the epoch.
    pub(crate) fn ms_at(&self, at: Instant) -> u64 {
        ms(at.saturating_duration_since(self.epoch))
    }
}

/// A duration in whole milliseconds (saturating).
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn moves_only_when_refreshed_and_never_backwards() {
        let clock = CoarseClock::new();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(clock.now(), 0);
        clock.refresh();
        assert_eq!(clock.now(), 1500);
        assert_eq!(ms(Duration::MAX), u64::MAX);
    }
}
