//! Live updates for subscriptions. They come off the event bus (the relay publishes every committed event,
//! ephemeral signals are published directly), so a change written through any instance reaches every
//! subscriber of every instance once the bus is shared. Each open subscription holds a guard; the count is
//! the `parley_live_subscriptions{subgraph}` gauge, so a client that disconnects visibly leaves nothing behind.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::events::{EventBus, EventEnvelope};

pub struct Live {
    pub bus: Arc<dyn EventBus>,
    subgraph: &'static str,
    open: Arc<AtomicI64>,
}

/// Counts one open subscription while alive.
pub struct Guard {
    open: Arc<AtomicI64>,
    subgraph: &'static str,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        // increment/decrement, not set: a snapshot set from two threads can land out of order.
        metrics::gauge!("parley_live_subscriptions", "subgraph" => self.subgraph).decrement(1.0);
    }
}

impl Live {
    pub fn new(bus: Arc<dyn EventBus>, subgraph: &'static str) -> Self {
        Self {
            bus,
            subgraph,
            open: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Subscriptions open now.
    pub fn open(&self) -> i64 {
        self.open.load(Ordering::SeqCst)
    }

    /// A guard counting one subscription until dropped.
    pub fn guard(&self) -> Guard {
        self.open.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!("parley_live_subscriptions", "subgraph" => self.subgraph).increment(1.0);
        Guard {
            open: self.open.clone(),
            subgraph: self.subgraph,
        }
    }

    /// Bus events from now on (a subscriber that falls more than the channel behind skips the gap).
    pub fn events(&self) -> impl Stream<Item = EventEnvelope> + Send + 'static {
        BroadcastStream::new(self.bus.subscribe()).filter_map(|item| async move { item.ok() })
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
        let guard = self.guard();
        self.events().filter_map(move |event| {
            let _alive = &guard;
            let future = keep(&event).then(|| load(event));
            async move {
                match future {
                    Some(f) => f.await,
                    None => None,
                }
            }
        })
    }
}
