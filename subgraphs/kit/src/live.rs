//! Live updates for subscriptions. They come off the event bus (the relay publishes every committed event,
//! ephemeral signals are published directly), so a change written through any instance reaches every
//! subscriber of every instance once the bus is shared. Each open subscription holds a guard; the count is
//! the `parley_live_subscriptions{subgraph}` gauge, so a client that disconnects visibly leaves nothing behind.
//!
//! Most subscriptions follow one aggregate (a post's comments, a chat's messages): [`Live::keyed`] streams
//! only that aggregate's events. One dispatcher task reads the bus and hands each event to the subscribers of
//! its aggregate, so an event costs its own subscribers, not every open subscription.
//!
//! A subscriber that falls behind (or a dispatcher that does) skips events. Where a skipped event matters —
//! a member's removal must end their stream — [`Live::keyed_or_gap`] says so with [`Delivery::Gap`], and the
//! stream re-reads what it depends on from the store.
//!
//! What every subscriber of an event would read alike (the post a vote changed, whether its author is
//! private) is read once per event with [`PerEvent`]; only each viewer's own right is checked per subscriber.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::events::{EventBus, EventEnvelope};

/// Events buffered per aggregate for a slow subscriber before it skips ahead.
const TOPIC_BUFFER: usize = 256;

/// An event as its subscribers share it: one copy however many follow its aggregate.
pub type SharedEvent = Arc<EventEnvelope>;

/// What a topic's subscriber receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(SharedEvent),
    /// Events were skipped (the subscriber or the dispatcher fell behind): what was learnt from events may
    /// be stale.
    Gap,
}

type Topics = Arc<Mutex<HashMap<String, broadcast::Sender<Delivery>>>>;

/// Further topics an event goes to besides its aggregate's (e.g. `user:<id>` for the users a chat change
/// concerns).
pub type ExtraKeys = fn(&EventEnvelope) -> Vec<String>;

pub struct Live {
    pub bus: Arc<dyn EventBus>,
    subgraph: &'static str,
    open: Arc<AtomicI64>,
    topics: Topics,
    dispatcher: tokio::task::JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.dispatcher.abort();
    }
}

fn lock(
    topics: &Topics,
) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Delivery>>> {
    topics.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Hands every bus event to its aggregate's subscribers; forgets aggregates nobody follows any more (at
/// once for the event's own, every few hundred events for the rest).
async fn dispatch(
    mut events: broadcast::Receiver<EventEnvelope>,
    topics: Topics,
    extra_keys: Option<ExtraKeys>,
) {
    let mut seen: u32 = 0;
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Nobody knows which topics the skipped events were for: every subscriber hears of it.
                for tx in lock(&topics).values() {
                    let _ = tx.send(Delivery::Gap);
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let event = Arc::new(event);
        let mut keys = extra_keys.map(|f| f(&event)).unwrap_or_default();
        keys.push(event.aggregate_id.clone());
        let mut topics = lock(&topics);
        for key in keys {
            if let Some(tx) = topics.get(&key) {
                if tx.send(Delivery::Event(event.clone())).is_err() {
                    topics.remove(&key);
                }
            }
        }
        seen = seen.wrapping_add(1);
        if seen.is_multiple_of(512) {
            topics.retain(|_, tx| tx.receiver_count() > 0);
        }
    }
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
    /// Starts the dispatcher (it stops when the `Live` is dropped).
    pub fn new(bus: Arc<dyn EventBus>, subgraph: &'static str) -> Self {
        Self::with_extra_keys(bus, subgraph, None)
    }

    /// Like [`Live::new`], with events also dispatched to the topics `extra_keys` names.
    pub fn with_extra_keys(
        bus: Arc<dyn EventBus>,
        subgraph: &'static str,
        extra_keys: Option<ExtraKeys>,
    ) -> Self {
        let topics: Topics = Arc::default();
        let dispatcher = tokio::spawn(dispatch(bus.subscribe(), topics.clone(), extra_keys));
        Self {
            bus,
            subgraph,
            open: Arc::new(AtomicI64::new(0)),
            topics,
            dispatcher,
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

    /// Every bus event from now on (a subscriber that falls more than the channel behind skips the gap).
    pub fn events(&self) -> impl Stream<Item = EventEnvelope> + Send + 'static {
        BroadcastStream::new(self.bus.subscribe()).filter_map(|item| async move { item.ok() })
    }

    /// The events of one aggregate (`aggregate_id == key`) from now on (skipped ones are simply missing).
    pub fn keyed(&self, key: &str) -> impl Stream<Item = SharedEvent> + Send + 'static {
        self.keyed_or_gap(key).filter_map(|delivery| async move {
            match delivery {
                Delivery::Event(event) => Some(event),
                Delivery::Gap => None,
            }
        })
    }

    /// Like [`Live::keyed`], with a [`Delivery::Gap`] wherever events were skipped.
    pub fn keyed_or_gap(&self, key: &str) -> impl Stream<Item = Delivery> + Send + 'static {
        let rx = lock(&self.topics)
            .entry(key.to_string())
            .or_insert_with(|| broadcast::channel(TOPIC_BUFFER).0)
            .subscribe();
        BroadcastStream::new(rx).map(|item| item.unwrap_or(Delivery::Gap))
    }

    /// Events of aggregate `key` from now on that `keep` selects, mapped by the async `load` (which may drop
    /// them by returning `None`). The stream holds a [`Guard`] until it is dropped.
    pub fn stream<T, K, L, F>(
        &self,
        key: &str,
        keep: K,
        load: L,
    ) -> impl Stream<Item = T> + Send + 'static
    where
        T: Send + 'static,
        K: Fn(&EventEnvelope) -> bool + Send + 'static,
        L: Fn(SharedEvent) -> F + Send + 'static,
        F: std::future::Future<Output = Option<T>> + Send + 'static,
    {
        let guard = self.guard();
        self.keyed(key).filter_map(move |event| {
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

/// One load per event for all the subscribers that need it: the first to ask runs it, the others await its
/// result. The results of the last `capacity` events are kept; a subscriber later than that loads its own.
pub struct PerEvent<V> {
    capacity: usize,
    recent: Mutex<Recent<V>>,
}

struct Recent<V> {
    cells: HashMap<uuid::Uuid, Arc<tokio::sync::OnceCell<V>>>,
    order: std::collections::VecDeque<uuid::Uuid>,
}

impl<V: Clone> PerEvent<V> {
    pub fn new(capacity: usize) -> Self {
        PerEvent {
            capacity: capacity.max(1),
            recent: Mutex::new(Recent {
                cells: HashMap::new(),
                order: Default::default(),
            }),
        }
    }

    /// The result of `load` for `event`, run once however many subscribers ask.
    pub async fn get_or_load<F, Fut>(&self, event: uuid::Uuid, load: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = V>,
    {
        let cell = {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            match recent.cells.get(&event) {
                Some(cell) => cell.clone(),
                None => {
                    if recent.order.len() >= self.capacity {
                        if let Some(oldest) = recent.order.pop_front() {
                            recent.cells.remove(&oldest);
                        }
                    }
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    recent.cells.insert(event, cell.clone());
                    recent.order.push_back(event);
                    cell
                }
            }
        };
        cell.get_or_init(load).await.clone()
    }
}

#[cfg(test)]
mod per_event_tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn many_subscribers_share_one_load_per_event_and_old_events_are_let_go() {
        let loads = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(PerEvent::<usize>::new(2));
        let (a, b, c) = (
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
            uuid::Uuid::now_v7(),
        );
        let load = |loads: Arc<AtomicUsize>| async move {
            tokio::task::yield_now().await;
            loads.fetch_add(1, Ordering::SeqCst) + 1
        };
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (shared, loads) = (shared.clone(), loads.clone());
                tokio::spawn(async move { shared.get_or_load(a, || load(loads)).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(
                task.await.expect("task"),
                1,
                "every subscriber got the one load"
            );
        }
        assert_eq!(shared.get_or_load(b, || load(loads.clone())).await, 2);
        assert_eq!(shared.get_or_load(c, || load(loads.clone())).await, 3);
        // `a` was the oldest of three with room for two: loaded again.
        assert_eq!(shared.get_or_load(a, || load(loads.clone())).await, 4);
        assert_eq!(loads.load(Ordering::SeqCst), 4);
    }
}
