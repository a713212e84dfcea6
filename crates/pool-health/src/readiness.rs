//! # Implementation details
//!
//! Whether a pool is in sustained trouble, from pool statistics sampled often: callers that
//! wait long (the oldest waiter older than a share of `acquire_timeout`) for long enough
//! within a window, or acquire timeouts above a count within the window. Once failing, a pool
//! passes again only after a quiet spell (hysteresis), so readiness does not flap.

use std::collections::VecDeque;
use std::time::Duration;

use pool_core::PoolStats;
use tokio::time::Instant;

use crate::options::HealthOptions;
use crate::waiter_age::WaiterAge;
use crate::window::TimeoutWindow;

/// What the tracker concluded at the last sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Sustained trouble: readiness fails.
    pub(crate) failing: bool,
    /// Trouble seen now (a stalled queue or a new timeout), sustained or not.
    pub(crate) troubled: bool,
    /// The oldest waiter's age, `None` when nobody waits.
    pub(crate) oldest_wait: Option<Duration>,
    /// The oldest waiter's age from which the queue counts as stalled.
    pub(crate) stall_threshold: Duration,
    /// How long the queue was stalled within the window.
    pub(crate) stalled_for: Duration,
    /// Acquire timeouts within the window.
    pub(crate) timeouts: u64,
}

/// Samples of one pool and the state they led to.
#[derive(Debug)]
pub(crate) struct Readiness {
    waiter_age: WaiterAge,
    timeouts: TimeoutWindow,
    last_timeouts: u64,
    /// Stalled stretches `(from, to)`, oldest first, none ending before the window.
    stalls: VecDeque<(Instant, Instant)>,
    last_sample: Instant,
    last_trouble: Option<Instant>,
    failing: bool,
}

/// More stalled stretches than this are merged (the oldest two), to bound memory.
const MAX_STALLS: usize = 256;

impl Readiness {
    /// Starts at `now` from the pool's counters, so history from before the checker existed
    /// is not held against the pool.
    pub(crate) fn new(now: Instant, stats: &PoolStats) -> Self {
        let mut waiter_age = WaiterAge::default();
        waiter_age.observe(now, stats);
        Readiness {
            waiter_age,
            timeouts: TimeoutWindow::new(now, stats.acquire_timeouts),
            last_timeouts: stats.acquire_timeouts,
            stalls: VecDeque::new(),
            last_sample: now,
            last_trouble: None,
            failing: false,
        }
    }

    /// Takes one sample at `now` of the `stats` of a pool whose callers wait up to
    /// `acquire_timeout`.
    pub(crate) fn sample(
        &mut self,
        now: Instant,
        stats: &PoolStats,
        acquire_timeout: Duration,
        options: &HealthOptions,
    ) -> Verdict {
        let window = options.timeout_window;
        let stall_threshold =
            acquire_timeout.mul_f64(f64::from(options.stall_percent.min(100)) / 100.0);
        let oldest_wait = self.waiter_age.observe(now, stats);
        let stalled = oldest_wait.is_some_and(|age| age >= stall_threshold);
        if stalled {
            // The stretch since the last sample counts as stalled: at most one sampling
            // interval of error.
            let from = self.last_sample.min(now);
            match self.stalls.back_mut() {
                Some((_, to)) if *to >= from => *to = now,
                _ => {
                    if self.stalls.len() == MAX_STALLS
                        && let Some((first, _)) = self.stalls.pop_front()
                        && let Some(next) = self.stalls.front_mut()
                    {
                        next.0 = first;
                    }
                    self.stalls.push_back((from, now));
                }
            }
        }
        let start = now.checked_sub(window).unwrap_or(now);
        while self.stalls.front().is_some_and(|&(_, to)| to <= start) {
            self.stalls.pop_front();
        }
        let stalled_for = self
            .stalls
            .iter()
            .map(|&(from, to)| to.saturating_duration_since(from.max(start)))
            .sum::<Duration>();
        let timeouts = self.timeouts.record(now, stats.acquire_timeouts, window);
        let new_timeout = stats.acquire_timeouts > self.last_timeouts;
        self.last_timeouts = stats.acquire_timeouts;
        self.last_sample = now;

        let troubled = stalled || new_timeout;
        if troubled {
            self.last_trouble = Some(now);
        }
        let sustained =
            stalled_for >= options.fail_after || timeouts > options.max_acquire_timeouts;
        if troubled && sustained {
            self.failing = true;
        } else if self.failing
            && self
                .last_trouble
                .is_none_or(|at| now.saturating_duration_since(at) >= options.recovery)
        {
            self.failing = false;
        }
        Verdict {
            failing: self.failing,
            troubled,
            oldest_wait,
            stall_threshold,
            stalled_for,
            timeouts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(waited: u64, waiting: u32, timeouts: u64) -> PoolStats {
        let mut s = PoolStats::default();
        s.waited = waited;
        s.waiting = waiting;
        s.acquire_timeouts = timeouts;
        s
    }

    const STEP: Duration = Duration::from_millis(100);

    /// Samples every 100 ms for `for_`, with stats given by `at(elapsed)`; returns the
    /// verdicts.
    fn run(
        r: &mut Readiness,
        t: &mut Instant,
        for_: Duration,
        at: impl Fn(Duration) -> PoolStats,
    ) -> Vec<Verdict> {
        let options = HealthOptions::default();
        let begin = *t;
        let mut out = Vec::new();
        while *t < begin + for_ {
            *t += STEP;
            out.push(r.sample(*t, &at(*t - begin), options.acquire_timeout, &options));
        }
        out
    }

    #[test]
    fn a_busy_queue_that_moves_never_fails() {
        let mut t = Instant::now();
        let mut r = Readiness::new(t, &stats(0, 0, 0));
        // 54 always waiting, 5000 served a second: each waits about 11 ms.
        let verdicts = run(&mut r, &mut t, Duration::from_secs(60), |e| {
            stats(54 + e.as_millis() as u64 * 5, 54, 0)
        });
        assert!(verdicts.iter().all(|v| !v.failing && !v.troubled));
    }

    #[test]
    fn a_stuck_queue_fails_after_fail_after_of_stall_and_recovers_after_a_quiet_spell() {
        let options = HealthOptions::default();
        let mut t = Instant::now();
        let mut r = Readiness::new(t, &stats(0, 0, 0));
        // Callers queue and nobody is served (a frozen server).
        let verdicts = run(&mut r, &mut t, Duration::from_secs(20), |e| {
            let n = 1 + e.as_millis() as u64 / 100;
            stats(n, u32::try_from(n).unwrap(), 0)
        });
        let first_stall = verdicts.iter().position(|v| v.troubled).unwrap();
        let first_fail = verdicts.iter().position(|v| v.failing).unwrap();
        let threshold = options.acquire_timeout / 2;
        assert!(
            (threshold.as_millis() / 100).abs_diff(first_stall as u128) <= 1,
            "stalled once the oldest waited {threshold:?}: sample {first_stall}"
        );
        assert!(
            ((threshold + options.fail_after).as_millis() / 100).abs_diff(first_fail as u128) <= 2,
            "fails after {:?} of stall: sample {first_fail}",
            options.fail_after
        );
        // Served again: nobody waits. Failing until the quiet spell has passed, then passing.
        let verdicts = run(&mut r, &mut t, Duration::from_secs(15), |_| {
            stats(200, 0, 0)
        });
        let recovered = verdicts.iter().position(|v| !v.failing).unwrap();
        assert!(
            ((options.recovery.as_millis() / 100) as usize).abs_diff(recovered) <= 1,
            "recovers after {:?}: sample {recovered}",
            options.recovery
        );
        assert!(verdicts[recovered..].iter().all(|v| !v.failing));
    }

    #[test]
    fn one_timeout_after_a_short_stall_does_not_fail() {
        let mut t = Instant::now();
        let mut r = Readiness::new(t, &stats(0, 0, 0));
        // One caller waits its whole acquire_timeout (10 s) and times out, once.
        let verdicts = run(&mut r, &mut t, Duration::from_secs(40), |e| {
            if e < Duration::from_secs(10) {
                stats(1, 1, 0)
            } else {
                stats(1, 0, 1)
            }
        });
        assert!(verdicts.iter().any(|v| v.troubled), "the stall is noticed");
        assert!(verdicts.iter().all(|v| !v.failing), "but does not fail");
    }

    #[test]
    fn many_timeouts_within_the_window_fail() {
        let mut t = Instant::now();
        let mut r = Readiness::new(t, &stats(0, 0, 0));
        let options = HealthOptions::default();
        let verdicts = run(&mut r, &mut t, Duration::from_secs(3), |e| {
            let n = e.as_millis() as u64 / 400;
            stats(n, 0, n)
        });
        let fail = verdicts.iter().position(|v| v.failing).unwrap();
        assert_eq!(verdicts[fail].timeouts, options.max_acquire_timeouts + 1);
    }
}
