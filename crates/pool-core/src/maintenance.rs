//! # Implementation details
//!
//! The background task: reaps idle connections above `min_connections`, retires those past
//! their lifetime, pings idle ones (keepalive), reports leaked checkouts and refills to
//! `min_connections`. It holds a `Weak` reference and stops when the pool is dropped or closed.
//! A [`Running`] flag moves with it, so the pool can tell whether it still runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::connector::Connector;
use crate::guard::LiveGuard;
use crate::inner::Inner;
use crate::internals::Live;
use crate::stats::CloseReason;

type Leak = (&'static std::panic::Location<'static>, Duration);

/// Set while the maintenance task exists: cleared when the task returns, panics, or is dropped
/// unpolled (its runtime shut down, or no runtime to spawn on).
pub(crate) struct Running(Arc<AtomicBool>);

impl Running {
    pub(crate) fn start(flag: &Arc<AtomicBool>) -> Self {
        // Ordering: a lone flag read by health checks; nothing else is published with it.
        flag.store(true, Ordering::Relaxed);
        Running(Arc::clone(flag))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

pub(crate) async fn run<C: Connector>(weak: Weak<Inner<C>>, tick: Duration, running: Running) {
    let _running = running;
    let mut interval = tokio::time::interval_at(Instant::now() + tick, tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.lock().closing {
            return;
        }
        inner.maintain().await;
    }
}

impl<C: Connector> Inner<C> {
    /// One maintenance pass; every network step in it is bounded.
    pub(crate) async fn maintain(self: &Arc<Self>) {
        let (retired, pings, leaks) = self.sweep(self.clock.refresh());
        for (live, reason) in retired {
            self.close_in_background(live, reason);
        }
        for (location, held) in leaks {
            tracing::warn!(pool = %self.name(), %location, ?held, "connection checked out longer than leak_detection_threshold (possible leak)");
            if let Some(obs) = self.observer() {
                obs.on_leak(location, held);
            }
        }
        for live in pings {
            // Cancel safety: the connection is guarded while pinged; the pool's drop at this
            // await retires it.
            let mut guard = LiveGuard::new(self, live);
            let Some(live) = guard.live_mut() else {
                continue;
            };
            match self.validate(live).await {
                Ok(()) => {
                    if let Some(mut live) = guard.take() {
                        // A ping is not a use: the connection keeps its idle age for reaping.
                        live.last_checked = self.clock.now();
                        self.put_back(live);
                    }
                }
                Err(reason) => guard.retire(reason),
            }
        }
        if let Err(error) = self.start_connects() {
            tracing::warn!(pool = %self.name(), %error, "could not refill the pool");
        }
    }

    /// Under the lock: takes out the idle connections to retire or ping, and finds the
    /// checkouts held past the leak threshold.
    #[allow(clippy::type_complexity)]
    fn sweep(
        &self,
        now: Instant,
    ) -> (
        Vec<(Live<C::Connection>, CloseReason)>,
        Vec<Live<C::Connection>>,
        Vec<Leak>,
    ) {
        let opts = &self.options;
        let mut retired = Vec::new();
        let mut pings = Vec::new();
        let mut leaks = Vec::new();
        let now_ms = self.clock.ms_at(now);
        let mut st = self.lock();
        let mut i = 0;
        while i < st.idle.len() {
            let live = &st.idle[i];
            let idle_for = Some(Duration::from_millis(now_ms.saturating_sub(live.last_used)));
            let unchecked_for = Some(Duration::from_millis(live.unchecked_for(now_ms)));
            let reason = if live.expires_at.is_some_and(|at| now_ms >= at) {
                Some(CloseReason::Lifetime)
            } else if st.total > st.min_total()
                && opts
                    .idle_timeout
                    .zip(idle_for)
                    .is_some_and(|(limit, idle)| idle >= limit)
            {
                Some(CloseReason::Idle)
            } else {
                None
            };
            let ping = reason.is_none()
                && opts
                    .keepalive_interval
                    .zip(unchecked_for)
                    .is_some_and(|(every, idle)| idle >= every);
            if reason.is_some() || ping {
                let Some(live) = st.idle.remove(i) else { break };
                st.in_use += 1;
                match reason {
                    Some(reason) => {
                        st.uncount(reason);
                        retired.push((live, reason));
                    }
                    None => pings.push(live),
                }
            } else {
                i += 1;
            }
        }
        if let Some(threshold) = opts.leak_detection_threshold {
            for (_, checkout) in st.checkouts.iter_mut() {
                let held = checkout.since.map(|s| now.saturating_duration_since(s));
                if !checkout.reported && held.is_some_and(|h| h >= threshold) {
                    checkout.reported = true;
                    leaks.push((checkout.location, held.unwrap_or_default()));
                }
            }
        }
        st.check_invariants();
        (retired, pings, leaks)
    }
}
