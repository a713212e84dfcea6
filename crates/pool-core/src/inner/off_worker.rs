//! # Implementation details
//!
//! Running a CPU-heavy future off the runtime's workers: a SCRAM login derives its key with
//! 4096 rounds of HMAC-SHA-256 (milliseconds of CPU) inside one poll, and on a worker it
//! would stall every task queued there.

use std::future::Future;
use std::io;

use tokio::sync::oneshot;

/// Drives `future` to completion on one of the runtime's blocking threads (its sockets stay
/// registered with the runtime, so what it opens is used on the workers afterwards).
///
/// # Errors
/// When the runtime is shutting down and runs no more blocking work.
///
/// # Panics
/// Resumes a panic of `future`.
///
/// # Cancel safety
/// Cancel safe: dropping the returned future drops `future` on the blocking thread at its
/// next wake-up (a half-open connection is closed).
pub(crate) async fn off_workers<F>(future: F) -> io::Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    let (keep, dropped) = oneshot::channel::<()>();
    let task = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            tokio::select! {
                output = future => Some(output),
                _ = dropped => None,
            }
        })
    });
    let joined = task.await;
    drop(keep);
    match joined {
        Ok(Some(output)) => Ok(output),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Ok(None) | Err(_) => Err(io::Error::other(
            "the runtime is shutting down: no thread to open the connection on",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_future_runs_on_another_thread_and_its_output_comes_back() {
        let worker = std::thread::current().id();
        let ran_on = off_workers(async { std::thread::current().id() })
            .await
            .unwrap();
        assert_ne!(ran_on, worker);
    }

    #[tokio::test]
    async fn a_dropped_call_drops_its_future() {
        let (tx, rx) = oneshot::channel::<()>();
        let call = off_workers(async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        // Polled once so the blocking task starts, then dropped.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(50), call).await;
        assert!(rx.await.is_err(), "the future was dropped with its sender");
    }
}
