//! # Implementation details
//!
//! The pool's state, always behind the one lock in `Inner`: idle connections, counts, the
//! queue of waiters, the checkouts and the cumulative counters. Its fields are private: every
//! change is one of the named transitions below, so `idle + in_use == total` and
//! `total + connecting <= max` are kept here and nowhere else. Nothing here awaits, does I/O
//! or calls user code; the work that must follow a transition (completing hand-offs, closing
//! connections, waking `close()`) is returned to the lock guard, which runs it after the
//! unlock.

use std::collections::VecDeque;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::live::{Checkout, Live, LiveState};
use super::slab::Slab;
use super::waiters::{Delivery, Handoff, Queued, WaitQueue};
use crate::close_report::CheckedOut;
use crate::error::{PoolError, SharedError};
use crate::stats::{CloseReason, ClosedCounts, PoolStats};

/// Where a connection that came back clean went.
#[derive(Debug)]
pub(crate) enum Released<T> {
    /// Checked out to the oldest waiter: complete the hand-off once the lock is released.
    Handoff(Handoff<T>),
    /// Put back into the idle queue.
    Idle,
    /// It must not be reused (the pool is closing, was resized below its count, or evicted
    /// it): close it, already uncounted.
    Close(Live<T>, CloseReason),
}

/// What maintenance does with one idle connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleAction {
    Keep,
    /// Take it out (counted as in use) to check that it still works.
    Ping,
    /// Take it out of the pool and close it.
    Retire(CloseReason),
}

/// What maintenance took out of the idle queue: connections to close (already uncounted)
/// and connections to ping (counted as in use).
pub(crate) type Swept<T> = (Vec<(Live<T>, CloseReason)>, Vec<Live<T>>);

/// Where a connection in a caller's hands was acquired, and since when.
#[derive(Debug)]
struct Holder {
    location: &'static Location<'static>,
    since: Option<Instant>,
    /// Whether leak detection already reported it.
    reported: bool,
}

#[derive(Debug, Default)]
struct Counters {
    acquired: u64,
    waited: u64,
    created: u64,
    connect_failures: u64,
    acquire_timeouts: u64,
    closed: ClosedCounts,
}

/// A refused login: until `until_ms` (on the pool's clock), no login is tried and callers
/// who find no idle connection get `error` at once.
#[derive(Debug)]
struct Refused {
    error: PoolError,
    until_ms: u64,
}

#[derive(Debug)]
pub(crate) struct State<T> {
    /// Idle connections; the back is the most recently released (handed out first, so the
    /// front ages and is reaped).
    idle: VecDeque<Live<T>>,
    /// Open connections: idle + in use.
    total: u32,
    /// Open connections not in `idle`: held by callers, being validated, cleaned or pinged.
    in_use: u32,
    /// Connect tasks in flight (each reserves a slot below `max`).
    connecting: u32,
    waiters: WaitQueue<T>,
    checkouts: Slab<Holder>,
    closing: bool,
    /// The last connect error and when it happened (ms on the pool's clock).
    last_connect_error: Option<(SharedError, u64)>,
    consecutive_failures: u32,
    refused: Option<Refused>,
    /// A connection or a connect came back while closing: `close()` is to be woken.
    wake_close: bool,
    /// Paused by the operator: idle connections are not handed out and no connect starts.
    paused: bool,
    /// Bumped by an eviction: a connection opened in an older generation is retired when it
    /// comes back.
    generation: u64,
    counters: Counters,
    max: u32,
    min: u32,
}

impl<T> State<T> {
    pub(crate) fn new(max: u32, min: u32) -> Self {
        State {
            // Grows on demand past this: a huge `max_connections` reserves nothing up front.
            idle: VecDeque::with_capacity(max.min(64) as usize),
            total: 0,
            in_use: 0,
            connecting: 0,
            waiters: WaitQueue::new(),
            checkouts: Slab::default(),
            closing: false,
            last_connect_error: None,
            consecutive_failures: 0,
            refused: None,
            wake_close: false,
            paused: false,
            generation: 0,
            counters: Counters::default(),
            max,
            min,
        }
    }

    /// `idle + in_use == total`, `total + connecting <= max`, and never an idle connection
    /// while someone waits. Checked by the lock guard before every unlock.
    #[inline]
    pub(crate) fn check_invariants(&self) {
        debug_assert_eq!(
            self.idle.len() as u32 + self.in_use,
            self.total,
            "idle + in_use == total"
        );
        // Above a lowered `max`, only while the surplus is out: it goes as it comes back.
        debug_assert!(
            self.total + self.connecting <= self.max || self.idle.is_empty(),
            "total + connecting <= max, or nothing idle"
        );
        debug_assert!(
            self.idle.is_empty() || self.waiters.is_empty() || self.paused,
            "idle while waiting (and not paused)"
        );
    }

    // ---- Reads ----

    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }

    pub(crate) fn waiting(&self) -> u32 {
        self.waiters.len()
    }

    /// Whether this caller would really queue: no idle connection and no room to open one.
    pub(crate) fn is_full(&self) -> bool {
        self.total + self.connecting >= self.max
    }

    /// The generation a connect starting now belongs to.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Connections out of the idle queue (in callers' hands, being cleaned or checked).
    pub(crate) fn in_use(&self) -> u32 {
        self.in_use
    }

    /// What `close()` waits for: connections in use and connects in flight.
    #[inline]
    pub(crate) fn outstanding(&self) -> u32 {
        self.in_use + self.connecting
    }

    /// Whether a connection or a connect came back since the last call while the pool is
    /// closing (its `close()` is to be woken).
    #[inline]
    pub(crate) fn take_close_wake(&mut self) -> bool {
        // Written only when set: the common unlock just reads it.
        if self.wake_close {
            self.wake_close = false;
            true
        } else {
            false
        }
    }

    /// What a waiting timeout reports: whether connects were under way, and the last connect
    /// error while connects fail.
    pub(crate) fn timeout_phase_inputs(
        &self,
        now_ms: u64,
        window_ms: u64,
    ) -> (bool, Option<SharedError>) {
        // A success for an older waiter ends the run of failures, but a waiter whose own
        // connects failed within its wait still learns why.
        let last_error = self
            .last_connect_error
            .as_ref()
            .filter(|(_, at)| {
                self.consecutive_failures > 0 || now_ms.saturating_sub(*at) <= window_ms
            })
            .map(|(error, _)| Arc::clone(error));
        (self.connecting > 0, last_error)
    }

    /// How many connections the waiters and `min_connections` need.
    fn wanted(&self) -> u32 {
        self.waiting().max(self.min.saturating_sub(self.total))
    }

    /// Whether a connect task that just failed should try again (someone still needs it).
    pub(crate) fn still_needed(&self) -> bool {
        !self.closing && !self.paused && self.connecting <= self.wanted()
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            total: self.total,
            idle: self.idle.len() as u32,
            in_use: self.in_use,
            waiting: self.waiting(),
            connecting: self.connecting,
            max: self.max,
            min: self.min,
            closing: self.closing,
            paused: self.paused,
            acquired: self.counters.acquired,
            waited: self.counters.waited,
            created: self.counters.created,
            connect_failures: self.counters.connect_failures,
            acquire_timeouts: self.counters.acquire_timeouts,
            closed: self.counters.closed,
            // Kept beside the state, not in it: `Pool::stats` adds it.
            server_changes: 0,
        }
    }

    /// The checkouts still held.
    pub(crate) fn checked_out(&self, now: Instant) -> Vec<CheckedOut> {
        self.checkouts
            .iter()
            .map(|(_, holder)| CheckedOut {
                location: holder.location,
                held: holder.since.map(|s| now.saturating_duration_since(s)),
            })
            .collect()
    }

    // ---- Acquire ----

    /// Takes the most recently used idle connection into use, unless callers are already
    /// waiting (they come first).
    #[inline]
    pub(crate) fn take_idle(&mut self) -> Option<Live<T>> {
        if !self.waiters.is_empty() || self.paused {
            return None;
        }
        let live = self.idle.pop_back()?;
        self.in_use += 1;
        Some(live)
    }

    /// Registers a connection in use as a caller's checkout.
    #[inline]
    pub(crate) fn check_out(
        &mut self,
        live: Live<T>,
        location: &'static Location<'static>,
        since: Option<Instant>,
    ) -> Checkout<T> {
        self.counters.acquired += 1;
        let key = self.checkouts.insert(Holder {
            location,
            since,
            reported: false,
        });
        Checkout { live, key, since }
    }

    /// Queues a caller.
    pub(crate) fn queue_waiter(&mut self, location: &'static Location<'static>) -> Queued<T> {
        self.counters.waited += 1;
        self.waiters.push(location)
    }

    /// Takes out a waiter that gave up; false when it was already picked.
    pub(crate) fn leave_queue(&mut self, ticket: u64) -> bool {
        self.waiters.remove(ticket)
    }

    /// Undoes the checkout of a connection delivered to a waiter that gave up; the
    /// connection is still counted as in use.
    pub(crate) fn undo_checkout(&mut self, checkout: Checkout<T>) -> Live<T> {
        self.checkouts.remove(checkout.key);
        self.counters.acquired -= 1;
        checkout.live
    }

    /// An acquire ran out of time outside the queue (while validating).
    pub(crate) fn count_acquire_timeout(&mut self) {
        self.counters.acquire_timeouts += 1;
    }

    // ---- Release ----

    /// A caller's checkout ends; its connection is still counted as in use until it is given
    /// back or retired.
    pub(crate) fn end_checkout(&mut self, key: usize) {
        self.checkouts.remove(key);
    }

    /// A connection counted as in use comes back clean: to the oldest waiter (checked out
    /// to it at `since`), else to the idle queue; closed if the pool is closing.
    #[inline(always)]
    pub(crate) fn give_back(&mut self, live: Live<T>, since: Option<Instant>) -> Released<T> {
        if self.closing {
            self.leave(CloseReason::PoolClosed);
            return Released::Close(live, CloseReason::PoolClosed);
        }
        if live.generation != self.generation || self.total + self.connecting > self.max {
            return self.retire_surplus(live);
        }
        // Nobody waits (the common case): straight back, without a hand-off attempt.
        let picked = if self.waiters.is_empty() || self.paused {
            None
        } else {
            self.waiters.pick_oldest()
        };
        match picked {
            None => {
                self.in_use -= 1;
                self.idle.push_back(live);
                Released::Idle
            }
            Some(picked) => {
                let checkout = self.check_out(live, picked.location, since);
                Released::Handoff(picked.deliver(Delivery::Connection(checkout)))
            }
        }
    }

    /// A connection that came back evicted, or above a lowered `max_connections`, leaves.
    #[cold]
    #[inline(never)]
    fn retire_surplus(&mut self, live: Live<T>) -> Released<T> {
        let reason = if live.generation == self.generation {
            CloseReason::Resized
        } else {
            CloseReason::Evicted
        };
        self.leave(reason);
        Released::Close(live, reason)
    }

    /// A connection counted as in use leaves the pool.
    pub(crate) fn leave(&mut self, reason: CloseReason) {
        self.in_use -= 1;
        self.total -= 1;
        self.wake_close |= self.closing;
        self.counters.closed.add(reason);
    }

    /// A caller takes its checked-out connection out of the pool for good.
    pub(crate) fn detach(&mut self, key: usize) {
        self.checkouts.remove(key);
        self.in_use -= 1;
        self.total -= 1;
        self.wake_close |= self.closing;
    }

    // ---- Connect ----

    /// Reserves the connects to start now: enough for every waiter and for
    /// `min_connections`, within `max_connections`; none while logins are refused.
    pub(crate) fn reserve_connects(&mut self, now_ms: u64) -> u32 {
        if self.closing || self.paused || self.login_refused(now_ms).is_some() {
            return 0;
        }
        let room = self.max.saturating_sub(self.total + self.connecting);
        let n = self.wanted().saturating_sub(self.connecting).min(room);
        self.connecting += n;
        n
    }

    /// Reserves one connect for a fail-fast start, unless the pool holds a connection
    /// already (`Some(false)`); `None` when it cannot open one now (closing, paused, or every
    /// slot taken by connects under way).
    pub(crate) fn reserve_first(&mut self) -> Option<bool> {
        if self.total > 0 {
            return Some(false);
        }
        if self.closing || self.paused || self.total + self.connecting >= self.max {
            return None;
        }
        self.connecting += 1;
        Some(true)
    }

    /// Gives back `n` connect reservations (the task could not start, ended early, or is no
    /// longer needed).
    pub(crate) fn unreserve_connects(&mut self, n: u32) {
        self.connecting -= n;
        self.wake_close |= self.closing;
    }

    /// A reserved connect opened a connection: it goes to the oldest waiter or the idle
    /// queue.
    pub(crate) fn connect_succeeded(
        &mut self,
        live: Live<T>,
        since: Option<Instant>,
    ) -> Released<T> {
        self.connecting -= 1;
        self.counters.created += 1;
        self.consecutive_failures = 0;
        self.refused = None;
        self.total += 1;
        self.in_use += 1;
        self.give_back(live, since)
    }

    /// A reserved connect failed (its reservation is kept until the task decides). Returns
    /// how many connects in a row have failed.
    pub(crate) fn connect_failed(&mut self, error: SharedError, now_ms: u64) -> u32 {
        self.counters.connect_failures += 1;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_connect_error = Some((error, now_ms));
        self.consecutive_failures
    }

    /// A login was refused: every waiter fails with `error`, and so does every caller who
    /// finds no idle connection until `until_ms`; no login is tried until then.
    pub(crate) fn refuse_logins(&mut self, error: PoolError, until_ms: u64) -> Vec<Handoff<T>> {
        let failed = self.fail_all(&error);
        self.refused = Some(Refused { error, until_ms });
        failed
    }

    /// The refused login's error while logins wait out their backoff.
    pub(crate) fn login_refused(&self, now_ms: u64) -> Option<&PoolError> {
        self.refused
            .as_ref()
            .filter(|refused| now_ms < refused.until_ms)
            .map(|refused| &refused.error)
    }

    /// Fails every waiter with `error`.
    fn fail_all(&mut self, error: &PoolError) -> Vec<Handoff<T>> {
        let mut failed = Vec::new();
        while let Some(picked) = self.waiters.pick_oldest() {
            failed.push(picked.deliver(Delivery::Error(error.clone())));
        }
        failed
    }

    // ---- Deadline timer ----

    /// One round of the deadline timer (see `WaitQueue::expire`): fails with `error` every
    /// waiter whose `timeout` ran out. Returns their hand-offs and when the next round is due.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        timeout: Duration,
        tick: Duration,
        error: &PoolError,
    ) -> (Vec<Handoff<T>>, Option<Instant>) {
        let (due, next) = self.waiters.expire(now, timeout, tick);
        self.counters.acquire_timeouts += due.len() as u64;
        let failed = due
            .into_iter()
            .map(|picked| picked.deliver(Delivery::Error(error.clone())))
            .collect();
        (failed, next)
    }

    // ---- Maintenance ----

    /// Walks the idle queue, oldest first, and takes out the connections `decide` wants to
    /// retire or ping. `decide` also learns whether the pool holds more than
    /// `min_connections` at that point (retiring one lowers the count for the next).
    pub(crate) fn sweep_idle(
        &mut self,
        mut decide: impl FnMut(&LiveState<T>, bool) -> IdleAction,
    ) -> Swept<T> {
        let mut retired = Vec::new();
        let mut pings = Vec::new();
        let mut i = 0;
        while i < self.idle.len() {
            let action = decide(&self.idle[i], self.total > self.min);
            if action == IdleAction::Keep {
                i += 1;
                continue;
            }
            let Some(live) = self.idle.remove(i) else {
                break;
            };
            self.in_use += 1;
            match action {
                IdleAction::Retire(reason) => {
                    self.leave(reason);
                    retired.push((live, reason));
                }
                IdleAction::Ping | IdleAction::Keep => pings.push(live),
            }
        }
        (retired, pings)
    }

    /// The checkouts held at least `threshold`, each reported once: where each was acquired
    /// and for how long it has been held.
    pub(crate) fn overdue_checkouts(
        &mut self,
        now: Instant,
        threshold: Duration,
    ) -> Vec<(&'static Location<'static>, Duration)> {
        let mut overdue = Vec::new();
        for (_, holder) in self.checkouts.iter_mut() {
            let held = holder.since.map(|s| now.saturating_duration_since(s));
            if !holder.reported
                && let Some(held) = held.filter(|h| *h >= threshold)
            {
                holder.reported = true;
                overdue.push((holder.location, held));
            }
        }
        overdue
    }

    // ---- Operator controls ----

    /// Sets `max_connections` and `min_connections` (`min <= max`, checked by the caller).
    /// Idle connections above the new `max` are taken out (uncounted) to close, oldest first;
    /// connections in use above it go as they come back.
    pub(crate) fn resize(&mut self, max: u32, min: u32) -> Vec<Live<T>> {
        self.max = max;
        self.min = min;
        let surplus = (self.total + self.connecting).saturating_sub(max);
        self.take_out_idle(surplus as usize, CloseReason::Resized)
    }

    /// Retires every connection: the idle ones are taken out (uncounted) to close, the ones
    /// in use and the connects under way go when they come back.
    pub(crate) fn evict(&mut self) -> Vec<Live<T>> {
        self.generation += 1;
        self.take_out_idle(self.idle.len(), CloseReason::Evicted)
    }

    /// Up to `n` idle connections, oldest first, leave the pool for `reason`.
    fn take_out_idle(&mut self, n: usize, reason: CloseReason) -> Vec<Live<T>> {
        let n = n.min(self.idle.len());
        let out: Vec<_> = self.idle.drain(..n).collect();
        self.total -= n as u32;
        for _ in 0..n {
            self.counters.closed.add(reason);
        }
        out
    }

    /// Pauses the pool: from now on no idle connection is handed out and no connect starts
    /// (one under way finishes); callers queue, bounded by their own `acquire_timeout`.
    pub(crate) fn pause(&mut self) {
        self.paused = true;
    }

    /// Ends a pause: idle connections go to the oldest waiters (checked out to them at
    /// `since`); the caller then reserves the connects the rest need.
    pub(crate) fn resume(&mut self, since: Option<Instant>) -> Vec<Handoff<T>> {
        self.paused = false;
        let mut handed = Vec::new();
        while !self.idle.is_empty() {
            let Some(picked) = self.waiters.pick_oldest() else {
                break;
            };
            let Some(live) = self.idle.pop_back() else {
                break;
            };
            self.in_use += 1;
            let checkout = self.check_out(live, picked.location, since);
            handed.push(picked.deliver(Delivery::Connection(checkout)));
        }
        handed
    }

    // ---- Close ----

    /// Marks the pool closing: fails every waiter with `error` and takes out the idle
    /// connections (uncounted) to close.
    pub(crate) fn begin_close(&mut self, error: &PoolError) -> (Vec<Handoff<T>>, Vec<Live<T>>) {
        self.closing = true;
        let failed = self.fail_all(error);
        let idle: Vec<_> = self.idle.drain(..).collect();
        self.total -= idle.len() as u32;
        for _ in &idle {
            self.counters.closed.add(CloseReason::PoolClosed);
        }
        (failed, idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live<()> {
        LiveState::new_for_test(())
    }

    /// A pool of one connection, in use.
    fn busy() -> State<()> {
        let mut st = State::new(1, 0);
        assert_eq!(st.reserve_connects(0), 0, "nobody needs a connection yet");
        st.connecting = 1;
        assert!(matches!(st.connect_succeeded(live(), None), Released::Idle));
        st.take_idle().expect("the new connection is idle");
        st.check_invariants();
        st
    }

    #[test]
    fn a_connection_given_back_while_someone_waits_goes_to_the_oldest_waiter() {
        let mut st = busy();
        let first = st.queue_waiter(Location::caller());
        let _second = st.queue_waiter(Location::caller());
        assert!(first.first);
        let Released::Handoff(handoff) = st.give_back(live(), None) else {
            panic!("a waiting caller must get the connection");
        };
        st.check_invariants();
        assert_eq!(st.waiting(), 1, "only the oldest waiter was served");
        assert_eq!(st.stats().acquired, 1);
        assert_eq!(st.stats().in_use, 1, "still in use: now the waiter's");

        // The oldest waiter gives up before the hand-off completes: the connection comes
        // back, its checkout is undone, and it goes to the next waiter.
        assert!(!st.leave_queue(first.ticket), "it was picked already");
        assert!(first.slot.abandon().is_none());
        let checkout = handoff
            .complete()
            .expect("an abandoned slot refuses the delivery");
        let live = st.undo_checkout(checkout);
        assert_eq!(st.stats().acquired, 0, "the undone checkout is not counted");
        assert!(matches!(st.give_back(live, None), Released::Handoff(_)));
        assert_eq!(st.waiting(), 0);
        st.check_invariants();
    }

    #[test]
    fn closing_fails_waiters_and_closes_what_comes_back() {
        let mut st = busy();
        let _waiter = st.queue_waiter(Location::caller());
        let error = PoolError::Closed { pool: "p".into() };
        let (failed, idle) = st.begin_close(&error);
        assert_eq!((failed.len(), idle.len()), (1, 0));
        assert!(st.is_closing());
        assert_eq!(st.reserve_connects(0), 0, "no connect while closing");
        assert!(matches!(
            st.give_back(live(), None),
            Released::Close(_, CloseReason::PoolClosed)
        ));
        assert_eq!(st.stats().total, 0);
        assert_eq!(st.stats().closed.get(CloseReason::PoolClosed), 1);
        assert_eq!(st.outstanding(), 0);
        st.check_invariants();
    }
}
