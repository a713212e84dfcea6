//! # Implementation details
//!
//! The deadline timer: one task per pool fails waiters whose `acquire_timeout` ran out, so a
//! waiting acquire registers no timer and reads no clock of its own. While anyone waits it
//! runs in rounds (see `WaitQueue::expire`): each round stamps the waiters that queued
//! during it with the time it ended, and the next round comes when the oldest waiter is due
//! or one tick later, whichever is first. It parks while nobody waits (the first waiter
//! wakes it), holds only a `Weak` reference while sleeping, and stops when the pool is
//! dropped.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Inner;
use super::guards::Running;
use crate::connector::Connector;

impl<C: Connector> Inner<C> {
    /// Starts the timer task unless it runs (again, if its runtime went away); wakes it
    /// when the first waiter queued.
    pub(crate) fn ensure_deadline_timer(self: &Arc<Self>, first: bool) {
        if let Some(running) = Running::claim(&self.timer_running) {
            let notify = Arc::clone(&self.timer_notify);
            // Without a runtime the task is dropped at once, and so is its claim.
            let _ = self.spawn(run(Arc::downgrade(self), notify, running));
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
        let error = self.waiting_timeout(&st);
        let (failed, next) = st.expire(
            now,
            self.options.acquire_timeout,
            self.deadline_tick(),
            &error,
        );
        drop(st);
        if let Some(phase) = error.timeout_phase() {
            // Each timeout is reported before its waiter can see it.
            self.report_acquire_timeouts(phase, failed.len());
        }
        for handoff in failed {
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

async fn run<C: Connector>(weak: Weak<Inner<C>>, notify: Arc<Notify>, running: Running) {
    let _running = running;
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
