//! # Implementation details
//!
//! Opening connections: a connect task per reserved slot, each attempt bounded by
//! `connect_timeout`, exponential backoff with jitter between failed attempts while someone
//! still needs the connection, and a refused login or a missing database reported to the
//! oldest waiter at once.

use std::sync::Arc;
use std::time::Duration;

use super::Inner;
use super::guards::Reservation;
use super::live::{Live, LiveState};
use crate::clock::ms;
use crate::connector::{Connected, Connector, ErrorClass};
use crate::error::{PoolError, SharedError};
use crate::observer::TimeoutPhase;

/// A connect attempt that ran out of `connect_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out after {0:?}")]
struct ConnectTimedOut(Duration);

/// How one connect attempt ended.
type Attempt<T> = Result<Live<T>, (ErrorClass, SharedError)>;

impl<C: Connector> Inner<C> {
    /// Starts the connects the waiters and `min_connections` need (a failure to start one is
    /// logged).
    pub(crate) fn start_connects(self: &Arc<Self>) {
        self.lock().start_connects();
    }

    /// Spawns `n` connect tasks whose slots are already reserved.
    ///
    /// # Errors
    /// [`PoolError::NoRuntime`] when they could not be started (the reservations are given
    /// back).
    pub(crate) fn spawn_connects(self: &Arc<Self>, n: u32) -> Result<(), PoolError> {
        for i in 0..n {
            // Cancel safety: each task owns its reservation from the start, so one dropped
            // before it ran (no runtime here, or its runtime shut down) gives it back.
            if !self.spawn(connect_task(Reservation::new(self))) {
                self.lock().unreserve_connects(n - i - 1);
                return Err(PoolError::NoRuntime {
                    pool: self.name().clone(),
                });
            }
        }
        Ok(())
    }

    /// Opens one connection, bounded by `connect_timeout` for each server the connector may
    /// try.
    async fn connect_once(self: &Arc<Self>) -> Attempt<C::Connection> {
        // Read before the connect: one that an eviction overtakes is retired on arrival.
        let generation = self.lock().generation();
        let started = self.clock.refresh();
        let limit = self
            .options
            .connect_timeout
            .saturating_mul(self.connector.connect_attempts().max(1));
        let result = tokio::time::timeout(limit, self.connector.connect()).await;
        match result {
            Ok(Ok(Connected {
                connection,
                backend_pid,
                server,
                lifetime,
                ..
            })) => {
                let now = self.clock.refresh();
                let elapsed = now - started;
                let now_ms = self.clock.ms_at(now);
                let address = server.as_ref().map(|s| &*s.address);
                tracing::debug!(pool = %self.name(), ?elapsed, backend_pid, server = address, "connection opened");
                self.notify(|obs| obs.on_connect(elapsed));
                if let Some(server) = &server {
                    self.note_server(server);
                }
                let lifetime = match (
                    self.options.max_lifetime.map(|l| self.jittered(l)),
                    lifetime,
                ) {
                    (Some(pool), Some(own)) => Some(pool.min(own)),
                    (pool, own) => pool.or(own),
                };
                Ok(Box::new(LiveState {
                    conn: connection,
                    backend_pid,
                    server,
                    pid_asked: backend_pid.is_some(),
                    created_at: now,
                    expires_at: lifetime.map(|lifetime| now_ms.saturating_add(ms(lifetime))),
                    use_count: 0,
                    max_uses: self.options.max_uses.map(jittered_uses),
                    last_used: now_ms,
                    last_checked: now_ms,
                    cancel: None,
                    generation,
                }))
            }
            Ok(Err(error)) => {
                let class = self.connector.classify(&error);
                if let Some(suppressed) = self.admit(&self.logs.connect_failed) {
                    tracing::warn!(pool = %self.name(), error = %error, ?class, suppressed_warnings = suppressed, "connect failed");
                }
                Err((class, Arc::new(error)))
            }
            Err(_) => {
                let error = ConnectTimedOut(limit);
                if let Some(suppressed) = self.admit(&self.logs.connect_failed) {
                    tracing::warn!(pool = %self.name(), error = %error, suppressed_warnings = suppressed, "connect failed");
                }
                self.timed_out(TimeoutPhase::Connecting);
                Err((ErrorClass::Transient, Arc::new(error)))
            }
        }
    }

    /// `lifetime` minus this connection's share of `lifetime_jitter`, so connections opened
    /// together do not all retire together.
    fn jittered(&self, lifetime: Duration) -> Duration {
        let jitter = self.options.lifetime_jitter.as_millis() as u64;
        let off = if jitter == 0 {
            0
        } else {
            fastrand::u64(0..=jitter)
        };
        lifetime.saturating_sub(Duration::from_millis(off))
    }

    /// Exponential backoff with full jitter, capped.
    fn backoff(&self, failures: u32) -> Duration {
        let initial = self.options.connect_backoff_initial;
        let cap = self.options.connect_backoff_max;
        let exp = initial.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        let ceiling = exp.min(cap).as_millis() as u64;
        Duration::from_millis(fastrand::u64(ceiling / 2..=ceiling.max(1)))
    }

    /// Books a connect attempt's outcome; returns the backoff delay if the task should retry
    /// (it keeps its reservation), else the reservation is settled.
    ///
    /// A refused login (wrong credentials, a missing database) fails every waiter at once
    /// with the error, and until the backoff has passed acquires that find no idle
    /// connection fail at once too: logins are tried at the backoff pace, never at the
    /// rate requests arrive (server log floods, SCRAM work, account lockouts).
    fn connect_finished(self: &Arc<Self>, attempt: Attempt<C::Connection>) -> Option<Duration> {
        let since = self.checkout_clock();
        let (class, error) = match attempt {
            Ok(live) => {
                self.lock().connect_succeeded(live, since);
                return None;
            }
            Err(failure) => failure,
        };
        self.notify(|obs| obs.on_connect_error());
        let refused = match class {
            ErrorClass::Authentication | ErrorClass::Fatal => {
                Some(self.connect_error(class, &error))
            }
            _ => None,
        };
        let now_ms = self.clock.ms_at(self.clock.refresh());
        let mut st = self.lock();
        let failures = st.connect_failed(error, now_ms);
        let delay = self.backoff(failures);
        if let Some(refused) = refused {
            let until = now_ms.saturating_add(ms(delay));
            for handoff in st.refuse_logins(refused, until) {
                st.deliver(handoff);
            }
        }
        if !st.still_needed() {
            st.unreserve_connects(1);
            return None;
        }
        Some(delay)
    }

    /// The error a caller sees for a failed connect.
    fn connect_error(&self, class: ErrorClass, error: &SharedError) -> PoolError {
        let pool = self.name().clone();
        let source = Arc::clone(error);
        match class {
            ErrorClass::Authentication => PoolError::Authentication { pool, source },
            _ => PoolError::Connect { pool, source },
        }
    }

    /// Fail-fast start: returns once the pool holds a connection, opening one if it holds
    /// none (bounded by `connect_timeout`, no retry), or with that connect's error.
    pub(crate) async fn open_first(
        self: &Arc<Self>,
        location: &'static std::panic::Location<'static>,
    ) -> Result<(), PoolError> {
        let reserved = self.lock().reserve_first();
        match reserved {
            Some(false) => return Ok(()),
            Some(true) => {}
            None => {
                // Closing, paused, or every slot is being opened: an acquire says which.
                let deadline = self.options.connect_timeout;
                let acquired = tokio::time::timeout(deadline, self.acquire(location)).await;
                return match acquired {
                    Ok(Ok(acquired)) => {
                        let checkout = acquired.checkout;
                        self.give_back(checkout.live, checkout.key, checkout.since, None);
                        Ok(())
                    }
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(PoolError::Connect {
                        pool: self.name().clone(),
                        source: Arc::new(ConnectTimedOut(deadline)),
                    }),
                };
            }
        }
        // Cancel safety: the reservation is guarded until the outcome is booked.
        let reservation = Reservation::new(self);
        let attempt = self.connect_once().await;
        match attempt {
            Ok(live) => {
                let since = self.checkout_clock();
                self.lock().connect_succeeded(live, since);
                reservation.settled();
                Ok(())
            }
            Err((class, error)) => {
                self.notify(|obs| obs.on_connect_error());
                let now_ms = self.clock.ms_at(self.clock.refresh());
                let mut st = self.lock();
                st.connect_failed(Arc::clone(&error), now_ms);
                st.unreserve_connects(1);
                drop(st);
                reservation.settled();
                Err(self.connect_error(class, &error))
            }
        }
    }

    /// After a backoff: keeps the connect reservation if someone still needs it, else gives
    /// it back.
    fn keep_reservation(self: &Arc<Self>) -> bool {
        let mut st = self.lock();
        if st.still_needed() {
            return true;
        }
        st.unreserve_connects(1);
        false
    }
}

/// One reserved connect slot: connect, and on transient failure back off and retry while
/// someone still needs it. Holds only a weak reference while sleeping, so a dropped pool is
/// not kept alive by its refill; the reservation is guarded throughout.
async fn connect_task<C: Connector>(reservation: Reservation<C>) {
    loop {
        let Some(inner) = reservation.pool() else {
            return;
        };
        let attempt = inner.connect_once().await;
        let Some(delay) = inner.connect_finished(attempt) else {
            reservation.settled();
            return;
        };
        drop(inner);
        tokio::time::sleep(delay).await;
        // The reservation is still held (counted in `connecting`): keep it only if needed.
        let Some(inner) = reservation.pool() else {
            return;
        };
        if !inner.keep_reservation() {
            reservation.settled();
            return;
        }
    }
}

/// `max_uses` minus a uniformly random part of its tenth (each connection retires after 90 to
/// 100 % of `max_uses` checkouts), so connections opened together, and busy alike, do not all
/// reach it on the same round and reconnect at once. Below 10 the limit is exact.
fn jittered_uses(max_uses: u64) -> u64 {
    max_uses - fastrand::u64(0..=max_uses / 10)
}
