//! # Implementation details
//!
//! The machinery behind `Pool`: what every clone of a pool shares (`Inner`), and one file for
//! each thing that happens to a connection. See the crate docs' "How a connection moves" for
//! the map.
//!
//! Modules depend one way: `live` ← `waiters` ← `state` ← `lock` ← the steps (`acquire`,
//! `release`, `connect`, `maintenance`, `timer`, `close`, `work`), which meet only through
//! methods of `Inner`. This file names only the bottom ones.

pub(crate) mod acquire;
mod close;
mod connect;
mod guards;
pub(crate) mod live;
mod lock;
mod maintenance;
pub(crate) mod off_worker;
mod release;
mod slab;
mod state;
mod timer;
mod waiters;
pub(crate) mod work;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use self::state::State;
use crate::clock::CoarseClock;
use crate::connector::Connector;
use crate::error::PoolError;
use crate::log_limit::{LogLimit, LogLimits};
use crate::observer::{PoolObserver, TimeoutPhase};
use crate::options::PoolOptions;

/// What every clone of a `Pool` shares: options, connector, the locked state, the observer
/// and the handles of the background tasks.
pub(crate) struct Inner<C: Connector> {
    pub(crate) options: PoolOptions,
    pub(crate) connector: C,
    /// On cache lines of its own: written by every acquire and release, it would otherwise
    /// evict the read-mostly fields (options, observer) and the reference count from the
    /// other cores' caches. Reached only through `lock()`.
    state: CachePadded<Mutex<State<C::Connection>>>,
    observer: OnceLock<Arc<dyn PoolObserver>>,
    /// Signalled when a connection or a connect comes back while the pool is closing.
    close_notify: Notify,
    runtime: Option<Handle>,
    /// True while the maintenance task exists (cleared when it exits, panics or is dropped).
    maintenance_running: Arc<AtomicBool>,
    /// True while the deadline timer exists, likewise.
    timer_running: Arc<AtomicBool>,
    /// Wakes the deadline timer (shared with it, so it can wait without keeping the pool).
    timer_notify: Arc<Notify>,
    clock: CoarseClock,
    logs: LogLimits,
    /// Cancels of timed-out queries under way at once (each on a connection of its own,
    /// beside `max_connections`): one, so a storm of timeouts costs the server one extra
    /// connection, not one per timeout.
    cancels: tokio::sync::Semaphore,
    /// The server the latest connection opened on, when the connector has several: where
    /// the pool is now.
    server: Mutex<Option<crate::connector::Server>>,
    /// How many times `server` changed.
    server_changes: AtomicU64,
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
            state: CachePadded(Mutex::new(State::new(
                options.max_connections,
                options.min_connections,
            ))),
            options,
            connector,
            observer: OnceLock::new(),
            close_notify: Notify::new(),
            runtime: Handle::try_current().ok(),
            maintenance_running: Arc::new(AtomicBool::new(false)),
            timer_running: Arc::new(AtomicBool::new(false)),
            timer_notify: Arc::new(Notify::new()),
            clock: CoarseClock::new(),
            logs: LogLimits::default(),
            cancels: tokio::sync::Semaphore::new(1),
            server: Mutex::new(None),
            server_changes: AtomicU64::new(0),
        }
    }

    /// Whether an observer is installed (it needs the times an acquire and a use took).
    #[inline]
    pub(crate) fn is_observed(&self) -> bool {
        self.observer.get().is_some()
    }

    /// Tells the observer of an event, after the pool's bookkeeping is done and outside its
    /// lock (the observer may call back into the pool). A panicking observer loses its event,
    /// never the caller's connection: the panic stops here and is logged.
    #[inline]
    pub(crate) fn notify(&self, event: impl FnOnce(&dyn PoolObserver)) {
        let Some(observer) = self.observer.get() else {
            return;
        };
        let observer: &dyn PoolObserver = observer.as_ref();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| event(observer))).is_err()
            && let Some(suppressed) = self.admit(&self.logs.observer_panic)
        {
            tracing::error!(pool = %self.name(), suppressed_warnings = suppressed, "the pool's observer panicked; its event was dropped");
        }
    }

    /// Whether to write a rate-limited line now (see `LogLimit::admit`).
    pub(crate) fn admit(&self, limit: &LogLimit) -> Option<u64> {
        limit.admit(self.clock.ms_at(self.clock.refresh()))
    }

    /// Installs the one observer; false if one was installed already.
    pub(crate) fn set_observer(&self, observer: Arc<dyn PoolObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    pub(crate) fn name(&self) -> &Arc<str> {
        &self.options.name
    }

    pub(crate) fn closed_error(&self) -> PoolError {
        PoolError::Closed {
            pool: self.name().clone(),
        }
    }

    /// The checkout start time, read only when leak detection or an observer needs it.
    #[inline]
    pub(crate) fn checkout_clock(&self) -> Option<Instant> {
        (self.options.leak_detection_threshold.is_some() || self.is_observed()).then(Instant::now)
    }

    /// Spawns a background step on the pool's runtime (or the current one). Returns false
    /// outside any runtime.
    pub(crate) fn spawn<F>(&self, fut: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_task(fut).is_some()
    }

    /// `spawn`, keeping the task's handle.
    pub(crate) fn spawn_task<F>(&self, fut: F) -> Option<tokio::task::JoinHandle<()>>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone())?;
        Some(handle.spawn(fut))
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

    /// Records the server a new connection opened on; a change of server (a failover, a
    /// preferred server back) is logged once, when it happens.
    pub(crate) fn note_server(&self, server: &crate::connector::Server) {
        let mut current = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        match current.as_ref() {
            Some(previous) if previous.index == server.index => return,
            Some(previous) => {
                // Ordering: a counter read for stats; nothing else is published through it.
                self.server_changes.fetch_add(1, Ordering::Relaxed);
                tracing::info!(pool = %self.name(), from = %previous.address, to = %server.address, "pool moved to another server: new connections open there");
            }
            None => {
                tracing::info!(pool = %self.name(), to = %server.address, "pool connected to its server");
            }
        }
        *current = Some(server.clone());
    }

    /// How many times new connections moved to another server.
    pub(crate) fn server_changes(&self) -> u64 {
        // Ordering: see `note_server`.
        self.server_changes.load(Ordering::Relaxed)
    }

    /// The server the latest connection opened on (see `note_server`).
    pub(crate) fn server(&self) -> Option<Arc<str>> {
        let current = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().map(|s| Arc::clone(&s.address))
    }

    pub(crate) fn timed_out(&self, phase: TimeoutPhase) {
        self.notify(|obs| obs.on_timeout(phase));
    }
}

impl<C: Connector> Drop for Inner<C> {
    fn drop(&mut self) {
        // Lets a parked deadline timer see the pool is gone.
        self.timer_notify.notify_one();
    }
}
