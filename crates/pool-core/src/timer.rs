//! # Implementation details
//!
//! The deadline timer: one task per pool fails waiters whose `acquire_timeout` ran out, so a
//! waiting acquire registers no timer of its own. It sleeps until the earliest deadline in
//! the queue (woken early when a waiter with an earlier one arrives), holds only a `Weak`
//! reference while sleeping, and stops when the pool is dropped.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::connector::Connector;
use crate::inner::Inner;
use crate::observer::TimeoutPhase;

impl<C: Connector> Inner<C> {
    /// Starts the timer task once; wakes it when a waiter's deadline is earlier than the
    /// one it sleeps for.
    pub(crate) fn ensure_deadline_timer(self: &Arc<Self>, rearm: bool) {
        // Ordering: the flag only guards against a second task; see `ensure_maintenance`.
        if !self.timer_started.load(Ordering::Relaxed)
            && !self.timer_started.swap(true, Ordering::Relaxed)
        {
            let notify = Arc::clone(&self.timer_notify);
            if !self.spawn(run(Arc::downgrade(self), notify)) {
                self.timer_started.store(false, Ordering::Relaxed);
            }
        }
        if rearm {
            // A stored permit if the task is not parked yet: no wakeup is lost.
            self.timer_notify.notify_one();
        }
    }

    /// Fails the waiters whose deadline passed; returns the next deadline to sleep until.
    fn expire_waiters(&self, now: Instant) -> Option<Instant> {
        let mut st = self.lock();
        let (connecting, last_error) = st.timeout_phase_inputs();
        let phase = if connecting || last_error.is_some() {
            TimeoutPhase::Connecting
        } else {
            TimeoutPhase::Waiting
        };
        let error = crate::error::PoolError::Timeout {
            pool: self.name().clone(),
            phase,
            elapsed: self.options.acquire_timeout,
            last_error,
        };
        let wakers = st.expire(now, &error);
        let next = st.arm_next_deadline();
        drop(st);
        if !wakers.is_empty() {
            tracing::warn!(pool = %self.name(), phase = phase.as_str(), waiters = wakers.len(), "acquire timed out");
        }
        for waker in wakers {
            self.timed_out(phase);
            waker.wake();
        }
        next
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
