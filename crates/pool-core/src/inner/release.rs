//! # Implementation details
//!
//! A connection coming back: the decision to reuse, clean or retire it, the give-back to the
//! oldest waiter or the idle queue (through the state), the background cleanup of a dirty
//! connection, and the bounded close of one that leaves.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Inner;
use super::guards::LiveGuard;
use super::live::{Checkout, Live, LiveState};
use super::waiters::Handoff;
use crate::connector::{ConnectionMeta, Connector, ErrorClass};
use crate::observer::TimeoutPhase;
use crate::stats::CloseReason;

impl<C: Connector> Inner<C> {
    /// Takes back a caller's connection: checked out under `key` at `since`, marked with
    /// `discard` if the caller's work left it unusable.
    #[inline]
    pub(crate) fn give_back(
        self: &Arc<Self>,
        mut live: Live<C::Connection>,
        key: usize,
        since: Option<Instant>,
        discard: Option<CloseReason>,
    ) {
        // One clock read serves the observer's use time and the next checkout's start.
        let next_since = self.checkout_clock();
        if let (Some(since), Some(now)) = (since, next_since) {
            self.notify(|obs| obs.on_release(now.saturating_duration_since(since)));
        }
        if live.cancel.is_some()
            && let Some(cancel) = live.cancel.take().filter(|cancel| !cancel.is_finished())
        {
            return self.retire_after_cancel(live, key, cancel, discard);
        }
        let now = self.clock.now();
        let reason = discard.or_else(|| self.retire_reason(&live, now));
        let dirty = reason.is_none()
            && (self.options.reset_on_release || self.connector.needs_cleanup(&mut live.conn));
        let hooked = reason.is_none() && self.connector.has_after_release();
        let mut st = self.lock();
        st.end_checkout(key);
        match reason {
            Some(reason) => st.retire(live, reason),
            None if dirty || hooked => {
                drop(st);
                self.clean_in_background(live, dirty);
            }
            None => {
                live.last_used = now;
                st.give_back(live, next_since);
            }
        }
    }

    /// A connection whose timed-out query is being cancelled came back: it stays open (and
    /// counted in use) until the cancel ends, then goes.
    fn retire_after_cancel(
        self: &Arc<Self>,
        live: Live<C::Connection>,
        key: usize,
        cancel: tokio::task::JoinHandle<()>,
        discard: Option<CloseReason>,
    ) {
        self.lock().end_checkout(key);
        // Cancel safety: guarded, so a task that never runs retires it all the same.
        let guard = LiveGuard::new(self, live);
        let _ = self.spawn(async move {
            let _ = cancel.await;
            guard.retire(discard.unwrap_or(CloseReason::Discarded));
        });
    }

    /// Why a connection that came back must not be reused, if it must not.
    fn retire_reason(&self, live: &Live<C::Connection>, now_ms: u64) -> Option<CloseReason> {
        if !self.connector.is_reusable(&live.conn) {
            Some(CloseReason::Broken)
        } else if live.max_uses.is_some_and(|max| live.use_count >= max) {
            Some(CloseReason::MaxUses)
        } else if live.expires_at.is_some_and(|at| now_ms >= at) {
            Some(CloseReason::Lifetime)
        } else {
            None
        }
    }

    /// Gives back a clean connection the pool held as in use, as if its caller released it
    /// now.
    pub(crate) fn release(self: &Arc<Self>, mut live: Live<C::Connection>) {
        live.last_used = self.clock.now();
        self.put_back(live);
    }

    /// Like `release`, but the connection keeps its idle age (after a keepalive ping).
    pub(crate) fn put_back(self: &Arc<Self>, live: Live<C::Connection>) {
        let since = self.checkout_clock();
        self.lock().give_back(live, since);
    }

    /// Completes a hand-off (after the unlock); a connection for a waiter that gave up
    /// meanwhile is taken back.
    pub(crate) fn complete(self: &Arc<Self>, handoff: Handoff<C::Connection>) {
        if let Some(checkout) = handoff.complete() {
            self.take_back(checkout);
        }
    }

    /// Takes back a connection delivered to a waiter that gave up: its checkout is undone and
    /// it goes to the next waiter or the idle queue.
    pub(crate) fn take_back(self: &Arc<Self>, checkout: Checkout<C::Connection>) {
        let since = self.checkout_clock();
        let mut st = self.lock();
        let live = st.undo_checkout(checkout);
        st.give_back(live, since);
    }

    /// Closes a connection already uncounted (the lock guard calls it after the unlock),
    /// bounded by `close_timeout`.
    pub(crate) fn close_in_background(
        self: &Arc<Self>,
        live: Live<C::Connection>,
        reason: CloseReason,
    ) {
        let server = live.server.as_ref().map(|s| &*s.address);
        tracing::debug!(pool = %self.name(), %reason, backend_pid = live.backend_pid, server, uses = live.use_count, "connection removed");
        self.notify(|obs| obs.on_remove(reason));
        if matches!(reason, CloseReason::Broken | CloseReason::Discarded) {
            // A broken or abandoned connection gets no goodbye: dropping it closes the socket.
            drop(live);
            return;
        }
        let inner = Arc::clone(self);
        // Without a runtime the connection is dropped here, which closes its socket.
        let _ = self.spawn(async move { inner.close_bounded(live.conn).await });
    }

    pub(crate) async fn close_bounded(&self, conn: C::Connection) {
        let limit = self.options.close_timeout;
        if tokio::time::timeout(limit, self.connector.close(conn))
            .await
            .is_err()
        {
            tracing::debug!(pool = %self.name(), ?limit, "graceful close timed out; connection dropped");
            self.timed_out(TimeoutPhase::Closing);
        }
    }

    /// A connection came back needing cleanup (open transaction, reset on release) when
    /// `dirty`, or an `after_release` hook: run them in the background, together bounded by
    /// `cleanup_timeout`, then give it back or retire it.
    fn clean_in_background(self: &Arc<Self>, live: Live<C::Connection>, dirty: bool) {
        // Cancel safety: the connection is guarded from here on, so a task that never runs
        // or is dropped midway (its runtime shut down) retires it instead of losing it.
        let mut guard = LiveGuard::new(self, live);
        let inner = Arc::clone(self);
        let _ = self.spawn(async move {
            let Some(live) = guard.live_mut() else {
                return;
            };
            let limit = inner.options.cleanup_timeout_or_default();
            let settle = async {
                if dirty {
                    let reset = inner.options.reset_on_release;
                    inner.connector.cleanup(&mut live.conn, reset).await?;
                }
                if inner.connector.has_after_release() {
                    let meta = inner.meta(live, false);
                    return inner.connector.after_release(&mut live.conn, meta).await;
                }
                Ok(true)
            };
            match tokio::time::timeout(limit, settle).await {
                Ok(Ok(true)) => {
                    if let Some(live) = guard.take() {
                        inner.release(live);
                    }
                }
                Ok(Ok(false)) => guard.retire(CloseReason::Rejected),
                Ok(Err(error)) => {
                    tracing::warn!(pool = %inner.name(), %error, "cleaning a returned connection (or its after_release hook) failed; discarded");
                    guard.retire(inner.reason_for(&error, CloseReason::Discarded));
                }
                Err(_) => {
                    tracing::warn!(pool = %inner.name(), ?limit, "cleaning a returned connection (or its after_release hook) timed out; discarded");
                    inner.timed_out(TimeoutPhase::Resetting);
                    guard.retire(CloseReason::Discarded);
                }
            }
        });
    }

    /// What the hooks learn about a connection; `idle_for` counts from its last release when
    /// `idle` (before it is handed out), else is zero.
    pub(crate) fn meta(&self, live: &LiveState<C::Connection>, idle: bool) -> ConnectionMeta {
        let idle_for = if idle {
            Duration::from_millis(self.clock.now().saturating_sub(live.last_used))
        } else {
            Duration::ZERO
        };
        ConnectionMeta::new(live.created_at.elapsed(), idle_for, live.use_count)
    }

    /// The close reason for an error seen on a connection.
    pub(crate) fn reason_for(&self, error: &C::Error, otherwise: CloseReason) -> CloseReason {
        match self.connector.classify(error) {
            ErrorClass::ReadOnly if self.options.check_writable => CloseReason::ReadOnly,
            ErrorClass::Broken => CloseReason::Broken,
            _ => otherwise,
        }
    }
}
