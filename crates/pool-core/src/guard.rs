//! # Implementation details
//!
//! RAII guards that keep the counts right when a future is dropped at an await point: a
//! waiter's queue slot, and a connection the pool holds while validating or pinging it.

use std::sync::Arc;
use std::task::{Context, Poll};

use crate::connector::Connector;
use crate::inner::Inner;
use crate::internals::{Delivery, Live, Slot};
use crate::stats::CloseReason;

/// A caller's place in the FIFO queue. Dropped before its delivery is taken, it leaves the
/// queue and passes anything delivered meanwhile on to the next waiter.
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
            return Poll::Ready(Err(self.inner.closed_error()));
        }
        let polled = self.slot.register(cx);
        if polled.is_ready() {
            self.queued = false;
        }
        polled
    }
}

impl<C: Connector> Drop for WaiterGuard<'_, C> {
    /// Leaves the queue. Once picked, the delivery is in the slot (a connection is taken
    /// back for the next waiter or the idle queue; an error is dropped), or whoever fills the
    /// slot takes it back.
    fn drop(&mut self) {
        if !self.queued || self.inner.lock().remove_waiter(&self.slot) {
            return;
        }
        if let Some(Ok(handoff)) = self.slot.abandon() {
            self.inner.take_back(handoff);
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
            self.inner.retire(live, reason);
        }
    }
}

impl<C: Connector> Drop for LiveGuard<'_, C> {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            self.inner.retire(live, CloseReason::Discarded);
        }
    }
}
