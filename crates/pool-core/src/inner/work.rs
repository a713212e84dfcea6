//! # Implementation details
//!
//! Work on a checked-out connection under `query_timeout` (a future, or a stream of rows):
//! when the deadline fires, the connection is marked for discarding and the server is asked
//! (bounded) to cancel what the backend runs.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Inner;
use crate::connector::Connector;
use crate::error::PoolError;
use crate::observer::TimeoutPhase;
use crate::stats::CloseReason;

/// Units of work on a checked-out connection, each run under `query_timeout`. Borrows the
/// checkout's discard mark, so each work's outcome decides whether the connection is reused.
pub(crate) struct Work<'a, C: Connector> {
    inner: &'a Arc<Inner<C>>,
    discard: &'a mut Option<CloseReason>,
    /// Where the cancel of a timed-out query is kept (see `LiveState::cancel`).
    cancel: &'a mut Option<JoinHandle<()>>,
    backend_pid: Option<i32>,
    /// Which of the connector's servers the connection is on, for the cancel.
    server: Option<usize>,
    /// When the next unit of work began, if before it is run (asking the backend pid is
    /// part of the first unit's time); later units begin when they are run.
    began: Option<Instant>,
}

impl<C: Connector> std::fmt::Debug for Work<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Work")
            .field("pool", self.inner.name())
            .field("backend_pid", &self.backend_pid)
            .finish_non_exhaustive()
    }
}

impl<'a, C: Connector> Work<'a, C> {
    pub(crate) fn new(
        inner: &'a Arc<Inner<C>>,
        discard: &'a mut Option<CloseReason>,
        cancel: &'a mut Option<JoinHandle<()>>,
        backend: (Option<i32>, Option<usize>),
        began: Instant,
    ) -> Self {
        Work {
            inner,
            discard,
            cancel,
            backend_pid: backend.0,
            server: backend.1,
            began: Some(began),
        }
    }

    /// When the unit of work about to run times out.
    fn deadline(&mut self) -> Option<Instant> {
        let began = self.began.take().unwrap_or_else(Instant::now);
        let limit = self.inner.options.query_timeout?;
        // Durations are validated far below the clock's range; saturate all the same.
        Some(began.checked_add(limit).unwrap_or(began))
    }

    /// The same connection's work, borrowed for a shorter while (a nested transaction).
    pub(crate) fn reborrow(&mut self) -> Work<'_, C> {
        Work {
            inner: self.inner,
            discard: &mut *self.discard,
            cancel: &mut *self.cancel,
            backend_pid: self.backend_pid,
            server: self.server,
            began: self.began.take(),
        }
    }

    /// Runs `fut` under `query_timeout`.
    pub(crate) async fn timed<T, E, Fut>(&mut self, fut: Fut) -> Result<T, E>
    where
        E: From<PoolError> + 'static,
        Fut: Future<Output = Result<T, E>>,
    {
        // Cancel safety: until the work finishes the connection is marked for discarding, so
        // dropping this future midway never hands a half-used connection to someone else.
        let previous = self.discard.replace(CloseReason::Discarded);
        let outcome = match self.deadline() {
            Some(deadline) => tokio::time::timeout_at(deadline, fut).await.ok(),
            None => Some(fut.await),
        };
        let Some(result) = outcome else {
            return Err(self.timed_out());
        };
        self.finished(previous, result.as_ref().err());
        result
    }

    /// Streams `stream` under `query_timeout`: once it runs out, the stream yields the
    /// timeout error and ends.
    pub(crate) fn timed_stream<S, T, E>(mut self, stream: S) -> TimedStream<'a, S, C>
    where
        S: Stream<Item = Result<T, E>> + Unpin,
        E: From<PoolError> + 'static,
    {
        let previous = self.discard.replace(CloseReason::Discarded);
        let deadline = self
            .deadline()
            .map(|deadline| Box::pin(tokio::time::sleep_until(deadline)));
        TimedStream {
            work: self,
            stream,
            previous,
            deadline,
            done: false,
        }
    }

    /// The work ended in time: the connection is reusable again unless the work's error shows
    /// it broken (or the server read-only, with `check_writable`).
    fn finished<E: 'static>(&mut self, previous: Option<CloseReason>, error: Option<&E>) {
        *self.discard = previous;
        if let Some(error) = error.and_then(|e| (e as &dyn Any).downcast_ref::<C::Error>()) {
            let reason = self.inner.reason_for(error, CloseReason::Discarded);
            if reason != CloseReason::Discarded {
                *self.discard = Some(reason);
            }
        }
    }

    /// The work ran out of `query_timeout`: the connection stays marked for discarding and
    /// the server is asked to cancel the backend's work.
    fn timed_out<E: From<PoolError>>(&mut self) -> E {
        let elapsed = self.inner.options.query_timeout.unwrap_or_default();
        if let Some(suppressed) = self.inner.admit(&self.inner.logs.query_timeout) {
            tracing::warn!(pool = %self.inner.name(), ?elapsed, backend_pid = self.backend_pid, suppressed_warnings = suppressed, "query timed out; connection discarded");
        }
        self.inner.timed_out(TimeoutPhase::Query);
        if let Some(pid) = self.backend_pid
            && self.cancel.is_none()
        {
            *self.cancel = self.inner.cancel_in_background(pid, self.server);
        }
        E::from(PoolError::Timeout {
            pool: self.inner.name().clone(),
            phase: TimeoutPhase::Query,
            elapsed,
            last_error: None,
        })
    }
}

/// A stream of results read under `query_timeout` (see `Work::timed_stream`).
pub(crate) struct TimedStream<'a, S, C: Connector> {
    work: Work<'a, C>,
    stream: S,
    previous: Option<CloseReason>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl<S, T, E, C> Stream for TimedStream<'_, S, C>
where
    S: Stream<Item = Result<T, E>> + Unpin,
    E: From<PoolError> + 'static,
    C: Connector,
{
    type Item = Result<T, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.done = true;
            return Poll::Ready(Some(Err(this.work.timed_out())));
        }
        let item = std::task::ready!(Pin::new(&mut this.stream).poll_next(cx));
        match &item {
            None => {
                this.done = true;
                this.work.finished::<E>(this.previous, None);
            }
            Some(Err(error)) => {
                // sqlx ends the stream after an error; the connection's fate is settled here.
                this.done = true;
                this.work.finished(this.previous, Some(error));
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(item)
    }
}

impl<S, C: Connector> std::fmt::Debug for TimedStream<'_, S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedStream")
            .field("work", &self.work)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<C: Connector> Inner<C> {
    /// Asks the server to stop what `pid` runs, one cancel at a time per pool (each needs a
    /// connection of its own), bounded by twice `connect_timeout`, waiting for its turn
    /// included. Returns the task, which the timed-out connection waits for before it
    /// closes.
    fn cancel_in_background(
        self: &Arc<Self>,
        pid: i32,
        server: Option<usize>,
    ) -> Option<JoinHandle<()>> {
        let inner = Arc::clone(self);
        let limit = self.options.connect_timeout.saturating_mul(2);
        self.spawn_task(async move {
            let cancel = async {
                let Ok(_turn) = inner.cancels.acquire().await else {
                    return;
                };
                inner.connector.cancel_on(server, pid).await;
            };
            if tokio::time::timeout(limit, cancel).await.is_err() {
                tracing::warn!(pool = %inner.name(), pid, ?limit, "cancelling the backend timed out; the server's statement_timeout ends its work");
            }
        })
    }
}
