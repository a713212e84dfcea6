//! # Implementation details
//!
//! A unit of work on a checked-out connection under `query_timeout`: when the deadline fires,
//! the connection is marked for discarding and the server is asked (bounded) to cancel what
//! the backend runs.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use super::Inner;
use crate::connector::Connector;
use crate::error::PoolError;
use crate::observer::TimeoutPhase;
use crate::stats::CloseReason;

/// A unit of work on a checked-out connection, run under `query_timeout`. Borrows the
/// checkout's discard mark, so the work's outcome decides whether the connection is reused.
pub(crate) struct Work<'a, C: Connector> {
    inner: &'a Arc<Inner<C>>,
    discard: &'a mut Option<CloseReason>,
    backend_pid: Option<i32>,
}

impl<'a, C: Connector> Work<'a, C> {
    pub(crate) fn new(
        inner: &'a Arc<Inner<C>>,
        discard: &'a mut Option<CloseReason>,
        backend_pid: Option<i32>,
    ) -> Self {
        Work {
            inner,
            discard,
            backend_pid,
        }
    }

    pub(crate) async fn timed<T, E, Fut>(self, fut: Fut) -> Result<T, E>
    where
        E: From<PoolError> + 'static,
        Fut: Future<Output = Result<T, E>>,
    {
        // Cancel safety: until the work finishes the connection is marked for discarding, so
        // dropping this future midway never hands a half-used connection to someone else.
        let previous = self.discard.replace(CloseReason::Discarded);
        let limit = self.inner.options.query_timeout;
        let outcome = match limit {
            Some(limit) => tokio::time::timeout(limit, fut).await.ok(),
            None => Some(fut.await),
        };
        let Some(result) = outcome else {
            let elapsed = limit.unwrap_or_default();
            tracing::warn!(pool = %self.inner.name(), ?elapsed, backend_pid = self.backend_pid, "query timed out; connection discarded");
            self.inner.timed_out(TimeoutPhase::Query);
            if let Some(pid) = self.backend_pid {
                self.inner.cancel_in_background(pid);
            }
            return Err(E::from(PoolError::Timeout {
                pool: self.inner.name().clone(),
                phase: TimeoutPhase::Query,
                elapsed,
                last_error: None,
            }));
        };
        *self.discard = previous;
        if let Err(error) = &result
            && let Some(error) = (error as &dyn Any).downcast_ref::<C::Error>()
        {
            let reason = self.inner.reason_for(error, CloseReason::Discarded);
            if reason != CloseReason::Discarded {
                *self.discard = Some(reason);
            }
        }
        result
    }
}

impl<C: Connector> Inner<C> {
    /// Asks the server to stop what `pid` runs, bounded (a fresh connection may be needed).
    fn cancel_in_background(self: &Arc<Self>, pid: i32) {
        let inner = Arc::clone(self);
        let limit = self.options.connect_timeout.saturating_mul(2);
        let _ = self.spawn(async move {
            if tokio::time::timeout(limit, inner.connector.cancel(pid))
                .await
                .is_err()
            {
                tracing::warn!(pool = %inner.name(), pid, "cancelling the backend timed out");
            }
        });
    }
}
