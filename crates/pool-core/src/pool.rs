//! `Pool`: the public handle and the acquire path.

use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::Location;
use std::sync::Arc;

use futures_core::future::BoxFuture;
use tokio::time::Instant;

use crate::clock::ms;
use crate::connector::Connector;
use crate::error::PoolError;
use crate::guard::{LiveGuard, WaiterGuard};
use crate::inner::Inner;
use crate::internals::Slot;
use crate::observer::{PoolObserver, TimeoutPhase};
use crate::options::PoolOptions;
use crate::pooled::PooledConnection;
use crate::stats::PoolStats;

/// A fair, bounded pool of connections made by a [`Connector`].
///
/// Cheap to clone: clones share one pool. Connections are opened on demand and in the
/// background (`min_connections`); the background task stops when the last clone is dropped
/// or the pool is closed.
pub struct Pool<C: Connector> {
    pub(crate) inner: Arc<Inner<C>>,
}

impl<C: Connector> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: Connector> fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name())
            .field("stats", &self.stats())
            .finish()
    }
}

impl<C: Connector> Pool<C> {
    pub(crate) fn from_parts(options: PoolOptions, connector: C) -> Self {
        let inner = Arc::new(Inner::new(options, connector));
        if inner.spawn(async {}) {
            inner.ensure_maintenance();
            // Opening min_connections in the background: building never waits for a server.
            let _ = inner.start_connects();
        }
        Pool { inner }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The connector, e.g. to rotate credentials with `PgConnector::set_password`.
    pub fn connector(&self) -> &C {
        &self.inner.connector
    }

    /// The options the pool was built with.
    pub fn options(&self) -> &PoolOptions {
        &self.inner.options
    }

    /// A snapshot of counts and cumulative counters (one short lock).
    pub fn stats(&self) -> PoolStats {
        self.inner.lock().stats()
    }

    /// Whether `close()` has begun.
    pub fn is_closing(&self) -> bool {
        self.inner.lock().closing
    }

    /// Whether the background maintenance task (reaping, refill, lifetime, keepalive, leak
    /// reports) is running. It starts when the pool is built inside a Tokio runtime (else at
    /// the first acquire in one) and stops at its first tick after `close()` begins, when its
    /// runtime shuts down, or if it panics; an open pool without it no longer refills or
    /// reaps.
    pub fn is_maintenance_running(&self) -> bool {
        self.inner
            .maintenance_running
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Installs the pool's one observer. Returns false (and keeps the first) if one was
    /// installed already. Without an observer the hot path reads no clock for it.
    pub fn set_observer(&self, observer: Arc<dyn PoolObserver>) -> bool {
        self.inner.observer.set(observer).is_ok()
    }

    /// Checks out a connection: an idle one at once (validated first if it was idle longer
    /// than `validate_after_idle`), else waits in FIFO order for a released or newly opened
    /// one, all within `acquire_timeout`.
    ///
    /// # Errors
    /// [`PoolError::Closed`] after `close()`; [`PoolError::TooManyWaiters`] when `max_waiters`
    /// callers already wait; [`PoolError::Timeout`] when `acquire_timeout` ran out (phase
    /// `Connecting` with the last connect error while connects were failing);
    /// [`PoolError::Authentication`] / [`PoolError::Connect`] at once when the server refuses
    /// the credentials or the database.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future at any point loses no capacity and leaks no
    /// connection. A connection delivered to it meanwhile goes to the next waiter, and a
    /// connect started for it finishes and serves the next waiter.
    #[track_caller]
    pub fn acquire(
        &self,
    ) -> impl Future<Output = Result<PooledConnection<C>, PoolError>> + Send + 'static {
        let location = Location::caller();
        let inner = Arc::clone(&self.inner);
        async move { acquire(inner, location).await }
    }

    /// Checks out an idle connection if one is free at once, without waiting, validating or
    /// connecting; `Ok(None)` otherwise.
    ///
    /// # Errors
    /// [`PoolError::Closed`] after `close()`.
    #[track_caller]
    pub fn try_acquire(&self) -> Result<Option<PooledConnection<C>>, PoolError> {
        let location = Location::caller();
        let inner = &self.inner;
        let since = inner.checkout_clock();
        let mut st = inner.lock();
        if st.closing {
            return Err(inner.closed_error());
        }
        let Some(live) = st.take_idle() else {
            return Ok(None);
        };
        let key = st.register_checkout(location, since);
        st.check_invariants();
        drop(st);
        Ok(Some(PooledConnection::new(
            Arc::clone(inner),
            live,
            key,
            since,
            since,
        )))
    }

    /// Acquires a connection and runs `work` on it under `query_timeout`; see
    /// [`PooledConnection::run`].
    ///
    /// # Errors
    /// The acquire's [`PoolError`] or a query timeout (converted into `E`), or `work`'s error.
    ///
    /// # Cancel safety
    /// Cancel safe for the pool: a connection dropped mid-work is discarded, never reused.
    #[track_caller]
    pub fn run<T, E, F>(&self, work: F) -> impl Future<Output = Result<T, E>> + Send + 'static
    where
        T: Send + 'static,
        E: From<PoolError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut C::Connection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        let acquiring = self.acquire();
        async move { acquiring.await?.run(work).await }
    }
}

impl<C: Connector> Inner<C> {
    /// The checkout start time, read only when leak detection or an observer needs it.
    #[inline]
    pub(crate) fn checkout_clock(&self) -> Option<Instant> {
        (self.options.leak_detection_threshold.is_some() || self.observer().is_some())
            .then(Instant::now)
    }

    /// The error of an acquire that ran out of time while validating.
    fn validation_timed_out(&self) -> PoolError {
        let mut st = self.lock();
        st.counters.acquire_timeouts += 1;
        drop(st);
        self.acquire_timeout_error(TimeoutPhase::Validating, None)
    }

    /// Logs and reports an acquire timeout in `phase`.
    pub(crate) fn acquire_timeout_error(
        &self,
        phase: TimeoutPhase,
        last_error: Option<crate::error::SharedError>,
    ) -> PoolError {
        tracing::warn!(pool = %self.name(), phase = phase.as_str(), "acquire timed out");
        self.timed_out(phase);
        PoolError::Timeout {
            pool: self.name().clone(),
            phase,
            elapsed: self.options.acquire_timeout,
            last_error,
        }
    }
}

/// What the acquire loop does next, decided under the lock.
enum Step<T: Connector> {
    /// Checked out under this key at this time: the caller builds the handle from its own
    /// `Arc`, so a checkout clones no reference.
    Ready(
        crate::internals::Live<<T as Connector>::Connection>,
        usize,
        Option<Instant>,
    ),
    Validate(crate::internals::Live<<T as Connector>::Connection>),
    /// Queued with this delivery slot (the task registers its waker there);
    /// this many connects were reserved for the queue; the deadline timer must be woken
    /// (first waiter).
    Wait(Arc<Slot<<T as Connector>::Connection>>, u32, bool),
}

impl<C: Connector> Inner<C> {
    fn next_step(
        &self,
        location: &'static Location<'static>,
        started: Option<Instant>,
    ) -> Result<Step<C>, PoolError> {
        let mut st = self.lock();
        if st.closing {
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
            let key = st.register_checkout(location, since);
            st.check_invariants();
            drop(st);
            return Ok(Step::Ready(live, key, since));
        }
        // Shed only when this caller would really queue: a pool with room opens a connection
        // for it instead.
        if let Some(max) = self.options.max_waiters
            && st.waiting() >= max
            && st.total + st.connecting >= self.options.max_connections
        {
            drop(st);
            tracing::warn!(pool = %self.name(), max_waiters = max, "acquire refused: too many waiters");
            return Err(PoolError::TooManyWaiters {
                pool: self.name().clone(),
                max_waiters: max,
            });
        }
        // No clock is read: the deadline timer's rounds time the wait. The waker goes into
        // the waiter's slot after the lock is released.
        let (slot, first) = st.push_waiter(location);
        Ok(Step::Wait(slot, st.reserve_connects(), first))
    }
}

async fn acquire<C: Connector>(
    inner: Arc<Inner<C>>,
    location: &'static Location<'static>,
) -> Result<PooledConnection<C>, PoolError> {
    let started = inner.observer().map(|_| Instant::now());
    // Computed only when validating: a waiting acquire is timed by the deadline timer.
    let mut deadline = None;
    loop {
        let step = inner.next_step(location, started)?;
        match step {
            Step::Ready(live, key, since) => {
                // Served at once from the idle queue: no wait, by definition.
                return Ok(PooledConnection::new(inner, live, key, since, None));
            }
            Step::Validate(live) => {
                if let Err(error) = inner.require_runtime() {
                    inner.retire(live, crate::stats::CloseReason::Discarded);
                    return Err(error);
                }
                let deadline = *deadline.get_or_insert_with(|| {
                    started.unwrap_or_else(|| inner.clock.refresh()) + inner.options.acquire_timeout
                });
                // Cancel safety: while validating, the connection is in a guard that retires
                // it if this future is dropped.
                let mut guard = LiveGuard::new(&inner, live);
                let Some(live) = guard.live_mut() else {
                    continue;
                };
                // Boxed: validation is the rare path (a connection idle for a while), and
                // keeping its timer out of line keeps every acquire future small.
                match Box::pin(tokio::time::timeout_at(deadline, inner.validate(live))).await {
                    Ok(Ok(())) => {
                        if let Some(live) = guard.take() {
                            return Ok(checked_out(inner, live, location, started));
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
            Step::Wait(slot, connects, first) => {
                // Cancel safety: the queue slot is in a guard from here on.
                let mut guard = WaiterGuard::new(&inner, slot);
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
                let handoff = poll_fn(|cx| guard.poll_delivery(cx)).await?;
                drop(guard);
                return Ok(PooledConnection::new(
                    inner,
                    handoff.live,
                    handoff.checkout,
                    handoff.since,
                    started,
                ));
            }
        }
    }
}

fn checked_out<C: Connector>(
    inner: Arc<Inner<C>>,
    live: crate::internals::Live<C::Connection>,
    location: &'static Location<'static>,
    started: Option<Instant>,
) -> PooledConnection<C> {
    let since = inner.checkout_clock();
    let mut st = inner.lock();
    let key = st.register_checkout(location, since);
    st.check_invariants();
    drop(st);
    PooledConnection::new(inner, live, key, since, started)
}
