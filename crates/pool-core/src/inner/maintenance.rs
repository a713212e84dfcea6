//! # Implementation details
//!
//! The background task: reaps idle connections above `min_connections`, retires those past
//! their lifetime, pings idle ones (keepalive), reports leaked checkouts and refills to
//! `min_connections`. It holds a `Weak` reference and stops when the pool is dropped or closed.
//! A `Running` flag moves with it, so the pool can tell whether it still runs. The policy
//! (which idle connection to retire or ping) is `idle_action`; the state applies it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use super::Inner;
use super::guards::{LiveGuard, Running};
use super::live::LiveState;
use super::state::{IdleAction, Swept};
use crate::connector::Connector;
use crate::stats::CloseReason;

type Leak = (&'static std::panic::Location<'static>, Duration);

impl<C: Connector> Inner<C> {
    /// Starts the maintenance task unless it runs (again, if its runtime went away).
    pub(crate) fn ensure_maintenance(self: &Arc<Self>) {
        if let Some(running) = Running::claim(&self.maintenance_running) {
            // Without a runtime the task is dropped at once, and so is its claim.
            let _ = self.spawn(run(Arc::downgrade(self), self.options.tick(), running));
        }
    }

    /// Whether the maintenance task is running.
    pub(crate) fn is_maintenance_running(&self) -> bool {
        // Ordering: see `Running::claim`.
        self.maintenance_running.load(Ordering::Relaxed)
    }
}

async fn run<C: Connector>(weak: Weak<Inner<C>>, tick: Duration, running: Running) {
    let _running = running;
    let mut interval = tokio::time::interval_at(Instant::now() + tick, tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.lock().is_closing() {
            return;
        }
        inner.maintain().await;
    }
}

impl<C: Connector> Inner<C> {
    /// One maintenance pass; every network step in it is bounded.
    pub(crate) async fn maintain(self: &Arc<Self>) {
        let ((retired, pings), leaks) = self.sweep(self.clock.refresh());
        for (live, reason) in retired {
            self.close_in_background(live, reason);
        }
        for (location, held) in leaks {
            tracing::warn!(pool = %self.name(), %location, ?held, "connection checked out longer than leak_detection_threshold (possible leak)");
            self.notify(|obs| obs.on_leak(location, held));
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
        self.start_connects();
    }

    /// Under the lock: takes out the idle connections to retire or ping, and finds the
    /// checkouts held past the leak threshold.
    fn sweep(self: &Arc<Self>, now: Instant) -> (Swept<C::Connection>, Vec<Leak>) {
        let now_ms = self.clock.ms_at(now);
        let mut st = self.lock();
        let swept = st.sweep_idle(|live, above_min| self.idle_action(live, above_min, now_ms));
        let leaks = self
            .options
            .leak_detection_threshold
            .map(|threshold| st.overdue_checkouts(now, threshold))
            .unwrap_or_default();
        (swept, leaks)
    }

    /// The reaping policy: retire a connection past its lifetime, or idle past
    /// `idle_timeout` while the pool holds more than `min_connections`; ping one unchecked
    /// for `keepalive_interval`; keep the rest.
    fn idle_action(
        &self,
        live: &LiveState<C::Connection>,
        above_min: bool,
        now_ms: u64,
    ) -> IdleAction {
        let opts = &self.options;
        let idle_for = Duration::from_millis(now_ms.saturating_sub(live.last_used));
        if live.expires_at.is_some_and(|at| now_ms >= at) {
            IdleAction::Retire(CloseReason::Lifetime)
        } else if above_min && opts.idle_timeout.is_some_and(|limit| idle_for >= limit) {
            IdleAction::Retire(CloseReason::Idle)
        } else if opts
            .keepalive_interval
            .is_some_and(|every| Duration::from_millis(live.unchecked_for(now_ms)) >= every)
        {
            IdleAction::Ping
        } else {
            IdleAction::Keep
        }
    }
}
