//! `on_http_request`, with the address stamped: caps on long-lived clients per caller, below the engine's
//! global `max_long_lived_clients`, so one address (or one user) cannot take every slot. A WebSocket upgrade
//! takes a slot of its client address before it is accepted, held by the request's plugin context, which
//! the engine hands to the connection; an SSE or multipart stream takes one when its response turns out to
//! be a stream (a query answered as JSON takes none), of its address and, with a verified token, of its
//! user, held by the response body. Either way the slot is released when the connection or stream ends,
//! however it ends. Over the cap: HTTP 429 with `Retry-After`.
//!
//! Why connections and not subscriptions: the engine (0.2.19) has no hook where a subscription begins or
//! ends, only where a request does; a WebSocket's operations are capped per user by the subgraphs instead
//! (`parley_kit::ws`), which see each one with its caller.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hive_router::ntex::http::body::{Body, BodySize, MessageBody};
use hive_router::ntex::util::Bytes;
use serde::Deserialize;

/// Long-lived clients allowed per caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientCaps {
    /// Per client address (WebSockets and streams together).
    pub per_address: usize,
    /// Per signed-in user, over all their addresses (streams with a verified token).
    pub per_user: usize,
}

impl Default for ClientCaps {
    fn default() -> Self {
        Self {
            per_address: 200,
            per_user: 50,
        }
    }
}

/// Slots taken per caller key (`ip:…`, `user:…`).
#[derive(Clone, Default)]
pub struct Slots {
    taken: Arc<Mutex<HashMap<String, usize>>>,
}

/// One slot, given back when dropped.
pub struct Slot {
    taken: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = taken.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                taken.remove(&self.key);
            }
        }
    }
}

impl Slots {
    /// A slot of `key`, unless it holds `cap` already.
    pub fn take(&self, key: String, cap: usize) -> Option<Slot> {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let n = taken.entry(key.clone()).or_insert(0);
        if *n >= cap {
            if *n == 0 {
                taken.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(Slot {
            taken: self.taken.clone(),
            key,
        })
    }

    /// Callers holding at least one slot (bounded by the engine's global cap).
    #[cfg(test)]
    fn callers(&self) -> usize {
        self.taken.lock().map(|t| t.len()).unwrap_or(0)
    }
}

/// Slots a WebSocket holds in its request's plugin context (which its connection keeps).
pub struct HeldSlots {
    _slots: Vec<Slot>,
}

impl HeldSlots {
    pub fn new(slots: Vec<Slot>) -> Self {
        Self { _slots: slots }
    }
}

/// A response body that holds slots until the body (the connection, the stream) is dropped.
pub struct Held {
    inner: Body,
    _slots: Vec<Slot>,
}

impl Held {
    pub fn new(inner: Body, slots: Vec<Slot>) -> Self {
        Self {
            inner,
            _slots: slots,
        }
    }
}

impl MessageBody for Held {
    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Rc<dyn std::error::Error>>>> {
        self.inner.poll_next_chunk(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_key_and_given_back() {
        let slots = Slots::default();
        let a1 = slots.take("ip:a".into(), 2).expect("first");
        let _a2 = slots.take("ip:a".into(), 2).expect("second");
        assert!(slots.take("ip:a".into(), 2).is_none(), "third over the cap");
        assert!(slots.take("ip:b".into(), 2).is_some(), "another caller");
        drop(a1);
        assert!(slots.take("ip:a".into(), 2).is_some(), "given back");
        assert!(slots.take("ip:z".into(), 0).is_none());
        assert_eq!(slots.callers(), 1, "keys without slots are forgotten");
    }
}
