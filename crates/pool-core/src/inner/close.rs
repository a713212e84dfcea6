//! # Implementation details
//!
//! Closing the pool: waiters are failed, idle connections closed, and checked-out connections
//! and connects in flight awaited until the deadline (each closes as it comes back; the lock
//! guard wakes the wait whenever one does).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::Inner;
use super::live::Live;
use crate::close_report::{CheckedOut, CloseReport};
use crate::connector::Connector;
use crate::stats::CloseReason;

impl<C: Connector> Inner<C> {
    /// Closes the pool; see `Pool::close`.
    pub(crate) async fn close(self: &Arc<Self>, deadline: Duration) -> CloseReport {
        let until = Instant::now().checked_add(deadline);
        let (idle, out_at_start, waiters_failed) = self.begin_close();
        tracing::info!(pool = %self.name(), idle = idle.len(), in_use = out_at_start, "closing pool");
        let closed_idle = idle.len() as u32;
        for _ in &idle {
            self.notify(|obs| obs.on_remove(CloseReason::PoolClosed));
        }
        if self.require_runtime().is_ok() {
            self.drain(idle, until).await;
        } else {
            // No timers to wait with: idle connections are dropped (sockets closed) and the
            // report says what is still out.
            drop(idle);
        }
        let (still_checked_out, remaining) = self.still_out();
        for c in &still_checked_out {
            tracing::warn!(pool = %self.name(), checkout = %c, "connection still checked out at close deadline");
        }
        CloseReport {
            pool: self.name().clone(),
            closed_idle,
            returned: out_at_start.saturating_sub(remaining),
            still_checked_out,
            waiters_failed,
        }
    }

    /// Marks the pool closing (waiters are failed after the unlock); returns the idle
    /// connections to close, how many were in use and how many waiters were failed.
    fn begin_close(self: &Arc<Self>) -> (Vec<Live<C::Connection>>, u32, u32) {
        let error = self.closed_error();
        let mut st = self.lock();
        let (failed, idle) = st.begin_close(&error);
        let waiters_failed = failed.len() as u32;
        failed.into_iter().for_each(|handoff| st.deliver(handoff));
        (idle, st.in_use(), waiters_failed)
    }

    /// The checkouts still held, and how many connections are still out.
    fn still_out(self: &Arc<Self>) -> (Vec<CheckedOut>, u32) {
        let st = self.lock();
        (st.checked_out(Instant::now()), st.in_use())
    }

    /// Closes the idle connections and waits for the rest to come back, until `until` (no
    /// limit when `None`: the deadline is past what the clock can hold).
    async fn drain(self: &Arc<Self>, idle: Vec<Live<C::Connection>>, until: Option<Instant>) {
        let closes = join_all(idle.into_iter().map(|live| self.close_bounded(live.conn)));
        let _ = timeout_at(until, closes).await;
        loop {
            let notified = self.close_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_drained() {
                break;
            }
            if timeout_at(until, notified).await.is_none() {
                break;
            }
        }
    }
}

impl<C: Connector> Inner<C> {
    /// Whether nothing is out: no connection in use, no connect in flight.
    fn is_drained(self: &Arc<Self>) -> bool {
        self.lock().outstanding() == 0
    }
}

/// `fut`, or `None` if `until` passes first.
async fn timeout_at<F: Future>(until: Option<Instant>, fut: F) -> Option<F::Output> {
    match until {
        Some(until) => tokio::time::timeout_at(until, fut).await.ok(),
        None => Some(fut.await),
    }
}
