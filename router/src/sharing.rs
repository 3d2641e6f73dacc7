//! Shared live streams: one upstream subscription per key — an operation and its variables whose result is
//! the same for every viewer, such as `commentAdded(postId)` — and each event, serialized once, handed to
//! every viewer of that key (issue 23; docs/live-sharing.md says where this sits and what is left).
//!
//! - [`Hub::join`] opens the upstream for the first viewer of a key (the `open` closure) and runs it in a
//!   pump task; later viewers of the key join the same stream. The pump writes each event into one bounded
//!   ring ([`tokio::sync::broadcast`]) shared by the key's viewers: an event is stored once however many
//!   read it, and a viewer costs a cursor into the ring, so memory per viewer is flat.
//! - A [`Viewer`] yields [`Delivery`]s. One that falls a whole ring behind gets [`Delivery::Lagged`] and then
//!   nothing more — told, never silently skipped; the others are unaffected.
//! - Dropping the last viewer of a key aborts its pump, which drops the upstream stream (closing the
//!   subscription upstream) and forgets the key; the next viewer opens a new one. When the upstream ends,
//!   every viewer's stream ends.
//!
//! Who may join is not decided here: the caller checks each viewer's right first, and drops a viewer whose
//! right ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

/// What a viewer gets next.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery<T = Bytes> {
    /// One event, serialized once for everyone.
    Event(T),
    /// The viewer fell this many events behind the ring; its stream ends after this.
    Lagged(u64),
}

/// The shared streams of one router process, by key.
pub struct Hub<K, T = Bytes> {
    streams: Arc<Mutex<HashMap<K, Shared<T>>>>,
    /// Events a key's ring holds: how far a viewer may fall behind.
    ring: usize,
    /// Tells one upstream of a key from the next, for viewers and pumps outliving theirs.
    generations: Arc<AtomicU64>,
}

struct Shared<T> {
    events: broadcast::Sender<T>,
    viewers: usize,
    pump: AbortHandle,
    generation: u64,
}

impl<K, T> Clone for Hub<K, T> {
    fn clone(&self) -> Self {
        Self {
            streams: self.streams.clone(),
            ring: self.ring,
            generations: self.generations.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + 'static, T: Clone + Send + 'static> Hub<K, T> {
    /// A hub whose rings hold `ring` events (at least 1).
    pub fn new(ring: usize) -> Self {
        Self {
            streams: Arc::default(),
            ring: ring.max(1),
            generations: Arc::default(),
        }
    }

    /// Keys with an open upstream.
    pub fn open_streams(&self) -> usize {
        self.lock().len()
    }

    /// Viewers of `key`.
    pub fn viewers(&self, key: &K) -> usize {
        self.lock().get(key).map_or(0, |shared| shared.viewers)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Shared<T>>> {
        // Every critical section leaves the map whole; a panic elsewhere cannot half-write it.
        self.streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Joins `key`'s stream, opening the upstream with `open` if no one is watching it yet. The viewer sees
    /// the events published after it joined. Must run inside a tokio runtime.
    pub fn join<S>(&self, key: K, open: impl FnOnce() -> S) -> Viewer<K, T>
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let mut streams = self.lock();
        let shared = streams.entry(key.clone()).or_insert_with(|| {
            let generation = self.generations.fetch_add(1, Ordering::Relaxed);
            let (events, _) = broadcast::channel(self.ring);
            let upstream = open();
            let sender = events.clone();
            let hub = self.clone();
            let pump_key = key.clone();
            let pump = tokio::spawn(async move {
                futures::pin_mut!(upstream);
                while let Some(event) = upstream.next().await {
                    // No receiver means every viewer left at this instant; their leaving aborts this task.
                    let _ = sender.send(event);
                }
                // The upstream ended: forget the key (its viewers see the end once the ring drains).
                hub.forget(&pump_key, generation);
            })
            .abort_handle();
            Shared {
                events,
                viewers: 0,
                pump,
                generation,
            }
        });
        shared.viewers += 1;
        Viewer {
            events: Some(shared.events.subscribe()),
            hub: self.clone(),
            key,
            generation: shared.generation,
        }
    }

    fn forget(&self, key: &K, generation: u64) {
        let mut streams = self.lock();
        if streams
            .get(key)
            .is_some_and(|shared| shared.generation == generation)
        {
            streams.remove(key);
        }
    }

    fn leave(&self, key: &K, generation: u64) {
        let mut streams = self.lock();
        // After the upstream ended and a new one opened for the key, an old viewer must not count out of it.
        let Some(shared) = streams
            .get_mut(key)
            .filter(|shared| shared.generation == generation)
        else {
            return;
        };
        shared.viewers -= 1;
        if shared.viewers == 0 {
            shared.pump.abort();
            streams.remove(key);
        }
    }
}

/// One viewer of a shared stream; leaves it when dropped.
pub struct Viewer<K: Hash + Eq + Clone + Send + 'static, T: Clone + Send + 'static = Bytes> {
    events: Option<broadcast::Receiver<T>>,
    hub: Hub<K, T>,
    key: K,
    generation: u64,
}

impl<K: Hash + Eq + Clone + Send + 'static, T: Clone + Send + 'static> Viewer<K, T> {
    /// The next delivery; `None` once the stream ended (upstream gone, or after a [`Delivery::Lagged`]).
    pub async fn next(&mut self) -> Option<Delivery<T>> {
        let events = self.events.as_mut()?;
        match events.recv().await {
            Ok(event) => Some(Delivery::Event(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                self.stop();
                Some(Delivery::Lagged(missed))
            }
            Err(broadcast::error::RecvError::Closed) => {
                self.stop();
                None
            }
        }
    }

    /// The key of the stream this viewer watches.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// Leaves the stream now (also done on drop).
    pub fn stop(&mut self) {
        if self.events.take().is_some() {
            self.hub.leave(&self.key, self.generation);
        }
    }
}

impl<K: Hash + Eq + Clone + Send + 'static, T: Clone + Send + 'static> Drop for Viewer<K, T> {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio_stream::wrappers::UnboundedReceiverStream;

    use super::*;

    /// An upstream the test feeds by hand; `dropped` counts upstreams that were closed.
    struct Upstreams {
        opened: AtomicUsize,
        dropped: Arc<AtomicUsize>,
    }

    struct DropCount(Arc<AtomicUsize>);
    impl Drop for DropCount {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Upstreams {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                opened: AtomicUsize::new(0),
                dropped: Arc::default(),
            })
        }

        fn open(
            &self,
            feed: &mut Option<mpsc::UnboundedSender<Bytes>>,
        ) -> impl Stream<Item = Bytes> {
            self.opened.fetch_add(1, Ordering::SeqCst);
            let (sender, receiver) = mpsc::unbounded_channel();
            *feed = Some(sender);
            let guard = DropCount(self.dropped.clone());
            UnboundedReceiverStream::new(receiver).map(move |event| {
                let _keep = &guard;
                event
            })
        }
    }

    async fn eventually(what: &str, check: impl Fn() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never: {what}");
    }

    #[tokio::test]
    async fn viewers_share_one_upstream_that_closes_when_the_last_leaves() {
        let hub = Hub::new(16);
        let upstreams = Upstreams::new();
        let mut feed = None;
        let mut viewers: Vec<_> = (0..200)
            .map(|_| hub.join("post-1", || upstreams.open(&mut feed)))
            .collect();
        assert_eq!(
            upstreams.opened.load(Ordering::SeqCst),
            1,
            "one upstream for 200 viewers"
        );
        assert_eq!(hub.viewers(&"post-1"), 200);

        let event = Bytes::from_static(b"{\"data\":{\"commentAdded\":{\"body\":\"hi\"}}}");
        feed.as_ref()
            .expect("opened")
            .send(event.clone())
            .expect("pump listens");
        for viewer in &mut viewers {
            assert_eq!(viewer.next().await, Some(Delivery::Event(event.clone())));
        }

        viewers.truncate(1);
        assert_eq!(
            upstreams.dropped.load(Ordering::SeqCst),
            0,
            "one viewer keeps it open"
        );
        viewers.clear();
        eventually("the upstream is closed", || {
            upstreams.dropped.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(hub.open_streams(), 0);

        // The next viewer opens a new upstream.
        let mut feed = None;
        let _again = hub.join("post-1", || upstreams.open(&mut feed));
        assert_eq!(upstreams.opened.load(Ordering::SeqCst), 2);
        assert_eq!(hub.open_streams(), 1);
    }

    #[tokio::test]
    async fn a_lagging_viewer_is_told_and_ended_while_the_others_keep_up() {
        let hub = Hub::new(4);
        let upstreams = Upstreams::new();
        let mut feed = None;
        let mut quick = hub.join(7u32, || upstreams.open(&mut feed));
        let mut slow = hub.join(7u32, || upstreams.open(&mut feed));
        let feed = feed.expect("opened");
        for n in 0..10u8 {
            feed.send(Bytes::from(vec![n])).expect("send");
            assert_eq!(
                quick.next().await,
                Some(Delivery::Event(Bytes::from(vec![n])))
            );
        }
        assert_eq!(slow.next().await, Some(Delivery::Lagged(6)));
        assert_eq!(slow.next().await, None, "nothing after the lag notice");
        assert_eq!(hub.viewers(&7), 1, "the lagging viewer left");
        feed.send(Bytes::from_static(b"more")).expect("send");
        assert_eq!(
            quick.next().await,
            Some(Delivery::Event(Bytes::from_static(b"more")))
        );
    }

    #[tokio::test]
    async fn the_end_of_the_upstream_ends_every_viewer() {
        let hub = Hub::new(8);
        let upstreams = Upstreams::new();
        let mut feed = None;
        let mut a = hub.join("chat", || upstreams.open(&mut feed));
        let mut b = hub.join("chat", || upstreams.open(&mut feed));
        feed.expect("opened")
            .send(Bytes::from_static(b"last"))
            .expect("send");
        // The feed is dropped above: the upstream ends after its last event.
        for viewer in [&mut a, &mut b] {
            assert_eq!(
                viewer.next().await,
                Some(Delivery::Event(Bytes::from_static(b"last")))
            );
            assert_eq!(viewer.next().await, None);
        }
        eventually("the key is forgotten", || hub.open_streams() == 0).await;
        drop((a, b));
        assert_eq!(hub.open_streams(), 0);
    }
}
