//! # Implementation details
//!
//! How long the oldest caller in a pool's acquire queue has waited, estimated from public
//! statistics sampled often: `PoolStats::waited` counts callers entering the queue, and
//! `waiting` those still in it, so `waited - waiting` have left it. The queue is first come,
//! first served, so the oldest waiter is the first arrival not yet gone, and it had arrived
//! by the first sample that counted it. The estimate is a lower bound, off by at most one
//! sampling interval; callers that give up out of turn (a dropped future) make it younger,
//! never older, so it can miss trouble by a little but never invent it.
//!
//! When pool-core exposes the age itself (`PoolStats::oldest_wait`), [`WaiterAge::observe`]
//! returns it and the sampling here goes.

use std::collections::VecDeque;
use std::time::Duration;

use pool_core::PoolStats;
use tokio::time::Instant;

/// More arrival samples than this are not kept: the oldest are merged away (the estimate
/// then errs younger), so memory stays bounded whatever the load.
const MAX_SAMPLES: usize = 1024;

/// Arrival samples `(when, waited)` since the oldest waiter still queued arrived.
#[derive(Debug, Default)]
pub(crate) struct WaiterAge {
    arrivals: VecDeque<(Instant, u64)>,
}

impl WaiterAge {
    /// Records `stats` sampled at `now` and returns the age of the oldest waiter, `None` when
    /// nobody waits.
    pub(crate) fn observe(&mut self, now: Instant, stats: &PoolStats) -> Option<Duration> {
        let arrived = stats.waited;
        if self
            .arrivals
            .back()
            .is_none_or(|&(_, last)| last != arrived)
        {
            if self.arrivals.len() == MAX_SAMPLES {
                self.arrivals.pop_front();
            }
            self.arrivals.push_back((now, arrived));
        }
        if stats.waiting == 0 {
            self.arrivals.retain(|&(_, count)| count == arrived);
            return None;
        }
        let left = arrived.saturating_sub(u64::from(stats.waiting));
        // Samples whose arrivals have all left the queue say nothing about who is in it.
        while self
            .arrivals
            .front()
            .is_some_and(|&(_, count)| count <= left)
        {
            self.arrivals.pop_front();
        }
        let first_seen = self.arrivals.front().map_or(now, |&(at, _)| at);
        Some(now.saturating_duration_since(first_seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(waited: u64, waiting: u32) -> PoolStats {
        let mut s = PoolStats::default();
        s.waited = waited;
        s.waiting = waiting;
        s
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_queue_that_moves_stays_young_however_long() {
        let t0 = Instant::now();
        let mut age = WaiterAge::default();
        // 50 callers always waiting, 100 served every 100 ms: each waits about 50 ms.
        for i in 0..1000u64 {
            let waited = 50 + i * 100;
            let oldest = age.observe(t0 + MS(i * 100), &stats(waited, 50)).unwrap();
            assert!(oldest <= MS(100), "at {i}: {oldest:?}");
        }
        assert!(age.arrivals.len() <= 2, "{:?}", age.arrivals.len());
    }

    #[test]
    fn a_stuck_queue_ages_from_when_its_oldest_arrived() {
        let t0 = Instant::now();
        let mut age = WaiterAge::default();
        assert_eq!(age.observe(t0, &stats(10, 0)), None);
        assert_eq!(
            age.observe(t0 + MS(100), &stats(12, 2)),
            Some(Duration::ZERO)
        );
        // More arrive, nobody leaves: the oldest was there at 100 ms.
        assert_eq!(age.observe(t0 + MS(200), &stats(15, 5)), Some(MS(100)));
        assert_eq!(age.observe(t0 + MS(5100), &stats(15, 5)), Some(MS(5000)));
        // The first two leave (served or timed out): the oldest now arrived by 200 ms.
        assert_eq!(age.observe(t0 + MS(5200), &stats(15, 3)), Some(MS(5000)));
        // All leave.
        assert_eq!(age.observe(t0 + MS(5300), &stats(15, 0)), None);
        assert_eq!(
            age.observe(t0 + MS(5400), &stats(16, 1)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let t0 = Instant::now();
        let mut age = WaiterAge::default();
        for i in 1..10_000u64 {
            age.observe(t0 + MS(i), &stats(i, u32::try_from(i).unwrap()));
        }
        assert!(age.arrivals.len() <= MAX_SAMPLES);
    }
}
