//! The minimal reference pool: a fair Tokio `Semaphore` over a `Mutex<Vec<_>>` of connections
//! opened up front. What a pool cannot do faster, over either driver: over tokio-postgres it
//! is the bar the issue sets, over sqlx it is the same pool on our driver, so the difference
//! between it and servio-pool is the pool's alone.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::checkout::Checkout;

/// The reference pool over connections of type `T`.
#[derive(Debug)]
pub struct ReferencePool<T>(Arc<ReferenceInner<T>>);

impl<T> Clone for ReferencePool<T> {
    fn clone(&self) -> Self {
        ReferencePool(Arc::clone(&self.0))
    }
}

#[derive(Debug)]
struct ReferenceInner<T> {
    permits: Semaphore,
    idle: Mutex<Vec<T>>,
}

/// A connection of the [`ReferencePool`], returned on drop.
#[derive(Debug)]
pub struct ReferenceConn<'a, T> {
    pool: &'a ReferenceInner<T>,
    conn: Option<T>,
    _permit: SemaphorePermit<'a>,
}

impl<T> Deref for ReferenceConn<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.conn.as_ref().expect("held until drop")
    }
}

impl<T> DerefMut for ReferenceConn<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.conn.as_mut().expect("held until drop")
    }
}

impl<T> Drop for ReferenceConn<'_, T> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            idle.push(conn);
        }
    }
}

impl<T> ReferencePool<T> {
    /// A pool of `connections`, all idle.
    pub fn of(connections: Vec<T>) -> ReferencePool<T> {
        ReferencePool(Arc::new(ReferenceInner {
            permits: Semaphore::new(connections.len()),
            idle: Mutex::new(connections),
        }))
    }

    /// Waits for a permit (in arrival order), then takes an idle connection.
    ///
    /// # Panics
    /// Never in practice: a permit means an idle connection, and the semaphore never closes.
    pub async fn get(&self) -> ReferenceConn<'_, T> {
        let permit = self.0.permits.acquire().await.expect("never closed");
        let conn = self
            .0
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        ReferenceConn {
            pool: &self.0,
            conn: Some(conn.expect("a permit means an idle connection")),
            _permit: permit,
        }
    }
}

/// The reference pool over sqlx: the same pool, our driver.
pub type SqlxReferencePool = ReferencePool<PgConnection>;

impl SqlxReferencePool {
    /// Opens `max` sqlx connections with `options`.
    ///
    /// # Errors
    /// If a connection cannot be opened.
    pub async fn open(options: &PgConnectOptions, max: usize) -> sqlx::Result<Self> {
        let mut connections = Vec::with_capacity(max);
        for _ in 0..max {
            connections.push(PgConnection::connect_with(options).await?);
        }
        Ok(ReferencePool::of(connections))
    }
}

impl<T: Send + 'static> Checkout for ReferencePool<T> {
    type Conn<'a> = ReferenceConn<'a, T>;

    async fn checkout(&self) -> Self::Conn<'_> {
        self.get().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_returned_connection_serves_the_next_caller_and_none_is_handed_out_twice() {
        let pool = ReferencePool::of(vec![1, 2]);
        let a = pool.get().await;
        let b = pool.get().await;
        assert_ne!(*a, *b);
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { *pool.get().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "both connections are out");
        let returned = *a;
        drop(a);
        assert_eq!(waiting.await.unwrap(), returned);
        drop(b);
    }
}
