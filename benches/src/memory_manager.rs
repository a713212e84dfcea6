//! deadpool and bb8 managers over pool-core's in-memory connector, so the peers and our pool
//! move the very same connection type and do the same trivial work per checkout.

use std::convert::Infallible;

use pool_core::Connector;
use pool_core::testing::{MemoryConnection, MemoryConnector};

/// Opens [`MemoryConnection`]s through a [`MemoryConnector`] for deadpool
/// (`deadpool::managed::Manager`) and bb8 (`bb8::ManageConnection`). Recycling checks
/// `is_reusable` (as our pool does on release); validation succeeds at once.
#[derive(Debug, Default)]
pub struct MemoryManager {
    connector: MemoryConnector,
}

impl MemoryManager {
    /// A manager over a fresh connector.
    pub fn new() -> MemoryManager {
        MemoryManager::default()
    }

    /// A deadpool of at most `max` connections, otherwise its defaults (no timeouts, FIFO).
    pub fn deadpool(max: usize) -> deadpool::managed::Pool<MemoryManager> {
        match deadpool::managed::Pool::builder(MemoryManager::new())
            .max_size(max)
            .build()
        {
            Ok(pool) => pool,
            Err(error) => panic!("deadpool build failed: {error}"),
        }
    }

    /// A bb8 pool of at most `max` connections, otherwise its defaults (test on check-out,
    /// 30 s connection timeout, FIFO).
    pub async fn bb8(max: u32) -> bb8::Pool<MemoryManager> {
        match bb8::Pool::builder()
            .max_size(max)
            .build(MemoryManager::new())
            .await
        {
            Ok(pool) => pool,
            Err(error) => match error {},
        }
    }

    async fn open(&self) -> MemoryConnection {
        match self.connector.connect().await {
            Ok(connected) => connected.connection,
            Err(error) => panic!("memory connector failed: {error}"),
        }
    }
}

impl deadpool::managed::Manager for MemoryManager {
    type Type = MemoryConnection;
    type Error = Infallible;

    async fn create(&self) -> Result<MemoryConnection, Infallible> {
        Ok(self.open().await)
    }

    async fn recycle(
        &self,
        conn: &mut MemoryConnection,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        if self.connector.is_reusable(conn) {
            Ok(())
        } else {
            Err(deadpool::managed::RecycleError::message(
                "connection broken",
            ))
        }
    }
}

impl bb8::ManageConnection for MemoryManager {
    type Connection = MemoryConnection;
    type Error = Infallible;

    async fn connect(&self) -> Result<MemoryConnection, Infallible> {
        Ok(self.open().await)
    }

    async fn is_valid(&self, _conn: &mut MemoryConnection) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, conn: &mut MemoryConnection) -> bool {
        !self.connector.is_reusable(conn)
    }
}
