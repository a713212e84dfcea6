//! One face for every pool in the in-memory benchmarks: check a connection out, drop it to
//! return it.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use pool_core::testing::MemoryConnector;
use pool_core::{Pool, PoolOptions, PooledConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::memory_manager::MemoryManager;

/// A pool the benchmarks can check connections out of.
///
/// Implementations panic when the pool fails: in these benchmarks it never should, and a
/// failure must stop the run rather than skew it.
pub trait Checkout: Clone + Send + Sync + 'static {
    /// The checked-out connection; dropping it returns it to the pool.
    type Conn<'a>: Send
    where
        Self: 'a;

    /// The pool's ordinary acquire (`get()` / `acquire()`), waiting as long as it takes.
    fn checkout(&self) -> impl Future<Output = Self::Conn<'_>> + Send;
}

impl Checkout for Pool<MemoryConnector> {
    type Conn<'a> = PooledConnection<MemoryConnector>;

    async fn checkout(&self) -> Self::Conn<'_> {
        match self.acquire().await {
            Ok(conn) => conn,
            Err(error) => panic!("servio-pool acquire() failed: {error}"),
        }
    }
}

/// Our pool over in-memory connections: at most `max`, otherwise its defaults. Call it
/// inside a Tokio runtime (the pool starts its maintenance task).
///
/// # Panics
///
/// If the options are rejected.
pub fn servio_memory_pool(max: u32) -> Pool<MemoryConnector> {
    match PoolOptions::new()
        .max_connections(max)
        .build(MemoryConnector::new())
    {
        Ok(pool) => pool,
        Err(error) => panic!("servio-pool build failed: {error}"),
    }
}

impl Checkout for deadpool::managed::Pool<MemoryManager> {
    type Conn<'a> = deadpool::managed::Object<MemoryManager>;

    async fn checkout(&self) -> Self::Conn<'_> {
        match self.get().await {
            Ok(conn) => conn,
            Err(error) => panic!("deadpool get() failed: {error}"),
        }
    }
}

impl Checkout for bb8::Pool<MemoryManager> {
    type Conn<'a> = bb8::PooledConnection<'a, MemoryManager>;

    async fn checkout(&self) -> Self::Conn<'_> {
        match self.get().await {
            Ok(conn) => conn,
            Err(error) => panic!("bb8 get() failed: {error:?}"),
        }
    }
}

/// The floor of any fair hand-off on this runtime, for reference: Tokio's FIFO semaphore with
/// `max` permits and nothing else (no connections, no bookkeeping, no timeouts). Not a pool:
/// its wait percentiles show how much of a pool's spread the scheduler alone causes.
#[derive(Debug, Clone)]
pub struct SemaphoreFloor(Arc<Semaphore>);

impl SemaphoreFloor {
    /// `max` permits.
    pub fn new(max: usize) -> SemaphoreFloor {
        SemaphoreFloor(Arc::new(Semaphore::new(max)))
    }
}

impl Checkout for SemaphoreFloor {
    type Conn<'a> = SemaphorePermit<'a>;

    async fn checkout(&self) -> Self::Conn<'_> {
        match self.0.acquire().await {
            Ok(permit) => permit,
            Err(error) => panic!("semaphore closed: {error}"),
        }
    }
}

/// Opens `connections` connections at once (holding each while opening the next) and
/// returns them, so every pool starts a measurement full and nothing is opened while timing.
pub async fn fill<P: Checkout>(pool: &P, connections: usize) {
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        held.push(pool.checkout().await);
    }
}

/// The contended operation: acquire, yield once to the scheduler while holding the
/// connection, release. Returns the instant the connection was acquired, so the load driver
/// records the acquire wait.
pub async fn acquire_yield_release<P: Checkout>(pool: P) -> Instant {
    let conn = pool.checkout().await;
    let acquired = Instant::now();
    tokio::task::yield_now().await;
    drop(black_box(conn));
    acquired
}

/// The uncontended operation, `cycles` times back to back: acquire, release. Returns the
/// time taken.
pub async fn acquire_release<P: Checkout>(pool: &P, cycles: u64) -> std::time::Duration {
    let start = Instant::now();
    for _ in 0..cycles {
        drop(black_box(pool.checkout().await));
    }
    start.elapsed()
}
