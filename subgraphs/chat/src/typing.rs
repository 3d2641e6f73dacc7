//! Typing indicators: ephemeral, never stored. `setTyping` publishes a `ChatTyping` signal straight to the bus;
//! every instance keeps who is typing from the signals it sees, and the instance that published a signal
//! also publishes its end when it expires without renewal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use parley_kit::events::contracts::ChatTyping;
use parley_kit::events::Event;
use parley_kit::events::{EventBus, EventEnvelope};
use parley_kit::live::Live;
use uuid::Uuid;

/// How long a typing signal lasts without renewal.
pub const TTL: Duration = Duration::from_secs(4);
const SWEEP: Duration = Duration::from_millis(250);

/// Who is typing where: (chat, user) → (until, published by this instance).
type Entries = HashMap<(Uuid, Uuid), (DateTime<Utc>, bool)>;

pub struct Typing {
    bus: Arc<dyn EventBus>,
    entries: Arc<Mutex<Entries>>,
}

impl Typing {
    /// Starts following the bus and sweeping expired signals.
    pub fn start(live: &Live) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let typing = Arc::new(Self {
            bus: live.bus.clone(),
            entries: Arc::new(Mutex::new(HashMap::new())),
        });
        let events = live.events();
        let follower = typing.clone();
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            let mut sweep = tokio::time::interval(SWEEP);
            loop {
                tokio::select! {
                    Some(event) = events.next() => follower.observe(&event),
                    _ = sweep.tick() => follower.expire().await,
                }
            }
        });
        (typing, task)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Publishes that `user` started (or stopped) typing in `chat` (membership is checked by the caller).
    /// A member says they started or stopped typing; anyone else gets the membership gate's answer
    /// (typing is chat content: only members see it, and only members may send it).
    pub async fn announce<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        chat: Uuid,
        user: Uuid,
        typing: bool,
    ) -> crate::error::Result<()> {
        crate::service::member_of(db, chat, user).await?;
        self.set(chat, user, typing).await;
        Ok(())
    }

    pub async fn set(&self, chat: Uuid, user: Uuid, typing: bool) {
        let expires_at = Utc::now() + chrono::Duration::from_std(TTL).unwrap_or_default();
        if typing {
            self.lock().insert((chat, user), (expires_at, true));
        } else {
            self.lock().remove(&(chat, user));
        }
        self.publish(ChatTyping {
            chat_id: chat,
            user_id: user,
            typing,
            expires_at,
        })
        .await;
    }

    async fn publish(&self, signal: ChatTyping) {
        let event = EventEnvelope {
            position: 0,
            id: Uuid::now_v7(),
            source: <crate::Chat as parley_kit::Domain>::NAME.to_string(),
            kind: ChatTyping::KIND.name.to_string(),
            aggregate_id: signal.chat_id.to_string(),
            occurred_at: Utc::now(),
            payload: serde_json::to_value(&signal).unwrap_or_default(),
        };
        if let Err(err) = self.bus.publish(&event).await {
            tracing::debug!(error = %err, "typing signal not published");
        }
    }

    /// Learns signals published by other instances (our own are already in the map).
    fn observe(&self, event: &EventEnvelope) {
        let Ok(Some(signal)) = event.decode::<ChatTyping>() else {
            return;
        };
        let mut entries = self.lock();
        let key = (signal.chat_id, signal.user_id);
        if !signal.typing {
            entries.remove(&key);
        } else if entries
            .get(&key)
            .is_none_or(|(until, _)| *until < signal.expires_at)
        {
            let mine = entries
                .get(&key)
                .is_some_and(|(until, mine)| *mine && *until == signal.expires_at);
            entries.insert(key, (signal.expires_at, mine));
        }
    }

    /// Drops expired signals and announces the end of the ones this instance published.
    async fn expire(&self) {
        let now = Utc::now();
        let ended: Vec<(Uuid, Uuid, bool)> = {
            let mut entries = self.lock();
            let ended: Vec<_> = entries
                .iter()
                .filter(|(_, (until, _))| *until <= now)
                .map(|((chat, user), (_, mine))| (*chat, *user, *mine))
                .collect();
            for (chat, user, _) in &ended {
                entries.remove(&(*chat, *user));
            }
            ended
        };
        for (chat, user, mine) in ended {
            if mine {
                self.publish(ChatTyping {
                    chat_id: chat,
                    user_id: user,
                    typing: false,
                    expires_at: now,
                })
                .await;
            }
        }
    }

    /// Users typing in `chat` now.
    pub fn in_chat(&self, chat: Uuid) -> Vec<Uuid> {
        let now = Utc::now();
        let mut users: Vec<Uuid> = self
            .lock()
            .iter()
            .filter(|((c, _), (until, _))| *c == chat && *until > now)
            .map(|((_, user), _)| *user)
            .collect();
        users.sort();
        users
    }
}
