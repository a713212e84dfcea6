//! # Implementation details
//!
//! The deadline timer: one task per pool fails waiters whose `acquire_timeout` ran out, so a
//! waiting acquire registers no timer and reads no clock of its own. While anyone waits it
//! runs in rounds (see `WaitQueue::expire`): each round stamps the waiters that queued
//! during it with the time it ended, and the next round comes when the oldest waiter is due
//! or one tick later, whichever is first. It parks while nobody waits (the first waiter
//! wakes it), holds only a `Weak` reference while sleeping, and stops when the pool is
//! dropped.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Inner;
use crate::connector::Connector;
use crate::error::PoolError;
use crate::observer::TimeoutPhase;

impl<C: Connector> Inner<C> {
    /// Starts the timer task once; wakes it when the first waiter queued.
    pub(crate) fn ensure_deadline_timer(self: &Arc<Self>, first: bool) {
        // Ordering: the flag only guards against a second task; see `ensure_maintenance`.
        if !self.timer_started.load(Ordering::Relaxed)
            && !self.timer_started.swap(true, Ordering::Relaxed)
        {
            let notify = Arc::clone(&self.timer_notify);
            if !self.spawn(run(Arc::downgrade(self), notify)) {
                self.timer_started.store(false, Ordering::Relaxed);
            }
        }
        if first {
            // A stored permit if the task is not parked yet: no wakeup is lost.
            self.timer_notify.notify_one();
        }
    }

    /// Runs one round: fails the waiters whose deadline passed; returns when the next round
    /// is due.
    fn expire_waiters(self: &Arc<Self>, now: Instant) -> Option<Instant> {
        let mut st = self.lock();
        let (connecting, last_error) = st.timeout_phase_inputs();
        let phase = if connecting || last_error.is_some() {
            TimeoutPhase::Connecting
        } else {
            TimeoutPhase::Waiting
        };
        let error = PoolError::Timeout {
            pool: self.name().clone(),
            phase,
            elapsed: self.options.acquire_timeout,
            last_error,
        };
        let (failed, next) = st.expire(
            now,
            self.options.acquire_timeout,
            self.deadline_tick(),
            &error,
        );
        drop(st);
        if !failed.is_empty() {
            tracing::warn!(pool = %self.name(), phase = phase.as_str(), waiters = failed.len(), "acquire timed out");
        }
        // Each timeout is reported before its waiter can see it.
        for handoff in failed {
            self.timed_out(phase);
            self.complete(handoff);
        }
        next
    }

    /// How often the deadline timer runs while callers wait: a hundredth of
    /// `acquire_timeout`, between 1 and 10 ms. It bounds how late a waiter's timeout fires.
    fn deadline_tick(&self) -> Duration {
        (self.options.acquire_timeout / 100)
            .clamp(Duration::from_millis(1), Duration::from_millis(10))
    }
}

async fn run<C: Connector>(weak: Weak<Inner<C>>, notify: Arc<Notify>) {
    loop {
        let next = match weak.upgrade() {
            Some(inner) => inner.expire_waiters(Instant::now()),
            None => return,
        };
        match next {
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = notify.notified() => {}
                }
            }
            None => notify.notified().await,
        }
    }
}
