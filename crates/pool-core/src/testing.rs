//! An in-memory connector for tests and benchmarks: connections are plain values, and the
//! connector can be told to succeed, fail, stall or never answer.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::connector::{Connected, Connector, ErrorClass};

/// What the next connects (or validations) do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behavior {
    /// Succeed at once.
    Succeed,
    /// Fail at once with a transient error.
    Fail,
    /// Fail at once with an authentication error.
    FailAuth,
    /// Succeed after this long (use `tokio::time::pause()` in tests).
    Stall(Duration),
    /// Never answer.
    Hang,
    /// (Validation only) report the server read-only.
    ReadOnly,
}

/// An error from the [`MemoryConnector`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("memory connector: {kind}")]
pub struct MemoryError {
    kind: &'static str,
    class: ErrorClass,
}

impl MemoryError {
    /// An error the pool treats as `class`.
    pub fn new(kind: &'static str, class: ErrorClass) -> Self {
        MemoryError { kind, class }
    }
}

#[derive(Debug)]
struct Shared {
    connect: Mutex<Behavior>,
    validate: Mutex<Behavior>,
    next_id: AtomicU64,
    attempts: AtomicU64,
    open: AtomicI64,
    closed: AtomicU64,
    validations: AtomicU64,
    cleanups: AtomicU64,
    cancels: AtomicU64,
}

/// An in-memory [`Connector`]: cheap to clone (clones share behaviour and counters).
#[derive(Debug, Clone)]
pub struct MemoryConnector {
    shared: Arc<Shared>,
}

impl Default for MemoryConnector {
    fn default() -> Self {
        Self::new()
    }
}

/// A connection made by [`MemoryConnector`].
#[derive(Debug)]
pub struct MemoryConnection {
    /// Unique per connector, from 1.
    pub id: u64,
    /// Simulates an open transaction: the pool cleans such a connection before reuse.
    pub in_transaction: bool,
    /// Simulates a broken connection: the pool discards it on release.
    pub broken: bool,
    shared: Arc<Shared>,
}

impl Drop for MemoryConnection {
    fn drop(&mut self) {
        // Ordering: counters only, read by tests after the fact.
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl MemoryConnector {
    /// A connector whose connects and validations succeed.
    pub fn new() -> Self {
        MemoryConnector {
            shared: Arc::new(Shared {
                connect: Mutex::new(Behavior::Succeed),
                validate: Mutex::new(Behavior::Succeed),
                next_id: AtomicU64::new(1),
                attempts: AtomicU64::new(0),
                open: AtomicI64::new(0),
                closed: AtomicU64::new(0),
                validations: AtomicU64::new(0),
                cleanups: AtomicU64::new(0),
                cancels: AtomicU64::new(0),
            }),
        }
    }

    /// Sets what the next connects do.
    pub fn set_connect(&self, behavior: Behavior) {
        *self
            .shared
            .connect
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = behavior;
    }

    /// Sets what the next validations do.
    pub fn set_validate(&self, behavior: Behavior) {
        *self
            .shared
            .validate
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = behavior;
    }

    /// Connect attempts so far.
    pub fn attempts(&self) -> u64 {
        self.shared.attempts.load(Ordering::Relaxed)
    }

    /// Connections alive (made and not yet dropped), wherever they are.
    pub fn open(&self) -> i64 {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Graceful closes so far.
    pub fn closed(&self) -> u64 {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Validations (and keepalive pings) so far.
    pub fn validations(&self) -> u64 {
        self.shared.validations.load(Ordering::Relaxed)
    }

    /// Cleanups of returned connections so far.
    pub fn cleanups(&self) -> u64 {
        self.shared.cleanups.load(Ordering::Relaxed)
    }

    /// Backend cancellations so far.
    pub fn cancels(&self) -> u64 {
        self.shared.cancels.load(Ordering::Relaxed)
    }

    fn behavior(slot: &Mutex<Behavior>) -> Behavior {
        *slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn act(behavior: Behavior) -> Result<(), MemoryError> {
        match behavior {
            Behavior::Succeed => Ok(()),
            Behavior::Fail => Err(MemoryError::new(
                "connection refused",
                ErrorClass::Transient,
            )),
            Behavior::FailAuth => Err(MemoryError::new(
                "password authentication failed",
                ErrorClass::Authentication,
            )),
            Behavior::ReadOnly => Err(MemoryError::new(
                "server is read-only",
                ErrorClass::ReadOnly,
            )),
            Behavior::Stall(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Behavior::Hang => std::future::pending().await,
        }
    }
}

impl Connector for MemoryConnector {
    type Connection = MemoryConnection;
    type Error = MemoryError;

    async fn connect(&self) -> Result<Connected<MemoryConnection>, MemoryError> {
        self.shared.attempts.fetch_add(1, Ordering::Relaxed);
        Self::act(Self::behavior(&self.shared.connect)).await?;
        self.shared.open.fetch_add(1, Ordering::Relaxed);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(Connected::new(MemoryConnection {
            id,
            in_transaction: false,
            broken: false,
            shared: Arc::clone(&self.shared),
        })
        .with_backend_pid(id as i32))
    }

    async fn validate(&self, conn: &mut MemoryConnection) -> Result<(), MemoryError> {
        self.shared.validations.fetch_add(1, Ordering::Relaxed);
        if conn.broken {
            return Err(MemoryError::new("connection reset", ErrorClass::Broken));
        }
        Self::act(Self::behavior(&self.shared.validate)).await
    }

    fn classify(&self, error: &MemoryError) -> ErrorClass {
        error.class
    }

    fn is_reusable(&self, conn: &MemoryConnection) -> bool {
        !conn.broken
    }

    fn needs_cleanup(&self, conn: &mut MemoryConnection) -> bool {
        conn.in_transaction
    }

    async fn cleanup(&self, conn: &mut MemoryConnection, _reset: bool) -> Result<(), MemoryError> {
        self.shared.cleanups.fetch_add(1, Ordering::Relaxed);
        conn.in_transaction = false;
        Ok(())
    }

    async fn close(&self, conn: MemoryConnection) {
        self.shared.closed.fetch_add(1, Ordering::Relaxed);
        drop(conn);
    }

    async fn cancel(&self, _backend_pid: i32) {
        self.shared.cancels.fetch_add(1, Ordering::Relaxed);
    }
}
