//! The operator's runtime controls: resize, evict, pause and resume, and the fail-fast start.
//! Each is one short lock (the fail-fast start also one bounded connect), fails no caller,
//! and shows in [`PoolStats`](crate::PoolStats) and so in the metrics.

use std::panic::Location;

use crate::connector::Connector;
use crate::error::PoolError;
use crate::options::check_size;
use crate::pool::Pool;

impl<C: Connector> Pool<C> {
    /// Sets `max_connections` and `min_connections` while the pool runs.
    ///
    /// Growing starts the connects that waiting callers (and the new minimum) need.
    /// Shrinking closes idle connections above the new maximum at once, oldest first, and
    /// connections in use above it as they come back (closed as
    /// [`CloseReason::Resized`](crate::CloseReason::Resized)); nothing checked out is taken
    /// from its caller, so `total` may stay above `max` until those come back. The
    /// maintenance task then keeps `min_connections` open as usual.
    ///
    /// # Errors
    /// [`PoolError::InvalidOption`] when `max` is 0 or above the ceiling, or `min > max`: the
    /// pool is left as it was.
    ///
    /// ```
    /// # async fn demo(pool: &pool_core::Pool<pool_core::PgConnector>) -> Result<(), pool_core::PoolError> {
    /// pool.resize(40, 5)?; // the evening batch needs more
    /// # Ok(()) }
    /// ```
    pub fn resize(&self, max: u32, min: u32) -> Result<(), PoolError> {
        check_size(max, min)?;
        tracing::info!(pool = %self.name(), max, min, "pool resized");
        self.inner.lock().resize(max, min);
        Ok(())
    }

    /// Retires every connection without failing a caller: idle ones close at once, ones in
    /// use close when they come back, and connects under way close on arrival (closed as
    /// [`CloseReason::Evicted`](crate::CloseReason::Evicted)). New connections replace them
    /// on demand and for `min_connections`.
    ///
    /// For after a failover, a credential rotation or a change of server parameters that
    /// only new sessions see.
    ///
    /// ```
    /// # fn demo(pool: &pool_core::Pool<pool_core::PgConnector>) {
    /// pool.evict(); // the primary moved: every session reconnects, no request fails
    /// # }
    /// ```
    pub fn evict(&self) {
        tracing::info!(pool = %self.name(), "every connection evicted");
        self.inner.lock().evict();
    }

    /// Pauses the pool for planned maintenance of the database: until [`resume`], no idle
    /// connection is handed out and no connection opens (a connect already under way
    /// finishes). Callers queue as usual, each bounded by its own `acquire_timeout`; work
    /// on connections already checked out goes on. Idempotent.
    ///
    /// [`resume`]: Pool::resume
    ///
    /// ```
    /// # async fn demo(pool: &pool_core::Pool<pool_core::PgConnector>) {
    /// pool.pause();
    /// // … restart or fail over the database …
    /// pool.evict(); // optional: no session from before the maintenance is reused
    /// pool.resume();
    /// # }
    /// ```
    pub fn pause(&self) {
        tracing::info!(pool = %self.name(), "pool paused");
        self.inner.lock().pause();
    }

    /// Ends [`pause`](Pool::pause): the callers waiting get the idle connections, oldest
    /// first, and connects start for the rest. Idempotent.
    pub fn resume(&self) {
        tracing::info!(pool = %self.name(), "pool resumed");
        let since = self.inner.checkout_clock();
        self.inner.lock().resume(since);
    }

    /// Whether [`pause`](Pool::pause) is in effect.
    pub fn is_paused(&self) -> bool {
        self.inner.lock().stats().paused
    }

    /// Fail-fast start: returns once the pool holds a connection. If it holds none, opens
    /// one now (one attempt, bounded by `connect_timeout`) and keeps it idle; if every slot
    /// is already being opened, waits for one of those, bounded by `connect_timeout` too.
    /// Building a pool stays lazy; call this where a service should not start without its
    /// database, as sqlx's `connect()` or HikariCP's initialization timeout do.
    ///
    /// # Errors
    /// The connect's error, naming the pool: [`PoolError::Authentication`] for refused
    /// credentials, [`PoolError::Connect`] otherwise (a timeout included);
    /// [`PoolError::Closed`] after `close()`.
    ///
    /// # Cancel safety
    /// Cancel safe: a connect dropped midway gives its slot back.
    #[track_caller]
    pub fn ready(&self) -> impl Future<Output = Result<(), PoolError>> + Send + 'static {
        let location = Location::caller();
        let inner = self.inner.clone();
        async move { inner.open_first(location).await }
    }
}
