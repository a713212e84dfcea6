//! # Implementation details
//!
//! The acquire path: an idle connection at once (validated first if it sat idle too long),
//! else a place in the queue of waiters, the connects the queue needs, and the wait for a
//! delivery, all within `acquire_timeout`.

use std::future::poll_fn;
use std::panic::Location;
use std::sync::Arc;

use tokio::time::Instant;

use super::Inner;
use super::guards::{LiveGuard, WaiterGuard};
use super::live::{Checkout, Live};
use super::state::State;
use super::waiters::{Delivery, Queued};
use crate::clock::ms;
use crate::connector::Connector;
use crate::error::PoolError;
use crate::observer::TimeoutPhase;
use crate::stats::CloseReason;

/// A connection checked out to a caller, and when the caller started waiting for it (`None`
/// when it did not wait, or nobody needs the wait time).
#[derive(Debug)]
pub(crate) struct Acquired<T> {
    pub(crate) checkout: Checkout<T>,
    pub(crate) wait_started: Option<Instant>,
}

/// What the acquire loop does next, decided under the lock.
enum Step<T> {
    /// Checked out from the idle queue.
    Ready(Checkout<T>),
    /// Taken from the idle queue, to validate before it is checked out.
    Validate(Live<T>),
    /// Queued for a delivery.
    Wait {
        /// The caller's place in the queue.
        queued: Queued<T>,
        /// Connects reserved for the queue, to spawn after the unlock.
        connects: u32,
    },
}

impl<C: Connector> Inner<C> {
    /// Checks out a connection; see `Pool::acquire`.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        location: &'static Location<'static>,
    ) -> Result<Acquired<C::Connection>, PoolError> {
        let inner = self;
        let started = inner.is_observed().then(Instant::now);
        // Computed only when validating: a waiting acquire is timed by the deadline timer.
        let mut deadline = None;
        loop {
            match inner.next_step(location, started)? {
                Step::Ready(checkout) => {
                    // Served at once from the idle queue: no wait, by definition.
                    return Ok(Acquired {
                        checkout,
                        wait_started: None,
                    });
                }
                Step::Validate(live) => {
                    if let Err(error) = inner.require_runtime() {
                        inner.lock().retire(live, CloseReason::Discarded);
                        return Err(error);
                    }
                    let deadline = *deadline.get_or_insert_with(|| {
                        started.unwrap_or_else(|| inner.clock.refresh())
                            + inner.options.acquire_timeout
                    });
                    // Cancel safety: while validating, the connection is in a guard that
                    // retires it if this future is dropped.
                    let mut guard = LiveGuard::new(inner, live);
                    let Some(live) = guard.live_mut() else {
                        continue;
                    };
                    // Boxed: validation is the rare path (a connection idle for a while), and
                    // keeping its timer out of line keeps every acquire future small.
                    match Box::pin(tokio::time::timeout_at(deadline, inner.validate(live))).await {
                        Ok(Ok(())) => {
                            if let Some(live) = guard.take() {
                                let since = inner.checkout_clock();
                                let checkout = inner.lock().check_out(live, location, since);
                                return Ok(Acquired {
                                    checkout,
                                    wait_started: started,
                                });
                            }
                        }
                        Ok(Err(reason)) => {
                            guard.retire(reason);
                            continue;
                        }
                        Err(_) => {
                            drop(guard);
                            return Err(inner.validation_timed_out());
                        }
                    }
                }
                Step::Wait { queued, connects } => {
                    let first = queued.first;
                    // Cancel safety: the place in the queue is in a guard from here on.
                    let mut guard = WaiterGuard::new(inner, queued);
                    // A busy pool's waiters (the common case here) need no connect and find
                    // the background tasks running: only the first waiter does this work.
                    if connects > 0 {
                        inner.spawn_connects(connects)?;
                    }
                    if first {
                        inner.require_runtime()?;
                        inner.ensure_maintenance();
                    }
                    // No timer per waiter: the pool's deadline timer fails waiters whose
                    // acquire_timeout ran out, with a timeout delivered like a connection.
                    inner.ensure_deadline_timer(first);
                    let delivery = match deadline {
                        // The deadline timer times waiters from when they queued; one that
                        // validated first has used part of its time: one deadline per acquire.
                        Some(deadline) => {
                            let waiting = poll_fn(|cx| guard.poll_delivery(cx));
                            match Box::pin(tokio::time::timeout_at(deadline, waiting)).await {
                                Ok(delivery) => delivery,
                                Err(_) => {
                                    drop(guard);
                                    return Err(inner.requeued_timed_out());
                                }
                            }
                        }
                        None => poll_fn(|cx| guard.poll_delivery(cx)).await,
                    };
                    drop(guard);
                    return match delivery {
                        Delivery::Connection(checkout) => Ok(Acquired {
                            checkout,
                            wait_started: started,
                        }),
                        Delivery::Error(error) => Err(error),
                    };
                }
            }
        }
    }

    fn next_step(
        self: &Arc<Self>,
        location: &'static Location<'static>,
        started: Option<Instant>,
    ) -> Result<Step<C::Connection>, PoolError> {
        let mut st = self.lock();
        if st.is_closing() {
            return Err(self.closed_error());
        }
        if let Some(live) = st.take_idle() {
            let stale = self
                .options
                .validate_after_idle
                .is_some_and(|after| live.unchecked_for(self.clock.now()) > ms(after));
            if stale {
                return Ok(Step::Validate(live));
            }
            // An observer's start time doubles as the checkout time: one clock read.
            let since = started.or_else(|| self.checkout_clock());
            return Ok(Step::Ready(st.check_out(live, location, since)));
        }
        // While logins are refused, a caller who would need one learns why at once.
        if st.login_refused(self.clock.now()).is_some()
            && let Some(error) = st.login_refused(self.clock.ms_at(self.clock.refresh()))
        {
            return Err(error.clone());
        }
        // Shed only when this caller would really queue: a pool with room opens a connection
        // for it instead.
        if let Some(max) = self.options.max_waiters
            && st.waiting() >= max
            && st.is_full()
        {
            drop(st);
            if let Some(suppressed) = self.admit(&self.logs.refused) {
                tracing::warn!(pool = %self.name(), max_waiters = max, suppressed_warnings = suppressed, "acquire refused: too many waiters");
            }
            return Err(PoolError::TooManyWaiters {
                pool: self.name().clone(),
                max_waiters: max,
            });
        }
        // No clock is read: the deadline timer's rounds time the wait. The waker goes into
        // the waiter's slot after the lock is released.
        let queued = st.queue_waiter(location);
        let connects = st.reserve_connects(self.clock.now());
        Ok(Step::Wait { queued, connects })
    }

    /// Checks out an idle connection if one is free at once; see `Pool::try_acquire`.
    pub(crate) fn try_acquire(
        self: &Arc<Self>,
        location: &'static Location<'static>,
    ) -> Result<Option<Checkout<C::Connection>>, PoolError> {
        let since = self.checkout_clock();
        let mut st = self.lock();
        if st.is_closing() {
            return Err(self.closed_error());
        }
        Ok(st
            .take_idle()
            .map(|live| st.check_out(live, location, since)))
    }

    /// Validates (or pings) a connection held as in use, bounded by `validation_timeout`.
    pub(crate) async fn validate(&self, live: &mut Live<C::Connection>) -> Result<(), CloseReason> {
        let limit = self.options.validation_timeout_or_default();
        match tokio::time::timeout(limit, self.connector.validate(&mut live.conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                let server = live.server.as_ref().map(|s| &*s.address);
                tracing::info!(pool = %self.name(), %error, server, "connection failed validation");
                Err(self.reason_for(&error, CloseReason::ValidationFailed))
            }
            Err(_) => {
                tracing::info!(pool = %self.name(), ?limit, "validation timed out");
                self.timed_out(TimeoutPhase::Validating);
                Err(CloseReason::ValidationFailed)
            }
        }
    }

    /// The error of an acquire that ran out of time while validating.
    pub(crate) fn validation_timed_out(self: &Arc<Self>) -> PoolError {
        self.lock().count_acquire_timeout();
        let phase = TimeoutPhase::Validating;
        self.report_acquire_timeouts(phase, 1);
        PoolError::Timeout {
            pool: self.name().clone(),
            phase,
            elapsed: self.options.acquire_timeout,
            last_error: None,
        }
    }

    /// The error of an acquire that validated, queued, and ran out of time waiting.
    fn requeued_timed_out(self: &Arc<Self>) -> PoolError {
        let mut st = self.lock();
        st.count_acquire_timeout();
        let error = self.waiting_timeout(&st);
        drop(st);
        if let Some(phase) = error.timeout_phase() {
            self.report_acquire_timeouts(phase, 1);
        }
        error
    }

    /// The error of a waiter whose `acquire_timeout` ran out: phase `Connecting`, with the
    /// last connect error, while connects are under way or failing, else `Waiting`.
    pub(crate) fn waiting_timeout(&self, st: &State<C::Connection>) -> PoolError {
        let window_ms = crate::clock::ms(self.options.acquire_timeout);
        let (connecting, last_error) = st.timeout_phase_inputs(self.clock.now(), window_ms);
        let phase = if connecting || last_error.is_some() {
            TimeoutPhase::Connecting
        } else {
            TimeoutPhase::Waiting
        };
        PoolError::Timeout {
            pool: self.name().clone(),
            phase,
            elapsed: self.options.acquire_timeout,
            last_error,
        }
    }

    /// Logs (rate limited) and reports `callers` acquires that ran out of time in `phase`.
    pub(crate) fn report_acquire_timeouts(&self, phase: TimeoutPhase, callers: usize) {
        if callers == 0 {
            return;
        }
        if let Some(suppressed) = self.admit(&self.logs.acquire_timeout) {
            tracing::warn!(pool = %self.name(), phase = phase.as_str(), waiters = callers, suppressed_warnings = suppressed, "acquire timed out");
        }
        for _ in 0..callers {
            self.timed_out(phase);
        }
    }
}
