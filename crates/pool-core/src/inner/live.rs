//! # Implementation details
//!
//! One open connection and what the pool knows about it, and the same connection once it is
//! registered as a caller's checkout.

use tokio::time::Instant;

/// An open connection and what the pool knows about it, boxed once when it opens: checkouts
/// and releases then move a pointer, not the connection and its bookkeeping.
pub(crate) type Live<T> = Box<LiveState<T>>;

/// What [`Live`] points to.
#[derive(Debug)]
pub(crate) struct LiveState<T> {
    pub(crate) conn: T,
    pub(crate) backend_pid: Option<i32>,
    /// Which of the connector's servers it is on, when the connector has several.
    pub(crate) server: Option<crate::connector::Server>,
    /// Whether `backend_pid` is settled (given at connect, or asked once).
    pub(crate) pid_asked: bool,
    pub(crate) created_at: Instant,
    /// `max_lifetime` minus this connection's jitter, in coarse ms.
    pub(crate) expires_at: Option<u64>,
    pub(crate) use_count: u64,
    /// Checkouts after which it is retired: `max_uses` minus this connection's jitter.
    pub(crate) max_uses: Option<u64>,
    /// When it was opened or last released, in coarse ms (idle reaping counts from here).
    pub(crate) last_used: u64,
    /// When the pool last saw it work (opened, validated, pinged), in coarse ms.
    pub(crate) last_checked: u64,
    /// The cancel of its backend's work after a query timeout, while under way: the
    /// connection is held (and counted) until it ends, so the server never runs the
    /// cancelled work beside a replacement, and a late cancel can never reach a backend
    /// that serves someone else (PgBouncer lends a server connection on once the client
    /// connection closes).
    pub(crate) cancel: Option<tokio::task::JoinHandle<()>>,
    /// The pool's eviction generation when its connect started (see `State::evict`).
    pub(crate) generation: u64,
}

impl<T> LiveState<T> {
    /// A fresh connection for the state's unit tests.
    #[cfg(test)]
    pub(crate) fn new_for_test(conn: T) -> Live<T> {
        Box::new(LiveState {
            conn,
            backend_pid: None,
            server: None,
            pid_asked: true,
            created_at: Instant::now(),
            expires_at: None,
            use_count: 0,
            max_uses: None,
            last_used: 0,
            last_checked: 0,
            cancel: None,
            generation: 0,
        })
    }

    /// Milliseconds (coarse) since the connection was last used or seen working.
    pub(crate) fn unchecked_for(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_used.max(self.last_checked))
    }
}

/// A connection registered as a caller's checkout (counted as acquired, listed for leak
/// reports and `close()`), on its way to the caller.
#[derive(Debug)]
pub(crate) struct Checkout<T> {
    pub(crate) live: Live<T>,
    /// The checkout's key in the pool's list of checkouts.
    pub(crate) key: usize,
    /// When it was checked out, read only when leak detection or an observer needs it.
    pub(crate) since: Option<Instant>,
}
