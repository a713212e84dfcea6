//! # Implementation details
//!
//! The guards that keep the counts right when a future is dropped at an await point (or its
//! runtime goes away): a waiter's place in the queue, a connection the pool holds while it
//! does I/O on it, a connect reservation, and the maintenance task's running flag. The lock
//! guard is the state's own (`lock.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use super::Inner;
use super::live::Live;
use super::waiters::{Delivery, Queued, Slot};
use crate::connector::Connector;
use crate::stats::CloseReason;

/// A caller's place in the queue. Dropped before its delivery is taken, it leaves the queue
/// and passes anything delivered meanwhile on to the next waiter.
pub(crate) struct WaiterGuard<'a, C: Connector> {
    inner: &'a Arc<Inner<C>>,
    /// Whether its delivery has yet to be taken.
    queued: bool,
    slot: Arc<Slot<C::Connection>>,
    ticket: u64,
}

impl<'a, C: Connector> WaiterGuard<'a, C> {
    /// Guards the waiter `queued`.
    pub(crate) fn new(inner: &'a Arc<Inner<C>>, queued: Queued<C::Connection>) -> Self {
        WaiterGuard {
            inner,
            queued: true,
            slot: queued.slot,
            ticket: queued.ticket,
        }
    }

    /// The delivery, once it arrived; taken from the waiter's own slot, without the pool's
    /// lock (the first poll registers the task's waker there).
    pub(crate) fn poll_delivery(&mut self, cx: &mut Context<'_>) -> Poll<Delivery<C::Connection>> {
        if !self.queued {
            return Poll::Ready(Delivery::Error(self.inner.closed_error()));
        }
        let polled = self.slot.poll_delivery(cx);
        if polled.is_ready() {
            self.queued = false;
        }
        polled
    }
}

impl<C: Connector> Drop for WaiterGuard<'_, C> {
    /// Leaves the queue. Once picked, the delivery is in the slot (a connection is taken
    /// back for the next waiter or the idle queue; an error is dropped), or whoever completes
    /// the hand-off takes it back.
    fn drop(&mut self) {
        if !self.queued || self.inner.lock().leave_queue(self.ticket) {
            return;
        }
        if let Some(Delivery::Connection(checkout)) = self.slot.abandon() {
            self.inner.take_back(checkout);
        }
    }
}

/// A connection the pool holds as in use while it does I/O on it (validation, a ping, the
/// cleanup of a returned connection). Dropped while holding it (the future was cancelled
/// mid-round-trip, or its runtime shut down), the connection cannot be trusted and goes.
pub(crate) struct LiveGuard<C: Connector> {
    inner: Arc<Inner<C>>,
    live: Option<Live<C::Connection>>,
}

impl<C: Connector> LiveGuard<C> {
    pub(crate) fn new(inner: &Arc<Inner<C>>, live: Live<C::Connection>) -> Self {
        LiveGuard {
            inner: Arc::clone(inner),
            live: Some(live),
        }
    }

    pub(crate) fn live_mut(&mut self) -> Option<&mut Live<C::Connection>> {
        self.live.as_mut()
    }

    pub(crate) fn take(mut self) -> Option<Live<C::Connection>> {
        self.live.take()
    }

    pub(crate) fn retire(mut self, reason: CloseReason) {
        if let Some(live) = self.live.take() {
            self.inner.lock().retire(live, reason);
        }
    }
}

impl<C: Connector> Drop for LiveGuard<C> {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            self.inner.lock().retire(live, CloseReason::Discarded);
        }
    }
}

/// A connect reservation (counted in `connecting`) held by a connect task from its spawn,
/// through its attempts and backoffs, to its outcome; given back if the task ends otherwise
/// (its runtime shut down, or it was never polled). Holds only a `Weak` reference, so a
/// task backing off does not keep a dropped pool alive.
pub(crate) struct Reservation<C: Connector> {
    inner: Weak<Inner<C>>,
    armed: bool,
}

impl<C: Connector> Reservation<C> {
    /// Guards one reservation already counted.
    pub(crate) fn new(inner: &Arc<Inner<C>>) -> Self {
        Reservation {
            inner: Arc::downgrade(inner),
            armed: true,
        }
    }

    pub(crate) fn pool(&self) -> Option<Arc<Inner<C>>> {
        self.inner.upgrade()
    }

    /// The state already settled the reservation (the connect's outcome was booked, or the
    /// reservation given back).
    pub(crate) fn settled(mut self) {
        self.armed = false;
    }
}

impl<C: Connector> Drop for Reservation<C> {
    fn drop(&mut self) {
        if self.armed
            && let Some(inner) = self.inner.upgrade()
        {
            inner.lock().unreserve_connects(1);
        }
    }
}

/// Set while a background task (maintenance, the deadline timer) exists: cleared when the
/// task returns, panics, or is dropped unpolled (its runtime shut down, or no runtime to
/// spawn on), so the pool starts it again when it next needs it.
pub(crate) struct Running(Arc<AtomicBool>);

impl Running {
    /// Claims `flag` for a new task; `None` while one runs.
    pub(crate) fn claim(flag: &Arc<AtomicBool>) -> Option<Self> {
        // Ordering: the flag only keeps a second task from starting; nothing else is
        // published with it. Read first: waiting acquires call this, and a failed
        // compare-exchange would still write the shared line.
        if flag.load(Ordering::Relaxed)
            || flag
                .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(Running(Arc::clone(flag)))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}
