//! # Implementation details
//!
//! Taking the pool's lock. The guard gives access to the state, checks its invariants before
//! every unlock (debug builds), and runs what a transition leaves for after the unlock:
//! completing hand-offs (filling a waiter's slot, waking it), closing connections that left
//! the pool, starting replacement connects and waking `close()` — as tokio's batch semaphore
//! gathers wakers under its lock and wakes them after releasing it. No code outside the
//! state runs under the lock, and no path writes its own epilogue.

use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, MutexGuard, PoisonError};

use tokio::time::Instant;

use super::Inner;
use super::live::Live;
use super::state::{Released, State};
use super::waiters::Handoff;
use crate::connector::Connector;
use crate::stats::CloseReason;

/// The pool's state, locked. Dropping it unlocks, then runs the deferred work.
pub(crate) struct Locked<'a, C: Connector> {
    // Field order matters: `state` is dropped (unlocked) before `after` runs.
    state: MutexGuard<'a, State<C::Connection>>,
    after: AfterUnlock<'a, C>,
}

impl<C: Connector> Inner<C> {
    /// Locks the state. A panic while locked cannot leave it half-updated (no user code runs
    /// under the lock), so a poisoned lock is used as is: never a panic here.
    #[inline]
    pub(crate) fn lock(self: &Arc<Self>) -> Locked<'_, C> {
        let state = self.state.0.lock().unwrap_or_else(PoisonError::into_inner);
        Locked {
            state,
            after: AfterUnlock {
                inner: self,
                pending: false,
                handoff: ManuallyDrop::new(None),
                rare: ManuallyDrop::new(None),
                wake_close: false,
            },
        }
    }
}

impl<C: Connector> Locked<'_, C> {
    /// A connection counted as in use comes back clean (see `State::give_back`).
    #[inline]
    pub(crate) fn give_back(&mut self, live: Live<C::Connection>, since: Option<Instant>) {
        let released = self.state.give_back(live, since);
        self.follow(released);
    }

    /// A reserved connect opened `live` (see `State::connect_succeeded`).
    pub(crate) fn connect_succeeded(&mut self, live: Live<C::Connection>, since: Option<Instant>) {
        let released = self.state.connect_succeeded(live, since);
        self.follow(released);
    }

    #[inline(always)]
    fn follow(&mut self, released: Released<C::Connection>) {
        match released {
            Released::Handoff(handoff) => self.deliver(handoff),
            Released::Idle => {}
            Released::Close(live, reason) => {
                self.after.rare().to_close.push((live, reason));
                // Evicted or above a lowered max: waiters may need a replacement.
                if reason != CloseReason::PoolClosed {
                    self.start_connects();
                }
            }
        }
    }

    /// A connection counted as in use leaves the pool: it is closed after the unlock, and a
    /// replacement connect starts if the waiters or `min_connections` need one.
    pub(crate) fn retire(&mut self, live: Live<C::Connection>, reason: CloseReason) {
        self.state.leave(reason);
        self.after.rare().to_close.push((live, reason));
        self.start_connects();
    }

    /// Sets `max_connections` and `min_connections`; see `State::resize`.
    pub(crate) fn resize(&mut self, max: u32, min: u32) {
        for live in self.state.resize(max, min) {
            self.after
                .rare()
                .to_close
                .push((live, CloseReason::Resized));
        }
        self.start_connects();
    }

    /// Retires every connection; see `State::evict`.
    pub(crate) fn evict(&mut self) {
        for live in self.state.evict() {
            self.after
                .rare()
                .to_close
                .push((live, CloseReason::Evicted));
        }
        self.start_connects();
    }

    /// Ends a pause; see `State::resume`.
    pub(crate) fn resume(&mut self, since: Option<Instant>) {
        for handoff in self.state.resume(since) {
            self.deliver(handoff);
        }
        self.start_connects();
    }

    /// Reserves the connects the waiters and `min_connections` need; they start after the
    /// unlock (a failure to start one is logged and its reservation given back).
    pub(crate) fn start_connects(&mut self) {
        let now_ms = self.after.inner.clock.now();
        let reserved = self.state.reserve_connects(now_ms);
        if reserved > 0 {
            self.after.rare().connects += reserved;
        }
    }

    /// Completes `handoff` after the unlock.
    #[inline]
    pub(crate) fn deliver(&mut self, handoff: Handoff<C::Connection>) {
        self.after.pending = true;
        match *self.after.handoff {
            None => *self.after.handoff = Some(handoff),
            Some(_) => self.after.rare().more_handoffs.push(handoff),
        }
    }
}

impl<C: Connector> Deref for Locked<'_, C> {
    type Target = State<C::Connection>;

    #[inline]
    fn deref(&self) -> &Self::Target {
        &self.state
    }
}

impl<C: Connector> DerefMut for Locked<'_, C> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.state
    }
}

impl<C: Connector> Drop for Locked<'_, C> {
    #[inline]
    fn drop(&mut self) {
        self.state.check_invariants();
        if self.state.take_close_wake() {
            self.after.wake_close = true;
            self.after.pending = true;
        }
        // The fields drop next, in order: the lock is released, then `after` runs.
    }
}

/// Work a transition leaves for after the unlock.
struct AfterUnlock<'a, C: Connector> {
    inner: &'a Arc<Inner<C>>,
    /// Whether any of the work below is set: the common lock (an idle connection taken or
    /// given back) checks this one flag on its way out.
    pending: bool,
    /// The one hand-off of a release or a connect, without an allocation. This and `rare`
    /// are taken by `run` whenever `pending` is set, and are `None` otherwise: the common
    /// unlock needs no drop glue for them.
    handoff: ManuallyDrop<Option<Handoff<C::Connection>>>,
    /// Everything else, allocated only when some path needs it.
    rare: ManuallyDrop<Option<Box<Rare<C::Connection>>>>,
    wake_close: bool,
}

/// The less common work after an unlock.
struct Rare<T> {
    /// Further hand-offs (timeouts, a closing pool, failed connects).
    more_handoffs: Vec<Handoff<T>>,
    /// Connections that left the pool, already uncounted.
    to_close: Vec<(Live<T>, CloseReason)>,
    /// Connects reserved, to spawn.
    connects: u32,
}

impl<C: Connector> AfterUnlock<'_, C> {
    fn rare(&mut self) -> &mut Rare<C::Connection> {
        self.pending = true;
        self.rare.get_or_insert_with(|| {
            Box::new(Rare {
                more_handoffs: Vec::new(),
                to_close: Vec::new(),
                connects: 0,
            })
        })
    }

    #[cold]
    #[inline(never)]
    fn run_rare(inner: &Arc<Inner<C>>, rare: Rare<C::Connection>) {
        let Rare {
            more_handoffs,
            to_close,
            connects,
        } = rare;
        more_handoffs
            .into_iter()
            .for_each(|handoff| inner.complete(handoff));
        for (live, reason) in to_close {
            inner.close_in_background(live, reason);
        }
        if connects > 0
            && let Err(error) = inner.spawn_connects(connects)
        {
            tracing::warn!(pool = %inner.name(), %error, "could not start a replacement connection");
        }
    }
}

impl<C: Connector> Drop for AfterUnlock<'_, C> {
    #[inline]
    fn drop(&mut self) {
        if self.pending {
            self.run();
        }
    }
}

impl<C: Connector> AfterUnlock<'_, C> {
    /// The deferred work, out of line: a hand-off, the rare work, waking `close()`.
    #[inline(never)]
    fn run(&mut self) {
        let inner = self.inner;
        // Both out first: should one step panic, the rest still drops.
        let (handoff, rare) = (self.handoff.take(), self.rare.take());
        if let Some(handoff) = handoff {
            inner.complete(handoff);
        }
        if let Some(rare) = rare {
            Self::run_rare(inner, *rare);
        }
        if self.wake_close {
            inner.close_notify.notify_waiters();
        }
    }
}
