//! # Implementation details
//!
//! The pool's bookkeeping, always behind the one lock in `Inner`: idle connections, counts,
//! the FIFO queue of waiters, the checkouts and the cumulative counters. Nothing here awaits
//! or does I/O; callers take the wakers it returns and wake them after unlocking.

use std::collections::VecDeque;
use std::panic::Location;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{PoolError, SharedError};
use crate::slab::Slab;
use crate::stats::{CloseReason, ClosedCounts, PoolStats};

/// An open connection and what the pool knows about it, boxed once when it opens: checkouts
/// and releases then move a pointer, not the connection and its bookkeeping.
pub(crate) type Live<T> = Box<LiveState<T>>;

/// What [`Live`] points to.
#[derive(Debug)]
pub(crate) struct LiveState<T> {
    pub(crate) conn: T,
    pub(crate) backend_pid: Option<i32>,
    /// Whether `backend_pid` is settled (given at connect, or asked once).
    pub(crate) pid_asked: bool,
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

impl<T> LiveState<T> {
    /// Milliseconds (coarse) since the connection was last used or seen working.
    pub(crate) fn unchecked_for(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_used.max(self.last_checked))
    }
}

/// What a waiter receives: a connection or an error.
pub(crate) type Delivery<T> = Result<Handoff<T>, PoolError>;

/// Where one waiter's delivery lands. The pool picks the waiter under its lock and fills the
/// slot after releasing it; the woken waiter takes the delivery under the slot's small lock
/// only. Neither the waker nor the delivery is touched under the pool's lock, so its critical
/// sections stay short when several cores acquire at once. Each waiter gets a fresh slot:
/// recycling them would touch lines other cores last wrote while the pool's lock is held.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

#[derive(Debug)]
struct SlotState<T> {
    waker: Option<Waker>,
    delivery: Option<Delivery<T>>,
    /// The waiter gave up after it was picked but before its delivery landed: the one who
    /// fills the slot takes the delivery back.
    abandoned: bool,
}

/// A delivery for a picked waiter, to put in its slot once the pool's lock is released
/// (`Inner::hand_over`).
pub(crate) type Handover<T> = (Arc<Slot<T>>, Delivery<T>);

impl<T> Slot<T> {
    fn new() -> Self {
        Slot {
            state: Mutex::new(SlotState {
                waker: None,
                delivery: None,
                abandoned: false,
            }),
        }
    }

    /// No user code runs under the lock: a poisoned one is used as is.
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the delivery and returns the waker to wake; gives the delivery back if the
    /// waiter abandoned the slot.
    pub(crate) fn fill(&self, delivery: Delivery<T>) -> Result<Option<Waker>, Delivery<T>> {
        let mut state = self.lock();
        if std::mem::take(&mut state.abandoned) {
            return Err(delivery);
        }
        state.delivery = Some(delivery);
        Ok(state.waker.take())
    }

    /// The delivery if it arrived, else the waker is stored for it.
    pub(crate) fn register(&self, cx: &Context<'_>) -> Poll<Delivery<T>> {
        let mut state = self.lock();
        if let Some(delivery) = state.delivery.take() {
            return Poll::Ready(delivery);
        }
        match &mut state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The waiter gives up after being picked: takes the delivery if it landed, else leaves
    /// word for the one filling the slot to take it back.
    pub(crate) fn abandon(&self) -> Option<Delivery<T>> {
        let mut state = self.lock();
        state.waker = None;
        let delivery = state.delivery.take();
        state.abandoned = delivery.is_none();
        delivery
    }
}

#[derive(Debug)]
struct Waiter<T> {
    slot: Arc<Slot<T>>,
    location: &'static Location<'static>,
    /// The deadline timer's round during which it queued (see `Internals::expire`).
    round: u64,
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
    /// Picked by the oldest waiter: hand it over once the lock is released.
    Handed(Handover<T>),
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
    /// Queued waiters in arrival order (one leaves when it is served, fails or gives up).
    queue: VecDeque<Waiter<T>>,
    pub(crate) checkouts: Slab<Checkout>,
    pub(crate) closing: bool,
    pub(crate) last_connect_error: Option<SharedError>,
    pub(crate) consecutive_failures: u32,
    pub(crate) counters: Counters,
    /// The deadline timer's current round: waiters are stamped with it instead of reading
    /// the clock, which would cost more than the rest of a waiting acquire's bookkeeping.
    round: u64,
    /// When each round still referenced by a queued waiter ended, oldest first: every waiter
    /// of round `r` had queued by then.
    rounds_ended: VecDeque<(u64, Instant)>,
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
            queue: VecDeque::new(),
            checkouts: Slab::default(),
            closing: false,
            last_connect_error: None,
            consecutive_failures: 0,
            counters: Counters::default(),
            round: 0,
            rounds_ended: VecDeque::new(),
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

    /// Queues a waiter. Returns the slot its delivery lands in (the waiter registers its
    /// waker there; it also names the waiter in `remove_waiter`), and whether the deadline
    /// timer must be woken (nobody waited before: it may be parked).
    pub(crate) fn push_waiter(
        &mut self,
        location: &'static Location<'static>,
    ) -> (Arc<Slot<T>>, bool) {
        self.counters.waited += 1;
        let first = self.queue.is_empty();
        let slot = Arc::new(Slot::new());
        self.queue.push_back(Waiter {
            slot: Arc::clone(&slot),
            location,
            round: self.round,
        });
        (slot, first)
    }

    /// One round of the deadline timer at `now`: ends the current round (every waiter queued
    /// so far arrived by `now`), then fails with `error` each waiter whose round ended at
    /// least `timeout` ago. Returns their hand-overs and when the next round is due (`tick`
    /// from now at the latest while anyone waits; `None` when nobody does).
    ///
    /// A waiter's deadline counts from the end of its round, never from before it queued:
    /// it times out no earlier than `timeout` after queuing, and at most one `tick` (plus
    /// the timer's own lateness) after.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        timeout: Duration,
        tick: Duration,
        error: &PoolError,
    ) -> (Vec<Handover<T>>, Option<Instant>) {
        let mut failed = Vec::new();
        if self.queue.is_empty() {
            self.rounds_ended.clear();
            return (failed, None);
        }
        self.rounds_ended.push_back((self.round, now));
        self.round += 1;
        // The queue is in arrival order, so rounds never decrease along it: only its front
        // can be due.
        let next = loop {
            let Some(round) = self.queue.front().map(|w| w.round) else {
                break None;
            };
            while self.rounds_ended.front().is_some_and(|(r, _)| *r < round) {
                self.rounds_ended.pop_front();
            }
            let Some(&(_, arrived_by)) = self.rounds_ended.front() else {
                break Some(now + tick);
            };
            let deadline = arrived_by + timeout;
            if deadline > now {
                break Some(deadline.min(now + tick));
            }
            self.counters.acquire_timeouts += 1;
            if let Some((slot, _)) = self.pick_oldest() {
                failed.push((slot, Err(error.clone())));
            }
        };
        (failed, next)
    }

    /// What a waiting timeout reports: whether connects were under way, and the last connect
    /// error while connects fail.
    pub(crate) fn timeout_phase_inputs(&self) -> (bool, Option<SharedError>) {
        let last_error = (self.consecutive_failures > 0)
            .then(|| self.last_connect_error.clone())
            .flatten();
        (self.connecting > 0, last_error)
    }

    /// Takes out a waiter that gave up (its `slot` from `push_waiter`) if it is still
    /// queued; false when it was already picked (its delivery is in its slot or on the way:
    /// see `Slot::abandon`).
    pub(crate) fn remove_waiter(&mut self, slot: &Arc<Slot<T>>) -> bool {
        let Some(pos) = self.queue.iter().position(|w| Arc::ptr_eq(&w.slot, slot)) else {
            return false;
        };
        self.queue.remove(pos);
        true
    }

    /// Undoes the checkout of a connection delivered to a waiter that gave up; the
    /// connection is still counted as in use.
    pub(crate) fn undo_handoff(&mut self, handoff: Handoff<T>) -> Live<T> {
        self.checkouts.remove(handoff.checkout);
        self.counters.acquired -= 1;
        handoff.live
    }

    /// Picks the oldest waiter for a connection (registered as its checkout) or an error;
    /// gives the item back if nobody waits.
    fn deliver(
        &mut self,
        item: Result<Live<T>, PoolError>,
        since: Option<Instant>,
    ) -> Result<Handover<T>, Result<Live<T>, PoolError>> {
        let Some((slot, location)) = self.pick_oldest() else {
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
        Ok((slot, delivery))
    }

    /// Takes the oldest waiter out of the queue: its slot (to fill once the lock is
    /// released) and where it called `acquire()`.
    fn pick_oldest(&mut self) -> Option<(Arc<Slot<T>>, &'static Location<'static>)> {
        let waiter = self.queue.pop_front()?;
        Some((waiter.slot, waiter.location))
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
            Ok(handover) => Released::Handed(handover),
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
    pub(crate) fn fail_oldest(&mut self, error: PoolError) -> Option<Handover<T>> {
        self.deliver(Err(error), None).ok()
    }

    /// Fails every waiter (the pool is closing).
    pub(crate) fn fail_all(&mut self, error: &PoolError) -> Vec<Handover<T>> {
        let mut failed = Vec::new();
        while let Ok(handover) = self.deliver(Err(error.clone()), None) {
            failed.push(handover);
        }
        failed
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

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live<()> {
        Box::new(LiveState {
            conn: (),
            backend_pid: None,
            pid_asked: true,
            created_at: Instant::now(),
            expires_at: None,
            use_count: 0,
            last_used: 0,
            last_checked: 0,
        })
    }

    /// A pool of one connection, in use.
    fn busy() -> Internals<()> {
        let mut st = Internals::new(1, 0);
        st.total = 1;
        st.in_use = 1;
        st
    }

    fn picked(released: Released<()>) -> Handover<()> {
        match released {
            Released::Handed(handover) => handover,
            other => panic!("not handed to the waiter: {other:?}"),
        }
    }

    #[test]
    fn a_waiter_that_gives_up_before_its_delivery_lands_gets_it_taken_back() {
        let mut st = busy();
        let (first_slot, is_first) = st.push_waiter(Location::caller());
        assert!(is_first);
        let (slot, delivery) = picked(st.release(live(), None));
        assert!(
            Arc::ptr_eq(&slot, &first_slot),
            "the oldest waiter is picked"
        );
        let (second_slot, _) = st.push_waiter(Location::caller());

        // The first waiter gives up before the releaser fills its slot ...
        assert!(!st.remove_waiter(&first_slot), "it was picked already");
        assert!(first_slot.abandon().is_none(), "nothing landed yet");
        // ... so the releaser gets the connection back instead of losing it.
        let Err(Ok(handoff)) = slot.fill(delivery) else {
            panic!("an abandoned slot must refuse the delivery");
        };
        let _live = st.undo_handoff(handoff);
        assert_eq!(
            st.counters.acquired, 0,
            "the undone checkout is not counted"
        );
        assert_eq!(st.waiting(), 1, "the newer waiter keeps its place");

        assert!(st.remove_waiter(&second_slot), "still queued: removed");
        assert_eq!(st.waiting(), 0);
    }

    #[test]
    fn a_waiter_that_gives_up_after_its_delivery_landed_takes_it_itself() {
        let mut st = busy();
        let (slot, _) = st.push_waiter(Location::caller());
        let (to_fill, delivery) = picked(st.release(live(), None));
        assert!(
            matches!(to_fill.fill(delivery), Ok(None)),
            "no waker registered yet"
        );
        assert!(!st.remove_waiter(&slot));
        assert!(matches!(slot.abandon(), Some(Ok(_))));
    }

    #[test]
    fn a_registered_waiter_is_woken_and_takes_its_delivery() {
        let mut st = busy();
        let (slot, _) = st.push_waiter(Location::caller());
        let cx = Context::from_waker(Waker::noop());
        assert!(slot.register(&cx).is_pending());
        let (to_fill, delivery) = picked(st.release(live(), None));
        assert!(
            matches!(to_fill.fill(delivery), Ok(Some(_))),
            "the registered waker is woken"
        );
        drop(to_fill);
        assert!(matches!(slot.register(&cx), Poll::Ready(Ok(_))));
        assert_eq!(st.waiting(), 0);
        assert_eq!(st.counters.acquired, 1);
    }
}
