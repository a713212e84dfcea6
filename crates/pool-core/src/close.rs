//! `Pool::close` and its `CloseReport`.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::connector::Connector;
use crate::inner::Inner;
use crate::internals::{Handover, Live};
use crate::pool::Pool;
use crate::stats::CloseReason;

/// A checkout still held by a caller when `close()` gave up waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedOut {
    /// Where `acquire()` was called.
    pub location: &'static Location<'static>,
    /// How long it had been held, when known (leak detection or an observer on).
    pub held: Option<Duration>,
}

impl fmt::Display for CheckedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "acquired at {}", self.location)?;
        if let Some(held) = self.held {
            write!(f, ", held for {held:?}")?;
        }
        Ok(())
    }
}

/// What `close()` did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseReport {
    /// The pool's name.
    pub pool: Arc<str>,
    /// Idle connections closed at once.
    pub closed_idle: u32,
    /// Checked-out connections that came back (and were closed) before the deadline.
    pub returned: u32,
    /// Checkouts still held at the deadline; their connections close when they come back.
    pub still_checked_out: Vec<CheckedOut>,
    /// Waiters woken with the pool-closed error.
    pub waiters_failed: u32,
}

impl CloseReport {
    /// Whether every connection was closed before the deadline.
    pub fn is_complete(&self) -> bool {
        self.still_checked_out.is_empty()
    }
}

impl<C: Connector> Pool<C> {
    /// Closes the pool: new acquires fail with [`PoolError::Closed`](crate::PoolError::Closed),
    /// waiters are woken with it, idle connections are closed, and checked-out connections
    /// are awaited until `deadline` from now (each is closed as it comes back), as are
    /// connects in flight.
    /// Calling it again waits again and reports what is still out.
    ///
    /// # Cancel safety
    /// Cancel safe: the pool is closed from the first poll on; dropping the future only stops
    /// the waiting and the report.
    pub async fn close(&self, deadline: Duration) -> CloseReport {
        let inner = &self.inner;
        let until = Instant::now() + deadline;
        let (failed, idle, out_at_start) = inner.begin_close();
        let waiters_failed = failed.len() as u32;
        failed
            .into_iter()
            .for_each(|handover| inner.hand_over(handover));
        tracing::info!(pool = %inner.name(), idle = idle.len(), in_use = out_at_start, "closing pool");
        let closed_idle = idle.len() as u32;
        if let Some(obs) = inner.observer() {
            idle.iter()
                .for_each(|_| obs.on_remove(CloseReason::PoolClosed));
        }
        if inner.require_runtime().is_ok() {
            inner.drain(idle, until).await;
        } else {
            // No timers to wait with: idle connections are dropped (sockets closed) and the
            // report says what is still out.
            drop(idle);
        }
        let (still_checked_out, remaining) = inner.still_out(Instant::now());
        for c in &still_checked_out {
            tracing::warn!(pool = %inner.name(), checkout = %c, "connection still checked out at close deadline");
        }
        CloseReport {
            pool: inner.name().clone(),
            closed_idle,
            returned: out_at_start.saturating_sub(remaining),
            still_checked_out,
            waiters_failed,
        }
    }
}

/// What closing found: failed waiters to hand their error, idle connections to close, and
/// how many were checked out.
type ClosingState<T> = (Vec<Handover<T>>, Vec<Live<T>>, u32);

impl<C: Connector> Inner<C> {
    /// Marks the pool closing; returns the waiters to wake, the idle connections to close
    /// and how many were checked out.
    fn begin_close(&self) -> ClosingState<C::Connection> {
        let error = self.closed_error();
        let mut st = self.lock();
        st.closing = true;
        let failed = st.fail_all(&error);
        let idle: Vec<_> = st.idle.drain(..).collect();
        st.total -= idle.len() as u32;
        for _ in &idle {
            st.counters.closed.add(CloseReason::PoolClosed);
        }
        st.check_invariants();
        (failed, idle, st.in_use)
    }

    /// Closes the idle connections and waits for the rest to come back, until `until`.
    async fn drain(&self, idle: Vec<Live<C::Connection>>, until: Instant) {
        let closes = join_all(idle.into_iter().map(|live| self.close_bounded(live.conn)));
        let _ = tokio::time::timeout_at(until, closes).await;
        loop {
            let notified = self.close_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.drained() {
                break;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                break;
            }
        }
    }

    /// Whether nothing is out: no checkout, no cleanup, no connect in flight (each in-flight
    /// connect closes its connection when it lands).
    fn drained(&self) -> bool {
        let st = self.lock();
        st.in_use == 0 && st.connecting == 0
    }

    /// The checkouts still held, and how many connections are still out.
    fn still_out(&self, now: Instant) -> (Vec<CheckedOut>, u32) {
        let mut st = self.lock();
        let out = st
            .checkouts
            .iter_mut()
            .map(|(_, c)| CheckedOut {
                location: c.location,
                held: c.since.map(|s| now.saturating_duration_since(s)),
            })
            .collect();
        (out, st.in_use)
    }
}
