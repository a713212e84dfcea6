//! `Pool`: the public handle, and `PoolOptions::build` that makes one.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use futures_core::future::BoxFuture;
use futures_util::future::Either;

use crate::close_report::CloseReport;
use crate::connector::Connector;
use crate::error::PoolError;
use crate::inner::Inner;
use crate::inner::acquire::Acquired;
use crate::observer::PoolObserver;
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

impl PoolOptions {
    /// Builds the pool. Connections are opened in the background (`min_connections`) or on
    /// demand; building never waits for the server.
    ///
    /// # Errors
    /// [`PoolError::InvalidOption`] naming the first setting that is out of range or
    /// contradicts another.
    pub fn build<C: Connector>(self, connector: C) -> Result<Pool<C>, PoolError> {
        self.check()?;
        let inner = Arc::new(Inner::new(self, connector));
        if inner.spawn(async {}) {
            inner.ensure_maintenance();
            // Opening min_connections in the background: building never waits for a server.
            inner.start_connects();
        }
        Ok(Pool { inner })
    }
}

impl<C: Connector> Pool<C> {
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
        let mut stats = self.inner.lock().stats();
        stats.server_changes = self.inner.server_changes();
        stats
    }

    /// The server (`host:port`) the pool's latest connection opened on, when its connector
    /// has several to choose from (several hosts in the settings); `None` with one.
    /// After a failover it names the new server as soon as a connection opened there.
    pub fn server(&self) -> Option<Arc<str>> {
        self.inner.server()
    }

    /// Whether `close()` has begun.
    pub fn is_closing(&self) -> bool {
        self.inner.lock().is_closing()
    }

    /// Whether the background maintenance task (reaping, refill, lifetime, keepalive, leak
    /// reports) is running. It starts when the pool is built inside a Tokio runtime (else at
    /// the first acquire in one) and stops at its first tick after `close()` begins, when its
    /// runtime shuts down, or if it panics; an open pool without it no longer refills or
    /// reaps.
    pub fn is_maintenance_running(&self) -> bool {
        self.inner.is_maintenance_running()
    }

    /// Installs the pool's one observer. Returns false (and keeps the first) if one was
    /// installed already. Without an observer the hot path reads no clock for it.
    pub fn set_observer(&self, observer: Arc<dyn PoolObserver>) -> bool {
        self.inner.set_observer(observer)
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
        if inner.connector.has_before_acquire() {
            // Boxed, and chosen before any future is built: the hook's path adds no state
            // to every other acquire's future.
            return Either::Left(Box::pin(PooledConnection::acquire_hooked(inner, location)));
        }
        Either::Right(async move {
            let acquired = inner.acquire(location).await?;
            Ok(PooledConnection::new(inner, acquired))
        })
    }

    /// Checks out an idle connection if one is free at once, without waiting, validating or
    /// connecting; `Ok(None)` otherwise. The connector's `before_acquire` hook (async) does
    /// not run here: with one set, prefer [`acquire`](Pool::acquire).
    ///
    /// # Errors
    /// [`PoolError::Closed`] after `close()`.
    #[track_caller]
    pub fn try_acquire(&self) -> Result<Option<PooledConnection<C>>, PoolError> {
        let checkout = self.inner.try_acquire(Location::caller())?;
        Ok(checkout.map(|checkout| {
            let acquired = Acquired {
                checkout,
                wait_started: None,
            };
            PooledConnection::new(Arc::clone(&self.inner), acquired)
        }))
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

    /// Closes the pool: new acquires fail with [`PoolError::Closed`], waiters are woken with
    /// it, idle connections are closed, and checked-out connections are awaited until
    /// `deadline` from now (each is closed as it comes back), as are connects in flight.
    /// Calling it again waits again and reports what is still out.
    ///
    /// # Cancel safety
    /// Cancel safe: the pool is closed from the first poll on; dropping the future only stops
    /// the waiting and the report.
    pub async fn close(&self, deadline: Duration) -> CloseReport {
        self.inner.close(deadline).await
    }
}
