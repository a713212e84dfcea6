//! `PooledConnection`: a checked-out connection that goes back to its pool when dropped.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use futures_core::future::BoxFuture;
use tokio::time::Instant;

use crate::connector::Connector;
use crate::error::PoolError;
use crate::inner::Inner;
use crate::inner::acquire::Acquired;
use crate::inner::live::Live;
use crate::inner::work::Work;
use crate::observer::TimeoutPhase;
use crate::stats::CloseReason;

/// A connection checked out of a [`Pool`](crate::Pool). Derefs to the connection, so for
/// PostgreSQL `sqlx::query(..).fetch_one(&mut *conn)` and `conn.begin()` work unchanged.
///
/// Dropping it returns the connection: to the oldest waiter, else to the idle queue. One
/// returned inside an sqlx transaction is rolled back first (in the background, bounded) or
/// discarded; one past `max_uses` or its lifetime is closed.
pub struct PooledConnection<C: Connector> {
    /// Taken by `drop`, `detach` and `discard`'s drop, so never dropped as a field: the
    /// release path runs no drop glue for it.
    live: ManuallyDrop<Option<Live<C::Connection>>>,
    inner: Arc<Inner<C>>,
    /// The checkout's key in the pool's list of checkouts.
    key: usize,
    /// When it was checked out (when leak detection or an observer needs it).
    since: Option<Instant>,
    /// Set when the connection must not be reused (query timeout, broken, read-only, or a
    /// unit of work dropped midway).
    discard: Option<CloseReason>,
}

impl<C: Connector> PooledConnection<C> {
    #[inline]
    pub(crate) fn new(inner: Arc<Inner<C>>, acquired: Acquired<C::Connection>) -> Self {
        let Acquired {
            checkout,
            wait_started,
        } = acquired;
        let mut live = checkout.live;
        live.use_count += 1;
        tracing::trace!(pool = %inner.name(), uses = live.use_count, "connection acquired");
        let conn = PooledConnection {
            live: ManuallyDrop::new(Some(live)),
            inner,
            key: checkout.key,
            since: checkout.since,
            discard: None,
        };
        // Told once the checkout is in its handle: an observer that panics cannot lose it.
        if conn.inner.is_observed() {
            let wait = match (wait_started, checkout.since) {
                (Some(start), Some(now)) => now.saturating_duration_since(start),
                _ => Duration::ZERO,
            };
            conn.inner.notify(|obs| obs.on_acquire(wait));
        }
        conn
    }

    /// An acquire through the connector's `before_acquire` hook: a connection it turns
    /// down is closed and the acquire goes on, all within one `acquire_timeout`.
    pub(crate) async fn acquire_hooked(
        inner: Arc<Inner<C>>,
        location: &'static Location<'static>,
    ) -> Result<Self, PoolError> {
        let deadline = Instant::now() + inner.options.acquire_timeout;
        let hooked = async {
            loop {
                let acquired = inner.acquire(location).await?;
                let mut conn = PooledConnection::new(Arc::clone(&inner), acquired);
                // Cancel safety: dropped mid-hook, the connection is closed, not reused.
                conn.discard = Some(CloseReason::Rejected);
                let live = conn.live_mut();
                let meta = inner.meta(live, true);
                match inner.connector.before_acquire(&mut live.conn, meta).await {
                    Ok(true) => {
                        conn.discard = None;
                        return Ok(conn);
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(pool = %inner.name(), %error, "before_acquire failed; the connection is closed");
                        conn.discard = Some(inner.reason_for(&error, CloseReason::Rejected));
                    }
                }
            }
        };
        match tokio::time::timeout_at(deadline, hooked).await {
            Ok(result) => result,
            Err(_) => Err(inner.validation_timed_out()),
        }
    }

    fn live(&self) -> &Live<C::Connection> {
        // Invariant: `live` is Some until drop, detach or discard consume `self`.
        self.live
            .as_ref()
            .unwrap_or_else(|| unreachable!("connection taken before drop"))
    }

    fn live_mut(&mut self) -> &mut Live<C::Connection> {
        self.live
            .as_mut()
            .unwrap_or_else(|| unreachable!("connection taken before drop"))
    }

    /// How long ago the physical connection was opened.
    pub fn age(&self) -> Duration {
        self.live().created_at.elapsed()
    }

    /// How many times the connection has been checked out, this time included.
    pub fn use_count(&self) -> u64 {
        self.live().use_count
    }

    /// The server (`host:port`) the connection is on, when the pool's connector has several
    /// to choose from (several hosts in the settings); `None` with one.
    pub fn server(&self) -> Option<&str> {
        self.live().server.as_ref().map(|s| &*s.address)
    }

    /// The server process serving this connection (PostgreSQL's backend pid). Asked of the
    /// server the first time it is needed on this connection (one round trip, bounded by
    /// `validation_timeout`), then remembered; `None` when there is none to know (behind
    /// PgBouncer in transaction mode) or the question failed. Work run under `query_timeout`
    /// asks first, so a timeout can cancel the server-side query.
    ///
    /// # Cancel safety
    /// Dropping the future midway leaves the answer pending on the connection, which is then
    /// drained or discarded when it is returned, never handed out as it is.
    pub async fn backend_pid(&mut self) -> Option<i32> {
        let limit = self.inner.options.validation_timeout_or_default();
        self.ask_backend_pid(limit).await
    }

    /// `backend_pid`, asked within `limit`.
    async fn ask_backend_pid(&mut self, limit: Duration) -> Option<i32> {
        let inner = &self.inner;
        let live = self
            .live
            .as_mut()
            .unwrap_or_else(|| unreachable!("connection taken before drop"));
        if live.pid_asked {
            return live.backend_pid;
        }
        let asked = tokio::time::timeout(limit, inner.connector.backend_pid(&mut live.conn)).await;
        live.pid_asked = true;
        match asked {
            Ok(Ok(pid)) => live.backend_pid = pid,
            Ok(Err(error)) => {
                tracing::warn!(pool = %inner.name(), %error, "could not ask the server for the backend pid");
                let reason = inner.reason_for(&error, CloseReason::Discarded);
                if reason != CloseReason::Discarded {
                    self.discard = Some(reason);
                }
            }
            Err(_) => {
                tracing::warn!(pool = %inner.name(), ?limit, "asking the server for the backend pid timed out; connection discarded");
                inner.timed_out(TimeoutPhase::Validating);
                // Its answer may still arrive: the connection cannot be trusted.
                self.discard = Some(CloseReason::Discarded);
            }
        }
        live.backend_pid
    }

    /// Takes the connection out of the pool for good. The pool's slot is freed (and refilled
    /// if `min_connections` needs it); closing the connection is now the caller's business.
    pub fn detach(mut self) -> C::Connection {
        let live = self
            .live
            .take()
            .unwrap_or_else(|| unreachable!("connection taken before drop"));
        let mut st = self.inner.lock();
        st.detach(self.key);
        st.start_connects();
        drop(st);
        live.conn
    }

    /// Closes the connection instead of returning it (e.g. its session state cannot be
    /// undone).
    pub fn discard(mut self) {
        self.discard = Some(CloseReason::Discarded);
    }

    /// Runs `work` on the connection under the pool's `query_timeout`. When it fires, the
    /// connection is discarded and the server is asked to cancel its work (by backend pid,
    /// bounded), and the error is a [`PoolError::Timeout`] with phase `Query`, converted
    /// into `E`. An error of the connector's own type that shows the server read-only (with
    /// `check_writable`) or the connection broken retires the connection.
    ///
    /// ```no_run
    /// # async fn f(pool: pool_core::Pool<pool_core::PgConnector>) -> Result<(), sqlx::Error> {
    /// let mut conn = pool.acquire().await?;
    /// let n: i64 = conn
    ///     .run(|c| Box::pin(async move { sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(c).await }))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `work`'s error, or the query timeout converted into `E`.
    ///
    /// # Cancel safety
    /// Dropping the future midway discards the connection (its state is unknown), so it is
    /// never handed to another caller.
    pub async fn run<T, E, F>(&mut self, work: F) -> Result<T, E>
    where
        E: From<PoolError> + 'static,
        F: for<'c> FnOnce(&'c mut C::Connection) -> BoxFuture<'c, Result<T, E>>,
    {
        let (conn, mut timed) = self.timed_parts().await;
        timed.timed(work(conn)).await
    }

    /// The connection and the bookkeeping a timed unit of work needs, borrowed apart; with a
    /// `query_timeout`, the backend pid is known first so the timeout can cancel the work.
    /// The work's deadline counts from here: asking the pid uses part of it, never more.
    pub(crate) async fn timed_parts(&mut self) -> (&mut C::Connection, Work<'_, C>) {
        let started = Instant::now();
        if let Some(limit) = self.inner.options.query_timeout {
            let ask_within = limit.min(self.inner.options.validation_timeout_or_default());
            self.ask_backend_pid(ask_within).await;
        }
        let live = self
            .live
            .as_mut()
            .unwrap_or_else(|| unreachable!("connection taken before drop"));
        let backend = (live.backend_pid, live.server.as_ref().map(|s| s.index));
        let cancel = &mut live.cancel;
        let work = Work::new(&self.inner, &mut self.discard, cancel, backend, started);
        (&mut live.conn, work)
    }
}

impl<C: Connector> Drop for PooledConnection<C> {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            tracing::trace!(pool = %self.inner.name(), "connection released");
            self.inner
                .give_back(live, self.key, self.since, self.discard);
        }
    }
}

impl<C: Connector> Deref for PooledConnection<C> {
    type Target = C::Connection;

    fn deref(&self) -> &Self::Target {
        &self.live().conn
    }
}

impl<C: Connector> DerefMut for PooledConnection<C> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.live_mut().conn
    }
}

impl<C: Connector> AsMut<C::Connection> for PooledConnection<C> {
    fn as_mut(&mut self) -> &mut C::Connection {
        self
    }
}

impl<C: Connector> fmt::Debug for PooledConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let live = self.live.as_ref();
        f.debug_struct("PooledConnection")
            .field("pool", &self.inner.name())
            .field("use_count", &live.map(|l| l.use_count))
            .field("backend_pid", &live.and_then(|l| l.backend_pid))
            .finish_non_exhaustive()
    }
}
