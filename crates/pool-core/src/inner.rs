//! # Implementation details
//!
//! The state every `Pool` clone shares: options, connector, the locked bookkeeping, the
//! observer. Everything that moves a connection between states lives here: connect tasks with
//! backoff, release, retirement, cleanup of dirty connections and graceful closes.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::clock::{CoarseClock, ms};
use crate::connector::{Connected, Connector, ErrorClass};
use crate::error::{PoolError, SharedError};
use crate::internals::{Handoff, Handover, Internals, Live, LiveState, Released};
use crate::observer::{PoolObserver, TimeoutPhase};
use crate::options::PoolOptions;
use crate::stats::CloseReason;

pub(crate) struct Inner<C: Connector> {
    pub(crate) options: PoolOptions,
    pub(crate) connector: C,
    /// On cache lines of its own: written by every acquire and release, it would otherwise
    /// evict the read-mostly fields (options, observer) and the reference count from the
    /// other cores' caches.
    state: CachePadded<Mutex<Internals<C::Connection>>>,
    pub(crate) observer: OnceLock<Arc<dyn PoolObserver>>,
    /// Signalled on every release and removal while the pool is closing.
    pub(crate) close_notify: Notify,
    runtime: Option<Handle>,
    maintenance_started: AtomicBool,
    /// True while the maintenance task exists (cleared when it exits, panics or is dropped).
    pub(crate) maintenance_running: Arc<AtomicBool>,
    pub(crate) timer_started: AtomicBool,
    /// Wakes the deadline timer (shared with it, so it can wait without keeping the pool).
    pub(crate) timer_notify: Arc<Notify>,
    pub(crate) clock: CoarseClock,
}

/// Aligns its content to two cache lines (the unit adjacent-line prefetchers pull in), so
/// nothing else shares them.
#[derive(Debug)]
#[repr(align(128))]
struct CachePadded<T>(T);

impl<C: Connector> std::fmt::Debug for Inner<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("name", &self.options.name)
            .finish_non_exhaustive()
    }
}

impl<C: Connector> Inner<C> {
    pub(crate) fn new(options: PoolOptions, connector: C) -> Self {
        Inner {
            state: CachePadded(Mutex::new(Internals::new(
                options.max_connections,
                options.min_connections,
            ))),
            options,
            connector,
            observer: OnceLock::new(),
            close_notify: Notify::new(),
            runtime: Handle::try_current().ok(),
            maintenance_started: AtomicBool::new(false),
            maintenance_running: Arc::new(AtomicBool::new(false)),
            timer_started: AtomicBool::new(false),
            timer_notify: Arc::new(Notify::new()),
            clock: CoarseClock::new(),
        }
    }

    /// Locks the bookkeeping. A panic while locked cannot leave it half-updated (no
    /// user code runs under the lock), so a poisoned lock is used as is: never a panic here.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Internals<C::Connection>> {
        self.state.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    pub(crate) fn observer(&self) -> Option<&Arc<dyn PoolObserver>> {
        self.observer.get()
    }

    pub(crate) fn name(&self) -> &Arc<str> {
        &self.options.name
    }

    pub(crate) fn closed_error(&self) -> PoolError {
        PoolError::Closed {
            pool: self.name().clone(),
        }
    }

    /// Spawns a background step on the pool's runtime (or the current one). Returns false
    /// outside any runtime.
    pub(crate) fn spawn<F>(&self, fut: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match Handle::try_current().ok().or_else(|| self.runtime.clone()) {
            Some(handle) => {
                drop(handle.spawn(fut));
                true
            }
            None => false,
        }
    }

    /// Timers need a tokio runtime: without one, an error rather than tokio's panic.
    ///
    /// # Errors
    /// [`PoolError::NoRuntime`] outside a tokio runtime.
    pub(crate) fn require_runtime(&self) -> Result<(), PoolError> {
        // A tokio task runs inside its runtime: a thread-local read, where `try_current`
        // would clone (and drop) the runtime's shared handle on every waiting acquire.
        if tokio::task::try_id().is_some() || Handle::try_current().is_ok() {
            return Ok(());
        }
        Err(PoolError::NoRuntime {
            pool: self.name().clone(),
        })
    }

    /// Starts the maintenance task once, when a runtime is available.
    pub(crate) fn ensure_maintenance(self: &Arc<Self>) {
        // Ordering: the flag only guards against a second task; nothing else is published.
        // Read first: waiting acquires call this, and a swap would write a shared line.
        if self.maintenance_started.load(Ordering::Relaxed)
            || self.maintenance_started.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let weak = Arc::downgrade(self);
        let tick = self.options.tick();
        let running = crate::maintenance::Running::start(&self.maintenance_running);
        if !self.spawn(crate::maintenance::run(weak, tick, running)) {
            self.maintenance_started.store(false, Ordering::Relaxed);
        }
    }

    pub(crate) fn timed_out(&self, phase: TimeoutPhase) {
        if let Some(obs) = self.observer() {
            obs.on_timeout(phase);
        }
    }

    /// Starts the connect tasks the waiters and `min_connections` need.
    ///
    /// # Errors
    /// [`PoolError::NoRuntime`] when a connect was needed but could not be started.
    pub(crate) fn start_connects(self: &Arc<Self>) -> Result<(), PoolError> {
        let n = self.lock().reserve_connects();
        self.spawn_connects(n)
    }

    /// Spawns `n` connect tasks whose slots are already reserved.
    ///
    /// # Errors
    /// [`PoolError::NoRuntime`] when they could not be started (the reservations are undone).
    pub(crate) fn spawn_connects(self: &Arc<Self>, n: u32) -> Result<(), PoolError> {
        for i in 0..n {
            if !self.spawn(connect_task(Arc::downgrade(self))) {
                let mut st = self.lock();
                st.connecting -= n - i;
                drop(st);
                return Err(PoolError::NoRuntime {
                    pool: self.name().clone(),
                });
            }
        }
        Ok(())
    }

    /// Opens one connection, bounded by `connect_timeout`.
    async fn connect_once(&self) -> Result<Live<C::Connection>, (ErrorClass, SharedError)> {
        let started = self.clock.refresh();
        let result =
            tokio::time::timeout(self.options.connect_timeout, self.connector.connect()).await;
        match result {
            Ok(Ok(Connected {
                connection,
                backend_pid,
                ..
            })) => {
                let now = self.clock.refresh();
                let elapsed = now - started;
                let now_ms = self.clock.ms_at(now);
                tracing::debug!(pool = %self.name(), ?elapsed, backend_pid, "connection opened");
                if let Some(obs) = self.observer() {
                    obs.on_connect(elapsed);
                }
                Ok(Box::new(LiveState {
                    conn: connection,
                    backend_pid,
                    pid_asked: backend_pid.is_some(),
                    created_at: now,
                    expires_at: self
                        .options
                        .max_lifetime
                        .map(|lifetime| now_ms.saturating_add(ms(self.jittered(lifetime)))),
                    use_count: 0,
                    last_used: now_ms,
                    last_checked: now_ms,
                }))
            }
            Ok(Err(error)) => {
                let class = self.connector.classify(&error);
                tracing::warn!(pool = %self.name(), error = %error, ?class, "connect failed");
                Err((class, Arc::new(error)))
            }
            Err(_) => {
                let error = ConnectTimedOut(self.options.connect_timeout);
                tracing::warn!(pool = %self.name(), error = %error, "connect failed");
                self.timed_out(TimeoutPhase::Connecting);
                Err((ErrorClass::Transient, Arc::new(error)))
            }
        }
    }

    fn jittered(&self, lifetime: Duration) -> Duration {
        let jitter = self.options.lifetime_jitter.as_millis() as u64;
        let off = if jitter == 0 {
            0
        } else {
            fastrand::u64(0..=jitter)
        };
        lifetime.saturating_sub(Duration::from_millis(off))
    }

    /// Exponential backoff with full jitter, capped.
    fn backoff(&self, failures: u32) -> Duration {
        let initial = self.options.connect_backoff_initial;
        let cap = self.options.connect_backoff_max;
        let exp = initial.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        let ceiling = exp.min(cap).as_millis() as u64;
        Duration::from_millis(fastrand::u64(ceiling / 2..=ceiling.max(1)))
    }

    /// Hands a connection that is clean to the oldest waiter, or back to the idle queue.
    pub(crate) fn release(self: &Arc<Self>, mut live: Live<C::Connection>) {
        live.last_used = self.clock.now();
        self.put_back(live);
    }

    /// Like `release`, but the connection keeps its idle age (after a keepalive ping).
    pub(crate) fn put_back(self: &Arc<Self>, live: Live<C::Connection>) {
        let since = self.checkout_clock();
        let mut st = self.lock();
        let outcome = st.release(live, since);
        let closing = st.closing;
        st.check_invariants();
        drop(st);
        self.after_release(outcome, closing);
    }

    pub(crate) fn after_release(self: &Arc<Self>, outcome: Released<C::Connection>, closing: bool) {
        match outcome {
            Released::Handed(handover) => self.hand_over(handover),
            Released::Idle => {}
            Released::Close(live) => self.close_in_background(live, CloseReason::PoolClosed),
        }
        if closing {
            self.close_notify.notify_waiters();
        }
    }

    /// Puts a delivery into its picked waiter's slot and wakes the waiter (call it without
    /// the pool's lock). A connection for a waiter that gave up meanwhile goes back to the
    /// pool, to the next waiter or the idle queue; an error for one is dropped.
    pub(crate) fn hand_over(self: &Arc<Self>, (slot, delivery): Handover<C::Connection>) {
        match slot.fill(delivery) {
            Ok(Some(waker)) => waker.wake(),
            Ok(None) | Err(Err(_)) => {}
            Err(Ok(handoff)) => self.take_back(handoff),
        }
    }

    /// Takes back a connection delivered to a waiter that gave up: its checkout is undone and
    /// it goes to the next waiter or the idle queue.
    pub(crate) fn take_back(self: &Arc<Self>, handoff: Handoff<C::Connection>) {
        let live = self.lock().undo_handoff(handoff);
        self.put_back(live);
    }

    /// Takes a connection counted as in use out of the pool and closes it in the
    /// background; starts a replacement if someone needs one.
    pub(crate) fn retire(self: &Arc<Self>, live: Live<C::Connection>, reason: CloseReason) {
        let mut st = self.lock();
        st.uncount(reason);
        let closing = st.closing;
        st.check_invariants();
        drop(st);
        self.close_in_background(live, reason);
        if closing {
            self.close_notify.notify_waiters();
        } else if let Err(error) = self.start_connects() {
            tracing::warn!(pool = %self.name(), %error, "could not start a replacement connection");
        }
    }

    /// Closes an already uncounted connection, bounded by `close_timeout`.
    pub(crate) fn close_in_background(
        self: &Arc<Self>,
        live: Live<C::Connection>,
        reason: CloseReason,
    ) {
        tracing::debug!(pool = %self.name(), %reason, backend_pid = live.backend_pid, uses = live.use_count, "connection removed");
        if let Some(obs) = self.observer() {
            obs.on_remove(reason);
        }
        if matches!(reason, CloseReason::Broken | CloseReason::Discarded) {
            // A broken or abandoned connection gets no goodbye: dropping it closes the socket.
            drop(live);
            return;
        }
        let inner = Arc::clone(self);
        // Without a runtime the connection is dropped here, which closes its socket.
        let _ = self.spawn(async move { inner.close_bounded(live.conn).await });
    }

    pub(crate) async fn close_bounded(&self, conn: C::Connection) {
        let limit = self.options.close_timeout;
        if tokio::time::timeout(limit, self.connector.close(conn))
            .await
            .is_err()
        {
            tracing::debug!(pool = %self.name(), ?limit, "graceful close timed out; connection dropped");
            self.timed_out(TimeoutPhase::Closing);
        }
    }

    /// A connection came back needing cleanup (open transaction, reset on release): clean it
    /// in the background, bounded, then release or discard it.
    pub(crate) fn clean_in_background(self: &Arc<Self>, mut live: Live<C::Connection>) {
        let inner = Arc::clone(self);
        let task = async move {
            let limit = inner.options.cleanup_timeout_or_default();
            let reset = inner.options.reset_on_release;
            match tokio::time::timeout(limit, inner.connector.cleanup(&mut live.conn, reset)).await
            {
                Ok(Ok(())) => inner.release(live),
                Ok(Err(error)) => {
                    tracing::warn!(pool = %inner.name(), %error, "cleaning a returned connection failed; discarded");
                    let reason = inner.reason_for(&error, CloseReason::Discarded);
                    inner.retire(live, reason);
                }
                Err(_) => {
                    tracing::warn!(pool = %inner.name(), ?limit, "cleaning a returned connection timed out; discarded");
                    inner.timed_out(TimeoutPhase::Resetting);
                    inner.retire(live, CloseReason::Discarded);
                }
            }
        };
        if !self.spawn(task) {
            // No runtime to clean it in: the connection cannot be trusted, so it goes.
            let mut st = self.lock();
            st.uncount(CloseReason::Discarded);
            st.check_invariants();
        }
    }

    /// The close reason for an error seen on a connection.
    pub(crate) fn reason_for(&self, error: &C::Error, otherwise: CloseReason) -> CloseReason {
        match self.connector.classify(error) {
            ErrorClass::ReadOnly if self.options.check_writable => CloseReason::ReadOnly,
            ErrorClass::Broken => CloseReason::Broken,
            _ => otherwise,
        }
    }

    /// Validates (or pings) a connection held as in use, bounded by `validation_timeout`.
    pub(crate) async fn validate(&self, live: &mut Live<C::Connection>) -> Result<(), CloseReason> {
        let limit = self.options.validation_timeout_or_default();
        match tokio::time::timeout(limit, self.connector.validate(&mut live.conn)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::info!(pool = %self.name(), %error, "connection failed validation");
                Err(self.reason_for(&error, CloseReason::ValidationFailed))
            }
            Err(_) => {
                tracing::info!(pool = %self.name(), ?limit, "validation timed out");
                self.timed_out(TimeoutPhase::Validating);
                Err(CloseReason::ValidationFailed)
            }
        }
    }
}

impl<C: Connector> Drop for Inner<C> {
    fn drop(&mut self) {
        // Lets a parked deadline timer see the pool is gone.
        self.timer_notify.notify_one();
    }
}

/// A connect attempt that ran out of `connect_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out after {0:?}")]
pub(crate) struct ConnectTimedOut(pub(crate) Duration);

/// Gives back a connect reservation if a connect task ends without reaching its outcome
/// (the runtime shut down mid-connect).
struct Reservation<C: Connector> {
    inner: Option<Arc<Inner<C>>>,
}

impl<C: Connector> Drop for Reservation<C> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let mut st = inner.lock();
            st.connecting -= 1;
        }
    }
}

/// One reserved connect slot: connect, and on transient failure back off and retry while
/// someone still needs it. Holds only a weak reference while sleeping, so a dropped pool is
/// not kept alive by its refill.
async fn connect_task<C: Connector>(weak: Weak<Inner<C>>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        // Cancel safety: the reservation is in a guard before the first await.
        let mut reservation = Reservation {
            inner: Some(Arc::clone(&inner)),
        };
        let outcome = inner.connect_once().await;
        reservation.inner = None;
        let Some(delay) = inner.connect_finished(outcome) else {
            return;
        };
        drop(inner);
        tokio::time::sleep(delay).await;
        // The reservation is still held (counted in `connecting`): keep it only if needed.
        let Some(inner) = weak.upgrade() else { return };
        if !inner.keep_reservation() {
            return;
        }
    }
}

impl<C: Connector> Inner<C> {
    /// Books a connect attempt's outcome; returns the backoff delay if the task should retry.
    fn connect_finished(
        self: &Arc<Self>,
        outcome: Result<Live<C::Connection>, (ErrorClass, SharedError)>,
    ) -> Option<Duration> {
        let since = self.checkout_clock();
        let mut st = self.lock();
        let (class, error) = match outcome {
            Ok(live) => {
                let released = st.add_new(live, since);
                let closing = st.closing;
                st.check_invariants();
                drop(st);
                self.after_release(released, closing);
                return None;
            }
            Err(failure) => failure,
        };
        st.counters.connect_failures += 1;
        st.consecutive_failures = st.consecutive_failures.saturating_add(1);
        st.last_connect_error = Some(Arc::clone(&error));
        let failures = st.consecutive_failures;
        if let Some(obs) = self.observer() {
            obs.on_connect_error();
        }
        let at_once = match class {
            ErrorClass::Authentication => Some(PoolError::Authentication {
                pool: self.name().clone(),
                source: error,
            }),
            ErrorClass::Fatal => Some(PoolError::Connect {
                pool: self.name().clone(),
                source: error,
            }),
            _ => None,
        };
        if let Some(err) = at_once
            && st.waiting() > 0
        {
            // The oldest waiter learns at once; the slot is freed so the next waiter gets its
            // own attempt rather than a timeout.
            st.connecting -= 1;
            let failed = st.fail_oldest(err);
            drop(st);
            if let Some(handover) = failed {
                self.hand_over(handover);
            }
            let _ = self.start_connects();
            return None;
        }
        if !st.still_needed() {
            st.connecting -= 1;
            let closing = st.closing;
            drop(st);
            if closing {
                self.close_notify.notify_waiters();
            }
            return None;
        }
        Some(self.backoff(failures))
    }

    /// After a backoff: keeps the connect reservation if someone still needs it, else gives
    /// it back.
    fn keep_reservation(&self) -> bool {
        let mut st = self.lock();
        if st.still_needed() {
            return true;
        }
        st.connecting -= 1;
        let closing = st.closing;
        drop(st);
        if closing {
            self.close_notify.notify_waiters();
        }
        false
    }
}
