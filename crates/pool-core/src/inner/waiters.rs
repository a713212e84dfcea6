//! # Implementation details
//!
//! The queue of waiters and the hand-off of a connection (or an error) to one of them, in
//! three words:
//!
//! - a **slot** is where one waiter's delivery lands; the waiter registers its waker there;
//! - a **delivery** is what lands: a checked-out connection or an error;
//! - a **hand-off** is a delivery addressed to a waiter the pool picked under its lock, to
//!   complete once the lock is released.
//!
//! The pool picks the oldest waiter under its lock and completes the hand-off after releasing
//! it; the woken waiter takes the delivery under the slot's small lock only. Neither the waker
//! nor the delivery is touched under the pool's lock, so its critical sections stay short when
//! several cores acquire at once. Each waiter gets a fresh slot: recycling them would touch
//! lines other cores last wrote while the pool's lock is held.
//!
//! A waiter that gives up after it was picked but before its delivery landed leaves word in
//! the slot; whoever completes the hand-off then gets a connection back (to give to the next
//! waiter) instead of losing it.

use std::collections::VecDeque;
use std::panic::Location;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use super::live::Checkout;
use crate::error::PoolError;

/// What a waiter receives.
#[derive(Debug)]
pub(crate) enum Delivery<T> {
    /// A connection, already counted as in use and registered as the waiter's checkout.
    Connection(Checkout<T>),
    /// Why the waiter gets no connection (timeout, closed pool, refused credentials).
    Error(PoolError),
}

/// A delivery addressed to a picked waiter, to complete once the pool's lock is released.
#[derive(Debug)]
pub(crate) struct Handoff<T> {
    slot: Arc<Slot<T>>,
    delivery: Delivery<T>,
}

impl<T> Handoff<T> {
    /// Puts the delivery into the waiter's slot and wakes the waiter. A connection for a
    /// waiter that gave up meanwhile comes back to the caller, still registered as that
    /// waiter's checkout; an error for one is dropped.
    pub(crate) fn complete(self) -> Option<Checkout<T>> {
        match self.slot.fill(self.delivery) {
            Ok(waker) => {
                if let Some(waker) = waker {
                    waker.wake();
                }
                None
            }
            Err(Delivery::Connection(checkout)) => Some(checkout),
            Err(Delivery::Error(_)) => None,
        }
    }
}

/// Where one waiter's delivery lands.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

#[derive(Debug)]
struct SlotState<T> {
    waker: Option<Waker>,
    delivery: Option<Delivery<T>>,
    /// The waiter gave up after it was picked but before its delivery landed: the one who
    /// completes the hand-off takes the delivery back.
    abandoned: bool,
}

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

    /// Stores the delivery and returns the waker to wake (outside the slot's lock); gives
    /// the delivery back if the waiter abandoned the slot.
    fn fill(&self, delivery: Delivery<T>) -> Result<Option<Waker>, Delivery<T>> {
        let mut state = self.lock();
        if std::mem::take(&mut state.abandoned) {
            return Err(delivery);
        }
        state.delivery = Some(delivery);
        Ok(state.waker.take())
    }

    /// The delivery if it arrived, else the waker is stored for it.
    pub(crate) fn poll_delivery(&self, cx: &Context<'_>) -> Poll<Delivery<T>> {
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
    /// word for the one completing the hand-off to take it back.
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
    /// `None` once the waiter gave up: the entry stays until it reaches the front, so
    /// leaving the queue costs O(1) however long it is.
    slot: Option<Arc<Slot<T>>>,
    location: &'static Location<'static>,
    /// The deadline timer's round during which it queued (see `WaitQueue::expire`).
    round: u64,
}

/// A caller's place in the queue: where its delivery lands, and its ticket (which names it
/// in `WaitQueue::remove`).
#[derive(Debug)]
pub(crate) struct Queued<T> {
    pub(crate) slot: Arc<Slot<T>>,
    pub(crate) ticket: u64,
    /// Whether it is the only waiter (the deadline timer may be parked).
    pub(crate) first: bool,
}

/// Waiters in arrival order (one leaves when it is served, fails or gives up), and the
/// deadline timer's rounds that time them.
///
/// Invariant: the front entry, if any, is a waiter still queued.
#[derive(Debug)]
pub(crate) struct WaitQueue<T> {
    queue: VecDeque<Waiter<T>>,
    /// The ticket of the front entry: ticket `t` sits at index `t - head`.
    head: u64,
    /// Waiters still queued (entries of waiters that gave up are not counted).
    len: u32,
    /// The deadline timer's current round: waiters are stamped with it instead of reading
    /// the clock, which would cost more than the rest of a waiting acquire's bookkeeping.
    round: u64,
    /// Whether a waiter queued during the current round: a round nobody queued in needs no
    /// record, so the records stay as few as the waiters, whatever `acquire_timeout` is.
    round_used: bool,
    /// When each round still referenced by a queued waiter ended, oldest first: every waiter
    /// of round `r` had queued by then.
    rounds_ended: VecDeque<(u64, Instant)>,
}

impl<T> WaitQueue<T> {
    pub(crate) fn new() -> Self {
        WaitQueue {
            queue: VecDeque::new(),
            head: 0,
            len: 0,
            round: 0,
            round_used: false,
            rounds_ended: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a waiter.
    pub(crate) fn push(&mut self, location: &'static Location<'static>) -> Queued<T> {
        let first = self.len == 0;
        let slot = Arc::new(Slot::new());
        let ticket = self.head + self.queue.len() as u64;
        self.queue.push_back(Waiter {
            slot: Some(Arc::clone(&slot)),
            location,
            round: self.round,
        });
        self.round_used = true;
        self.len += 1;
        Queued {
            slot,
            ticket,
            first,
        }
    }

    /// Takes out the waiter holding `ticket` if it is still queued (O(1)); false when it was
    /// already picked (its delivery is in its slot or on the way: see `Slot::abandon`).
    pub(crate) fn remove(&mut self, ticket: u64) -> bool {
        let Some(waiter) = ticket
            .checked_sub(self.head)
            .and_then(|index| self.queue.get_mut(usize::try_from(index).ok()?))
        else {
            return false;
        };
        if waiter.slot.take().is_none() {
            return false;
        }
        self.len -= 1;
        self.drop_gone_front();
        true
    }

    /// Pops the entries of waiters that gave up from the front.
    fn drop_gone_front(&mut self) {
        while self.queue.front().is_some_and(|w| w.slot.is_none()) {
            self.queue.pop_front();
            self.head += 1;
        }
    }

    /// Picks the oldest waiter, to address a delivery to.
    pub(crate) fn pick_oldest(&mut self) -> Option<Picked<T>> {
        let waiter = self.queue.pop_front()?;
        self.head += 1;
        // The front is always a queued waiter (see the type's invariant).
        let slot = waiter.slot?;
        self.len -= 1;
        self.drop_gone_front();
        Some(Picked {
            slot,
            location: waiter.location,
        })
    }

    /// One round of the deadline timer at `now`: ends the current round (every waiter queued
    /// so far arrived by `now`), then picks each waiter whose round ended at least `timeout`
    /// ago. Returns them and when the next round is due (`tick` from now at the latest while
    /// anyone waits; `None` when nobody does).
    ///
    /// A waiter's deadline counts from the end of its round, never from before it queued:
    /// it times out no earlier than `timeout` after queuing, and at most one `tick` (plus
    /// the timer's own lateness) after.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        timeout: Duration,
        tick: Duration,
    ) -> (Vec<Picked<T>>, Option<Instant>) {
        let mut due = Vec::new();
        if self.is_empty() {
            self.rounds_ended.clear();
            return (due, None);
        }
        if std::mem::take(&mut self.round_used) {
            self.rounds_ended.push_back((self.round, now));
            self.round += 1;
        }
        let next_tick = now.checked_add(tick);
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
                break next_tick;
            };
            // A deadline past what the clock can hold never comes: the waiter waits on.
            let Some(deadline) = arrived_by.checked_add(timeout) else {
                break next_tick;
            };
            if deadline > now {
                break Some(next_tick.map_or(deadline, |t| deadline.min(t)));
            }
            due.extend(self.pick_oldest());
        };
        (due, next)
    }

    /// How many round records the deadline timer keeps.
    #[cfg(test)]
    fn round_records(&self) -> usize {
        self.rounds_ended.len()
    }
}

/// A waiter taken out of the queue, to address a delivery to.
#[derive(Debug)]
pub(crate) struct Picked<T> {
    slot: Arc<Slot<T>>,
    /// Where the waiter called `acquire()`.
    pub(crate) location: &'static Location<'static>,
}

impl<T> Picked<T> {
    pub(crate) fn deliver(self, delivery: Delivery<T>) -> Handoff<T> {
        Handoff {
            slot: self.slot,
            delivery,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inner::live::LiveState;

    fn checkout() -> Checkout<()> {
        Checkout {
            live: LiveState::new_for_test(()),
            key: 0,
            since: None,
        }
    }

    fn connection_to_oldest(queue: &mut WaitQueue<()>) -> Handoff<()> {
        let picked = queue.pick_oldest().expect("a waiter is queued");
        picked.deliver(Delivery::Connection(checkout()))
    }

    #[test]
    fn a_waiter_that_gives_up_before_its_delivery_lands_gets_it_taken_back() {
        let mut queue = WaitQueue::new();
        let first = queue.push(Location::caller());
        assert!(first.first);
        let handoff = connection_to_oldest(&mut queue);
        assert!(
            Arc::ptr_eq(&handoff.slot, &first.slot),
            "the oldest waiter is picked"
        );
        let second = queue.push(Location::caller());
        assert!(second.first, "the picked waiter left the queue");

        // The first waiter gives up before the hand-off completes ...
        assert!(!queue.remove(first.ticket), "it was picked already");
        assert!(first.slot.abandon().is_none(), "nothing landed yet");
        // ... so the one completing it gets the connection back instead of losing it.
        assert!(
            handoff.complete().is_some(),
            "an abandoned slot must refuse the delivery"
        );
        assert_eq!(queue.len(), 1, "the newer waiter keeps its place");
        assert!(queue.remove(second.ticket), "still queued: removed");
        assert!(!queue.remove(second.ticket), "removed once");
        assert!(queue.is_empty());
    }

    #[test]
    fn a_waiter_that_gives_up_after_its_delivery_landed_takes_it_itself() {
        let mut queue = WaitQueue::new();
        let waiter = queue.push(Location::caller());
        assert!(
            connection_to_oldest(&mut queue).complete().is_none(),
            "delivered"
        );
        assert!(!queue.remove(waiter.ticket));
        assert!(matches!(
            waiter.slot.abandon(),
            Some(Delivery::Connection(_))
        ));
    }

    #[test]
    fn a_registered_waiter_is_woken_and_takes_its_delivery() {
        let mut queue = WaitQueue::new();
        let slot = queue.push(Location::caller()).slot;
        let cx = Context::from_waker(Waker::noop());
        assert!(slot.poll_delivery(&cx).is_pending());
        assert!(connection_to_oldest(&mut queue).complete().is_none());
        assert!(matches!(
            slot.poll_delivery(&cx),
            Poll::Ready(Delivery::Connection(_))
        ));
        assert!(queue.is_empty());
    }

    #[test]
    fn an_error_for_a_waiter_that_gave_up_is_dropped() {
        let mut queue = WaitQueue::<()>::new();
        let slot = queue.push(Location::caller()).slot;
        let picked = queue.pick_oldest().expect("queued");
        assert!(slot.abandon().is_none());
        let error = PoolError::Closed { pool: "p".into() };
        assert!(picked.deliver(Delivery::Error(error)).complete().is_none());
    }

    #[test]
    fn waiters_who_give_up_anywhere_leave_and_the_rest_keep_their_order() {
        let mut queue = WaitQueue::<()>::new();
        let waiters: Vec<_> = (0..6).map(|_| queue.push(Location::caller())).collect();
        // The newest, one in the middle and the oldest give up.
        for i in [5, 2, 0] {
            assert!(queue.remove(waiters[i].ticket));
        }
        assert_eq!(queue.len(), 3);
        for expected in [1, 3, 4] {
            let picked = queue.pick_oldest().expect("a waiter is left");
            assert!(Arc::ptr_eq(&picked.slot, &waiters[expected].slot));
        }
        assert!(queue.pick_oldest().is_none());
        assert!(queue.is_empty());
        let again = queue.push(Location::caller());
        assert!(again.first);
        assert!(queue.remove(again.ticket));
        assert!(!queue.remove(waiters[3].ticket), "a served ticket is gone");
    }

    #[test]
    fn the_deadline_timer_keeps_a_record_per_round_someone_queued_in_not_per_tick() {
        let mut queue = WaitQueue::<()>::new();
        let _waiter = queue.push(Location::caller());
        let start = Instant::now();
        let timeout = Duration::from_secs(3600);
        let tick = Duration::from_millis(10);
        for i in 0..10_000u32 {
            let (due, next) = queue.expire(start + tick * i, timeout, tick);
            assert!(due.is_empty() && next.is_some());
        }
        assert_eq!(
            queue.round_records(),
            1,
            "one round had a waiter queue in it"
        );
        let (due, _) = queue.expire(start + timeout, timeout, tick);
        assert_eq!(due.len(), 1, "the waiter times out when its deadline comes");
    }

    #[test]
    fn a_deadline_past_the_clocks_range_never_fires_and_never_panics() {
        let mut queue = WaitQueue::<()>::new();
        let _waiter = queue.push(Location::caller());
        let now = Instant::now();
        let (due, next) = queue.expire(now, Duration::MAX, Duration::from_millis(10));
        assert!(due.is_empty());
        assert!(
            next.is_some(),
            "the timer still comes back while someone waits"
        );
    }
}
