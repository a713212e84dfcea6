//! # Implementation details
//!
//! A stream whose items come from an async body that owns what it reads from (a checkout,
//! and the query stream that borrows it), so a stream from `&Pool` can hold its connection
//! for as long as it lives without borrowing from the caller. The body hands each item over
//! through a one-item slot and suspends until the stream has returned it: one item in
//! flight, so memory stays flat whatever the size of the result. sqlx streams the same way
//! (`sqlx_core::ext::async_stream`), in safe code.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_core::future::BoxFuture;

/// The one item in flight between the body and the stream.
type Slot<T> = Arc<Mutex<Option<T>>>;

fn take<T>(slot: &Slot<T>) -> Option<T> {
    // A panic while the lock was held left at most one item behind; take it all the same.
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// The stream (see the module docs).
pub(crate) struct OwnedStream<'a, T> {
    slot: Slot<T>,
    body: Option<BoxFuture<'a, ()>>,
}

/// The body's side: sends items to the stream.
pub(crate) struct Sender<T> {
    slot: Slot<T>,
}

impl<'a, T: Send + 'a> OwnedStream<'a, T> {
    /// A stream of what `body` sends, in order; it ends when `body` returns.
    pub(crate) fn new<F, Fut>(body: F) -> Self
    where
        F: FnOnce(Sender<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'a,
    {
        let slot = Slot::default();
        let sender = Sender {
            slot: Arc::clone(&slot),
        };
        OwnedStream {
            slot,
            body: Some(Box::pin(body(sender))),
        }
    }
}

impl<T> Sender<T> {
    /// Hands `item` to the stream and suspends until the stream has returned it.
    pub(crate) async fn send(&self, item: T) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(item);
        let mut handed = false;
        // No waker is registered: the stream, which polled this body, returns the item at
        // once and polls again when its own caller asks for the next one.
        poll_fn(|_| {
            if handed {
                Poll::Ready(())
            } else {
                handed = true;
                Poll::Pending
            }
        })
        .await;
    }
}

impl<T> Stream for OwnedStream<'_, T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let Some(body) = &mut this.body else {
            return Poll::Ready(None);
        };
        match body.as_mut().poll(cx) {
            Poll::Ready(()) => {
                // Dropping the body now releases what it owned (the checkout) at once.
                this.body = None;
                Poll::Ready(take(&this.slot))
            }
            Poll::Pending => match take(&this.slot) {
                Some(item) => Poll::Ready(Some(item)),
                // The body waits on I/O and registered the waker.
                None => Poll::Pending,
            },
        }
    }
}

impl<T> fmt::Debug for OwnedStream<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedStream")
            .field("done", &self.body.is_none())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::OwnedStream;

    #[tokio::test]
    async fn items_arrive_in_order_one_at_a_time_and_the_body_ends_the_stream() {
        let owned = vec![1, 2, 3];
        let stream = OwnedStream::new(move |out| async move {
            for n in owned {
                out.send(n).await;
                tokio::task::yield_now().await;
            }
        });
        assert_eq!(stream.collect::<Vec<_>>().await, [1, 2, 3]);
    }

    #[tokio::test]
    async fn dropping_the_stream_drops_what_the_body_owns() {
        let owned = std::sync::Arc::new(());
        let held = std::sync::Arc::clone(&owned);
        let mut stream = OwnedStream::new(move |out| async move {
            let _held = held;
            loop {
                out.send(()).await;
            }
        });
        assert_eq!(stream.next().await, Some(()));
        assert_eq!(std::sync::Arc::strong_count(&owned), 2);
        drop(stream);
        assert_eq!(std::sync::Arc::strong_count(&owned), 1);
    }
}
