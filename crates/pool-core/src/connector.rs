//! The seam between the pool and a kind of connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How the pool should treat an error from a [`Connector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Worth retrying with backoff (server down, network error, connect timeout).
    Transient,
    /// Wrong credentials: reported to the caller at once, retried only by background refill
    /// (with backoff), never until an acquire times out.
    Authentication,
    /// Retrying will not help (e.g. the database does not exist): reported at once.
    Fatal,
    /// The server is read-only (a replica after failover, SQLSTATE 25006): with
    /// `check_writable` the connection is retired.
    ReadOnly,
    /// The connection is unusable (I/O error, terminated backend): it is discarded.
    Broken,
}

/// A freshly opened connection and what the pool keeps beside it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Connected<T> {
    /// The connection.
    pub connection: T,
    /// The server process serving it (PostgreSQL's backend pid), used to cancel its work when
    /// a query timeout fires. When unknown here, the pool asks
    /// [`Connector::backend_pid`] the first time it needs it.
    pub backend_pid: Option<i32>,
    /// Which of the connector's servers it is on, when the connector has several.
    pub server: Option<Server>,
    /// A bound on this connection's age below the pool's `max_lifetime` (e.g. a connection
    /// to a server taken only because the preferred ones did not answer).
    pub lifetime: Option<Duration>,
}

/// What the pool knows about a connection, given to the acquire and release hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionMeta {
    /// Time since it was opened.
    pub age: Duration,
    /// Time since it was last released (zero in `after_release`).
    pub idle_for: Duration,
    /// How many times it was checked out, this checkout included.
    pub use_count: u64,
}

impl ConnectionMeta {
    pub(crate) fn new(age: Duration, idle_for: Duration, use_count: u64) -> Self {
        ConnectionMeta {
            age,
            idle_for,
            use_count,
        }
    }
}

/// Which of a connector's servers a connection is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its position in the connector's list of servers.
    pub index: usize,
    /// `host:port`, for logs, stats and reports.
    pub address: Arc<str>,
}

impl<T> Connected<T> {
    /// A connection without a known backend process.
    pub fn new(connection: T) -> Self {
        Connected {
            connection,
            backend_pid: None,
            server: None,
            lifetime: None,
        }
    }

    /// Records which of the connector's servers the connection is on.
    pub fn with_server(mut self, server: Server) -> Self {
        self.server = Some(server);
        self
    }

    /// Retires the connection after `lifetime` at the latest (never mid-use).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Records the backend process id for cancellation.
    pub fn with_backend_pid(mut self, pid: i32) -> Self {
        self.backend_pid = Some(pid);
        self
    }
}

/// Opens, checks, cleans and closes connections of one kind for a [`Pool`](crate::Pool).
///
/// The pool bounds every future returned here by a deadline (`connect_timeout`,
/// `validation_timeout`, `cleanup_timeout`, `close_timeout`) and treats a future that ran out
/// of time as a broken connection, so an implementation does not need its own timeouts.
/// Futures may be dropped at any await point.
pub trait Connector: Send + Sync + 'static {
    /// The connection type handed to callers.
    type Connection: Send + 'static;
    /// The connector's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens one physical connection.
    ///
    /// The pool bounds it by `connect_timeout` times [`connect_attempts`]: a connector that
    /// tries several servers bounds each try by `connect_timeout` itself.
    ///
    /// [`connect_attempts`]: Connector::connect_attempts
    fn connect(
        &self,
    ) -> impl Future<Output = Result<Connected<Self::Connection>, Self::Error>> + Send;

    /// Checks that an idle connection still works before it is handed out (a round trip).
    fn validate<'a>(
        &'a self,
        conn: &'a mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'a;

    /// Sorts an error: transient, authentication, fatal, read-only or broken.
    fn classify(&self, error: &Self::Error) -> ErrorClass {
        let _ = error;
        ErrorClass::Transient
    }

    /// Whether a returned connection can go back to the pool as it is, without any I/O.
    /// `false` discards it as broken.
    fn is_reusable(&self, conn: &Self::Connection) -> bool {
        let _ = conn;
        true
    }

    /// Whether a returned connection needs [`cleanup`](Connector::cleanup) before reuse
    /// (e.g. it was returned inside a transaction, or a query on it failed or was dropped
    /// midway). Must not wait on I/O: called on every release.
    fn needs_cleanup(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Makes a returned connection fit for the next user: roll back an open transaction and,
    /// when `reset` is true (`reset_on_release`), reset the session. An error discards it.
    fn cleanup<'a>(
        &'a self,
        conn: &'a mut Self::Connection,
        reset: bool,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'a {
        let _ = (conn, reset);
        async { Ok(()) }
    }

    /// Closes a connection gracefully.
    fn close(&self, conn: Self::Connection) -> impl Future<Output = ()> + Send {
        async move { drop(conn) }
    }

    /// Asks the server which process serves `conn` (a round trip), for a connection whose
    /// [`Connected::backend_pid`] was unknown. The pool asks once per connection, and only
    /// when it needs the answer: before the first unit of work under `query_timeout`, or when
    /// a caller asks. `Ok(None)`: no process to cancel (the default).
    fn backend_pid<'a>(
        &'a self,
        conn: &'a mut Self::Connection,
    ) -> impl Future<Output = Result<Option<i32>, Self::Error>> + Send + 'a {
        let _ = conn;
        async { Ok(None) }
    }

    /// Cancels whatever the server process `backend_pid` is running (a query timeout fired).
    /// The connection itself is discarded by the pool.
    fn cancel(&self, backend_pid: i32) -> impl Future<Output = ()> + Send {
        let _ = backend_pid;
        async {}
    }

    /// Whether [`before_acquire`](Connector::before_acquire) does anything. Asked on every
    /// acquire without I/O; `false` (the default) keeps the hook off the acquire path.
    fn has_before_acquire(&self) -> bool {
        false
    }

    /// Runs on a connection about to be handed out, after any validation; `Ok(false)` or an
    /// error rejects it (it is closed and the acquire goes on with another), all within the
    /// caller's `acquire_timeout`.
    fn before_acquire<'a>(
        &'a self,
        conn: &'a mut Self::Connection,
        meta: ConnectionMeta,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send + 'a {
        let _ = (conn, meta);
        async { Ok(true) }
    }

    /// Whether [`after_release`](Connector::after_release) does anything. Asked on every
    /// release without I/O; `false` (the default) keeps the hook off the release path.
    fn has_after_release(&self) -> bool {
        false
    }

    /// Runs on a connection coming back, in the background (after any cleanup) before it
    /// serves anyone else; `Ok(false)` or an error closes it instead, and so does running past
    /// `cleanup_timeout`.
    fn after_release<'a>(
        &'a self,
        conn: &'a mut Self::Connection,
        meta: ConnectionMeta,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send + 'a {
        let _ = (conn, meta);
        async { Ok(true) }
    }

    /// How many servers one [`connect`](Connector::connect) may try, each within
    /// `connect_timeout`. Default: 1.
    fn connect_attempts(&self) -> u32 {
        1
    }

    /// [`cancel`](Connector::cancel) on the server the connection is on
    /// ([`Connected::server`]'s index; `None` when the connector named none). Default: `cancel`.
    fn cancel_on(
        &self,
        server: Option<usize>,
        backend_pid: i32,
    ) -> impl Future<Output = ()> + Send {
        let _ = server;
        self.cancel(backend_pid)
    }
}
