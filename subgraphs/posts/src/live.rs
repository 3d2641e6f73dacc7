//! Live updates for subscriptions. They come off the event bus (the relay publishes every committed event),
//! so a comment written through any posts instance reaches every subscriber of every instance once the bus is
//! shared (Redis). Each open subscription holds a guard; the count is the `parley_live_subscriptions` gauge,
//! so a client that disconnects visibly leaves nothing behind.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use parley_kit::events::{EventBus, EventEnvelope};
use tokio_stream::wrappers::BroadcastStream;

pub struct Live {
    pub bus: Arc<dyn EventBus>,
    open: Arc<AtomicI64>,
}

/// Counts one open subscription while alive.
pub struct Guard(Arc<AtomicI64>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        // increment/decrement, not set: a snapshot set from two threads can land out of order.
        metrics::gauge!("parley_live_subscriptions", "subgraph" => "posts").decrement(1.0);
    }
}

impl Live {
    pub fn new(bus: Arc<dyn EventBus>) -> Self {
        Self {
            bus,
            open: Arc::new(AtomicI64::new(0)),
        }
    }

    pub fn open(&self) -> i64 {
        self.open.load(Ordering::SeqCst)
    }

    /// Events from now on that `keep` selects, mapped by the async `load` (which may drop them by returning
    /// `None`). The stream holds a [`Guard`] until it is dropped.
    pub fn stream<T, K, L, F>(&self, keep: K, load: L) -> impl Stream<Item = T> + Send + 'static
    where
        T: Send + 'static,
        K: Fn(&EventEnvelope) -> bool + Send + 'static,
        L: Fn(EventEnvelope) -> F + Send + 'static,
        F: std::future::Future<Output = Option<T>> + Send + 'static,
    {
        self.open.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!("parley_live_subscriptions", "subgraph" => "posts").increment(1.0);
        let guard = Guard(self.open.clone());
        BroadcastStream::new(self.bus.subscribe()).filter_map(move |item| {
            let _alive = &guard;
            let selected = item.ok().filter(|event| keep(event));
            let future = selected.map(&load);
            async move {
                match future {
                    Some(f) => f.await,
                    None => None,
                }
            }
        })
    }
}
