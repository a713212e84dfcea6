//! # Implementation details
//!
//! RAII guards that keep the counts right when a future is dropped at an await point: a
//! waiter's queue slot, and a connection the pool holds while validating or pinging it.

use std::sync::Arc;
use std::task::{Context, Poll};

use crate::connector::Connector;
use crate::error::PoolError;
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

    /// Leaves the queue, returning what was delivered meanwhile (a connection is still counted
    /// as in use).
    pub(crate) fn leave(&mut self) -> Option<Result<Live<C::Connection>, PoolError>> {
        if !std::mem::take(&mut self.queued) {
            return None;
        }
        if self.inner.lock().remove_waiter(&self.slot) {
            self.slot.clear();
            return None;
        }
        // Picked: the delivery is in the slot, or whoever fills it takes it back.
        match self.slot.abandon()? {
            Ok(handoff) => Some(Ok(self.inner.lock().undo_handoff(handoff))),
            Err(error) => Some(Err(error)),
        }
    }
}

impl<C: Connector> Drop for WaiterGuard<'_, C> {
    fn drop(&mut self) {
        if let Some(Ok(live)) = self.leave() {
            // Delivered to a caller that is gone: the next waiter (or the idle queue) gets it.
            self.inner.put_back(live);
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
