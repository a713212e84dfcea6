//! # Implementation details
//!
//! The pool's bookkeeping, always behind the one lock in `Inner`: idle connections, counts,
//! the FIFO queue of waiters, the checkouts and the cumulative counters. Nothing here awaits
//! or does I/O; callers take the wakers it returns and wake them after unlocking.

use std::collections::VecDeque;
use std::panic::Location;
use std::task::{Context, Poll, Waker};

use tokio::time::Instant;

use crate::error::{PoolError, SharedError};
use crate::slab::Slab;
use crate::stats::{CloseReason, ClosedCounts, PoolStats};

/// An open connection and what the pool knows about it.
#[derive(Debug)]
pub(crate) struct Live<T> {
    pub(crate) conn: T,
    pub(crate) backend_pid: Option<i32>,
    pub(crate) created_at: Instant,
    /// `max_lifetime` minus this connection's jitter, in coarse ms.
    pub(crate) expires_at: Option<u64>,
    pub(crate) use_count: u64,
    /// When it was opened or last released, in coarse ms (idle reaping counts from here).
    pub(crate) last_used: u64,
    /// When the pool last saw it work (opened, validated, pinged), in coarse ms.
    pub(crate) last_checked: u64,
}

/// A connection handed to a waiter: already counted as in use and registered as its checkout.
#[derive(Debug)]
pub(crate) struct Handoff<T> {
    pub(crate) live: Live<T>,
    pub(crate) checkout: usize,
    pub(crate) since: Option<Instant>,
}

impl<T> Live<T> {
    /// Milliseconds (coarse) since the connection was last used or seen working.
    pub(crate) fn unchecked_for(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_used.max(self.last_checked))
    }
}

/// What a waiter receives: a connection or an error.
pub(crate) type Delivery<T> = Result<Handoff<T>, PoolError>;

#[derive(Debug)]
struct Waiter<T> {
    waker: Option<Waker>,
    delivery: Option<Delivery<T>>,
    location: &'static Location<'static>,
    deadline: Instant,
}

/// A connection in a caller's hands.
#[derive(Debug)]
pub(crate) struct Checkout {
    pub(crate) location: &'static Location<'static>,
    pub(crate) since: Option<Instant>,
    pub(crate) reported: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) acquired: u64,
    pub(crate) waited: u64,
    pub(crate) created: u64,
    pub(crate) connect_failures: u64,
    pub(crate) acquire_timeouts: u64,
    pub(crate) closed: ClosedCounts,
}

/// Where a released connection went.
#[derive(Debug)]
pub(crate) enum Released<T> {
    /// Handed to the oldest waiter, whose waker is to be woken.
    Handed(Option<Waker>),
    /// Put back into the idle queue.
    Idle,
    /// The pool is closing: close it (already uncounted).
    Close(Live<T>),
}

#[derive(Debug)]
pub(crate) struct Internals<T> {
    /// Idle connections; the back is the most recently released (handed out first, so the
    /// front ages and is reaped).
    pub(crate) idle: VecDeque<Live<T>>,
    /// Open connections: idle + in use.
    pub(crate) total: u32,
    /// Open connections not in `idle`: held by callers, being validated, cleaned or pinged.
    pub(crate) in_use: u32,
    /// Connect tasks in flight (each reserves a slot below `max`).
    pub(crate) connecting: u32,
    waiters: Slab<Waiter<T>>,
    /// Waiter keys in arrival order.
    queue: VecDeque<usize>,
    pub(crate) checkouts: Slab<Checkout>,
    pub(crate) closing: bool,
    pub(crate) last_connect_error: Option<SharedError>,
    pub(crate) consecutive_failures: u32,
    pub(crate) counters: Counters,
    /// The deadline the waiter timer sleeps until (None: it waits for a first waiter).
    armed: Option<Instant>,
    max: u32,
    min: u32,
}

impl<T> Internals<T> {
    pub(crate) fn new(max: u32, min: u32) -> Self {
        Internals {
            idle: VecDeque::with_capacity(max as usize),
            total: 0,
            in_use: 0,
            connecting: 0,
            waiters: Slab::default(),
            queue: VecDeque::new(),
            checkouts: Slab::default(),
            closing: false,
            last_connect_error: None,
            consecutive_failures: 0,
            counters: Counters::default(),
            armed: None,
            max,
            min,
        }
    }

    /// `idle + in_use == total`, `total + connecting <= max`, and never an idle connection
    /// while someone waits.
    #[inline]
    pub(crate) fn check_invariants(&self) {
        debug_assert_eq!(
            self.idle.len() as u32 + self.in_use,
            self.total,
            "idle + in_use == total"
        );
        debug_assert!(
            self.total + self.connecting <= self.max,
            "total + connecting <= max"
        );
        debug_assert!(
            self.idle.is_empty() || self.queue.is_empty(),
            "idle while waiting"
        );
    }

    pub(crate) fn min_total(&self) -> u32 {
        self.min
    }

    pub(crate) fn waiting(&self) -> u32 {
        self.queue.len() as u32
    }

    /// Takes the most recently used idle connection, unless callers are already waiting
    /// (they come first).
    #[inline]
    pub(crate) fn take_idle(&mut self) -> Option<Live<T>> {
        if !self.queue.is_empty() {
            return None;
        }
        let live = self.idle.pop_back()?;
        self.in_use += 1;
        Some(live)
    }

    #[inline]
    pub(crate) fn register_checkout(
        &mut self,
        location: &'static Location<'static>,
        since: Option<Instant>,
    ) -> usize {
        self.counters.acquired += 1;
        self.checkouts.insert(Checkout {
            location,
            since,
            reported: false,
        })
    }

    /// Queues a waiter that `waker` wakes on delivery. Returns its key and whether the deadline timer must be woken (it
    /// sleeps for a later deadline, or none).
    pub(crate) fn push_waiter(
        &mut self,
        location: &'static Location<'static>,
        deadline: Instant,
        waker: Waker,
    ) -> (usize, bool) {
        self.counters.waited += 1;
        let key = self.waiters.insert(Waiter {
            waker: Some(waker),
            delivery: None,
            location,
            deadline,
        });
        self.queue.push_back(key);
        let rearm = self.armed.is_none_or(|armed| deadline < armed);
        if rearm {
            self.armed = Some(deadline);
        }
        (key, rearm)
    }

    /// Fails every queued waiter whose deadline is `now` or earlier with `error`; returns
    /// their wakers.
    pub(crate) fn expire(&mut self, now: Instant, error: &PoolError) -> Vec<Waker> {
        let mut wakers = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            let key = self.queue[i];
            match self.waiters.get_mut(key) {
                Some(w) if w.deadline <= now => {
                    w.delivery = Some(Err(error.clone()));
                    wakers.extend(w.waker.take());
                    self.queue.remove(i);
                    self.counters.acquire_timeouts += 1;
                }
                _ => i += 1,
            }
        }
        wakers
    }

    /// The earliest deadline of a queued waiter, now armed in the timer.
    pub(crate) fn arm_next_deadline(&mut self) -> Option<Instant> {
        let waiters = &mut self.waiters;
        let next = self
            .queue
            .iter()
            .filter_map(|k| waiters.get_mut(*k).map(|w| w.deadline))
            .min();
        self.armed = next;
        next
    }

    /// What a waiting timeout reports: whether connects were under way, and the last connect
    /// error while connects fail.
    pub(crate) fn timeout_phase_inputs(&self) -> (bool, Option<SharedError>) {
        let last_error = (self.consecutive_failures > 0)
            .then(|| self.last_connect_error.clone())
            .flatten();
        (self.connecting > 0, last_error)
    }

    /// Polls a waiter: its delivery if one arrived, else stores the waker.
    pub(crate) fn poll_waiter(&mut self, key: usize, cx: &mut Context<'_>) -> Poll<Delivery<T>> {
        let Some(waiter) = self.waiters.get_mut(key) else {
            // Unreachable while the guard holds the key; fail safe rather than hang.
            return Poll::Ready(Err(PoolError::Closed {
                pool: "unknown".into(),
            }));
        };
        if waiter.delivery.is_some() {
            let waiter = self.waiters.remove(key).and_then(|w| w.delivery);
            return Poll::Ready(waiter.unwrap_or_else(|| {
                Err(PoolError::Closed {
                    pool: "unknown".into(),
                })
            }));
        }
        match &mut waiter.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Removes a waiter that gave up. A connection delivered to it meanwhile is returned (its
    /// checkout undone), still counted as in use.
    pub(crate) fn remove_waiter(&mut self, key: usize) -> Option<Result<Live<T>, PoolError>> {
        let waiter = self.waiters.remove(key)?;
        match waiter.delivery {
            None => {
                if let Some(pos) = self.queue.iter().position(|k| *k == key) {
                    self.queue.remove(pos);
                }
                None
            }
            Some(Ok(handoff)) => {
                self.checkouts.remove(handoff.checkout);
                self.counters.acquired -= 1;
                Some(Ok(handoff.live))
            }
            Some(Err(error)) => Some(Err(error)),
        }
    }

    /// Hands a connection (registered as the waiter's checkout) or an error to the oldest
    /// waiter, returning its waker; gives it back if nobody waits.
    fn deliver(
        &mut self,
        item: Result<Live<T>, PoolError>,
        since: Option<Instant>,
    ) -> Result<Option<Waker>, Result<Live<T>, PoolError>> {
        let Some(key) = self.queue.pop_front() else {
            return Err(item);
        };
        let Some(location) = self.waiters.get_mut(key).map(|w| w.location) else {
            return Err(item);
        };
        let delivery = match item {
            Ok(live) => Ok(Handoff {
                live,
                checkout: self.register_checkout(location, since),
                since,
            }),
            Err(error) => Err(error),
        };
        let waiter = self.waiters.get_mut(key);
        Ok(waiter.and_then(|w| {
            w.delivery = Some(delivery);
            w.waker.take()
        }))
    }

    /// A connection counted as in use comes back clean. `since` is the checkout time for a
    /// waiter that gets it (read only when leak detection or an observer needs it).
    pub(crate) fn release(&mut self, live: Live<T>, since: Option<Instant>) -> Released<T> {
        if self.closing {
            self.in_use -= 1;
            self.total -= 1;
            self.counters.closed.add(CloseReason::PoolClosed);
            return Released::Close(live);
        }
        if self.queue.is_empty() {
            // Nobody waits (the common case): straight back, without a hand-off attempt.
            self.in_use -= 1;
            self.idle.push_back(live);
            return Released::Idle;
        }
        match self.deliver(Ok(live), since) {
            Ok(waker) => Released::Handed(waker),
            Err(Ok(live)) => {
                self.in_use -= 1;
                self.idle.push_back(live);
                Released::Idle
            }
            Err(Err(_)) => unreachable_ok(),
        }
    }

    /// A connect task finished with a new connection.
    pub(crate) fn add_new(&mut self, live: Live<T>, since: Option<Instant>) -> Released<T> {
        self.connecting -= 1;
        self.counters.created += 1;
        self.consecutive_failures = 0;
        self.total += 1;
        self.in_use += 1;
        self.release(live, since)
    }

    /// A connection counted as in use leaves the pool.
    pub(crate) fn uncount(&mut self, reason: CloseReason) {
        self.in_use -= 1;
        self.total -= 1;
        self.counters.closed.add(reason);
    }

    /// Fails the oldest waiter with `error` (a connect error it should see at once).
    pub(crate) fn fail_oldest(&mut self, error: PoolError) -> Option<Waker> {
        self.deliver(Err(error), None).ok().flatten()
    }

    /// Fails every waiter (the pool is closing).
    pub(crate) fn fail_all(&mut self, error: &PoolError) -> Vec<Waker> {
        let mut wakers = Vec::new();
        while let Ok(w) = self.deliver(Err(error.clone()), None) {
            wakers.extend(w);
        }
        wakers
    }

    /// How many connect tasks to start now, already reserved: enough for every waiter and
    /// for `min_connections`, within `max_connections`.
    pub(crate) fn reserve_connects(&mut self) -> u32 {
        if self.closing {
            return 0;
        }
        let want = self.waiting().max(self.min.saturating_sub(self.total));
        let room = self.max - self.total - self.connecting;
        let n = want.saturating_sub(self.connecting).min(room);
        self.connecting += n;
        n
    }

    /// Whether a connect task that just failed should try again (someone still needs it).
    pub(crate) fn still_needed(&self) -> bool {
        !self.closing && self.connecting <= self.waiting().max(self.min.saturating_sub(self.total))
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            total: self.total,
            idle: self.idle.len() as u32,
            in_use: self.in_use,
            waiting: self.waiting(),
            max: self.max,
            min: self.min,
            closing: self.closing,
            acquired: self.counters.acquired,
            waited: self.counters.waited,
            created: self.counters.created,
            connect_failures: self.counters.connect_failures,
            acquire_timeouts: self.counters.acquire_timeouts,
            closed: self.counters.closed,
        }
    }
}

/// `deliver(Ok(..))` gives back only what it was given.
#[cold]
fn unreachable_ok<T>() -> Released<T> {
    Released::Idle
}
