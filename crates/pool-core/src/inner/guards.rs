//! # Implementation details
//!
//! The guards that keep the counts right when a future is dropped at an await point (or its
//! runtime goes away): a waiter's place in the queue, a connection the pool holds while it
//! does I/O on it, a connect reservation, and the maintenance task's running flag. The lock
//! guard is the state's own (`lock.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use super::Inner;
use super::live::Live;
use super::waiters::{Delivery, Slot};
use crate::connector::Connector;
use crate::stats::CloseReason;

/// A caller's place in the queue. Dropped before its delivery is taken, it leaves the queue
/// and passes anything delivered meanwhile on to the next waiter.
pub(crate) struct WaiterGuard<'a, C: Connector> {
    inner: &'a Arc<Inner<C>>,
    /// Whether its delivery has yet to be taken.
    queued: bool,
    slot: Arc<Slot<C::Connection>>,
}

impl<'a, C: Connector> WaiterGuard<'a, C> {
    /// Guards the waiter queued with `slot`.
    pub(crate) fn new(inner: &'a Arc<Inner<C>>, slot: Arc<Slot<C::Connection>>) -> Self {
        WaiterGuard {
            inner,
            queued: true,
            slot,
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
        if !self.queued || self.inner.lock().leave_queue(&self.slot) {
            return;
        }
        if let Some(Delivery::Connection(checkout)) = self.slot.abandon() {
            self.inner.take_back(checkout);
        }
    }
}

/// A connection the pool holds as in use while it does I/O on it. Dropped while holding it
/// (the future was cancelled mid-round-trip), the connection cannot be trusted and goes.
pub(crate) struct LiveGuard<'a, C: Connector> {
    inner: &'a Arc<Inner<C>>,
    live: Option<Live<C::Connection>>,
}

impl<'a, C: Connector> LiveGuard<'a, C> {
    pub(crate) fn new(inner: &'a Arc<Inner<C>>, live: Live<C::Connection>) -> Self {
        LiveGuard {
            inner,
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

impl<C: Connector> Drop for LiveGuard<'_, C> {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            self.inner.lock().retire(live, CloseReason::Discarded);
        }
    }
}

/// A connect reservation held by a connect task; given back if the task ends without
/// reaching its outcome (the runtime shut down mid-connect).
pub(crate) struct Reservation<C: Connector> {
    inner: Option<Arc<Inner<C>>>,
}

impl<C: Connector> Reservation<C> {
    pub(crate) fn new(inner: &Arc<Inner<C>>) -> Self {
        Reservation {
            inner: Some(Arc::clone(inner)),
        }
    }

    /// The connect reached its outcome, which settles the reservation.
    pub(crate) fn settled(mut self) {
        self.inner = None;
    }
}

impl<C: Connector> Drop for Reservation<C> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.lock().unreserve_connects(1);
        }
    }
}

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
