//! The chat assistant: a member that answers through an OpenAI-compatible Chat Completions endpoint.
//!
//! It lives in chat, beside the messages it reads and writes: a message sent through this instance that is
//! for the assistant ([`context::addressed`]) starts an answer here, in the background, written through the
//! same service as everyone's messages. (A worker consuming chat's events would be a second process to run
//! and would read back what chat has in hand; see docs/architecture.md.) One answer per message: a
//! message is answered once, here or nowhere.
//!
//! An answer: the author's entitlement (`assistant`, the PRO plan), their rate and daily budget, then the
//! prompt ([`context::prompt`]); typing while it waits; at the first words a message (stored as `…`), the
//! text growing on the live streams as [`AssistantDraft`]s a few times a second; when the provider is done
//! the whole text is stored at once (a `MessageEdited`). A timeout or a provider error ends with a short
//! error message instead, never with part of an answer stored. Each ends with an [`AssistantAnswered`]
//! event (what it cost, or why not), which analytics counts.
//!
//! - [`completions`]: the streamed protocol; [`context`]: what it answers and reads; [`usage`]: limits.

pub mod completions;
pub mod context;
pub mod usage;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use parley_kit::assistant::{NICKNAME, USER_ID};
use parley_kit::events::contracts::{
    AssistantAnswered, AssistantDraft, ChatMessage, Event, MessageEdited,
};
use parley_kit::events::{append, EventEnvelope};
use parley_kit::store::begin_write;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use tokio::time::{timeout_at, Instant};
use uuid::Uuid;

use crate::error::Result;
use crate::service::{insert_message, member_of, payload, ChatService, NewMessage, MAX_TEXT};
use crate::settings::ChatSettings;
use crate::store::{chat, known_user, message};
use crate::typing::Typing;
use completions::{estimate_tokens, Completion, Endpoint, Failure, Piece, Prompt, Usage};
use context::Budget;

/// What the assistant says instead of an answer.
const NOT_ENTITLED: &str = "I answer members on the PRO plan. Upgrade your plan to talk with me.";
const RATE_LIMITED: &str = "That is a lot of questions at once. Ask me again in a minute.";
const BUDGET_SPENT: &str = "You have used today's assistant budget. Ask me again tomorrow.";
const TIMED_OUT: &str = "Sorry, I took too long to answer. Please ask again.";
const FAILED: &str = "Sorry, I could not answer just now. Please try again later.";

/// Answers written at once, at most (each holds a connection to the provider).
const CONCURRENT_ANSWERS: usize = 16;

pub struct Assistant {
    service: Arc<ChatService>,
    typing: Arc<Typing>,
    http: reqwest::Client,
    endpoint: Endpoint,
    system_prompt: String,
    budget: Budget,
    timeout: Duration,
    draft_every: Duration,
    daily_tokens: i64,
    limiter: usage::Limiter,
    /// Messages being answered now.
    answering: Mutex<HashSet<Uuid>>,
    permits: tokio::sync::Semaphore,
}

impl Assistant {
    /// The assistant `settings` describe, or `None` when no endpoint is set.
    pub fn new(
        settings: &ChatSettings,
        service: Arc<ChatService>,
        typing: Arc<Typing>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(url) = settings.assistant_url.clone() else {
            return Ok(None);
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Some(Arc::new(Self {
            service,
            typing,
            http,
            endpoint: Endpoint {
                url,
                model: settings.assistant_model.clone(),
                api_key: settings.assistant_api_key.clone(),
            },
            system_prompt: settings.assistant_system_prompt.clone(),
            budget: Budget {
                messages: settings.assistant_context_messages.max(1),
                tokens: settings.assistant_context_tokens,
            },
            timeout: Duration::from_millis(settings.assistant_timeout_ms),
            draft_every: Duration::from_millis(settings.assistant_edit_ms),
            daily_tokens: settings.assistant_daily_tokens as i64,
            limiter: usage::Limiter::new(settings.assistant_per_minute),
            answering: Mutex::new(HashSet::new()),
            permits: tokio::sync::Semaphore::new(CONCURRENT_ANSWERS),
        })))
    }

    /// A message was sent: answers it in the background if it is for the assistant.
    pub fn heard(self: &Arc<Self>, said: message::Model) {
        if said.author_id == USER_ID || said.kind != message::Kind::Text {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let id = said.id;
            if let Err(err) = this.respond(said).await {
                tracing::warn!(error = %err, message = %id, "the assistant could not answer");
            }
        });
    }

    async fn respond(&self, said: message::Model) -> Result<()> {
        let db = &self.service.db;
        // Only where it is a member.
        let Ok((chat, membership)) = member_of(db, said.chat_id, USER_ID).await else {
            return Ok(());
        };
        let nickname = known_user::Entity::find_by_id(USER_ID)
            .one(db)
            .await?
            .and_then(|u| u.nickname)
            .unwrap_or_else(|| NICKNAME.to_string());
        if !context::addressed(db, &chat, &said, &nickname).await? {
            return Ok(());
        }
        // Once per message: not while it is being answered (a retried send), nor after.
        if !self.lock().insert(said.id) {
            return Ok(());
        }
        let outcome = self.answer_once(&chat, &said, membership.joined_seq).await;
        self.lock().remove(&said.id);
        outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.answering.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn answer_once(
        &self,
        chat: &chat::Model,
        said: &message::Model,
        joined_seq: i64,
    ) -> Result<()> {
        let db = &self.service.db;
        let answered = message::Entity::find()
            .filter(message::Column::ChatId.eq(chat.id))
            .filter(message::Column::AuthorId.eq(USER_ID))
            .filter(message::Column::ReplyToId.eq(said.id))
            .one(db)
            .await?
            .is_some();
        if answered {
            return Ok(());
        }
        let user = said.author_id;
        if !parley_kit::entitlements::of(db, user).await?.assistant {
            return self.say(chat, said, NOT_ENTITLED, "NOT_ENTITLED").await;
        }
        if !self.limiter.allow(user) {
            return self.say(chat, said, RATE_LIMITED, "RATE_LIMITED").await;
        }
        let day = usage::today();
        if usage::spent(db, user, day).await? >= self.daily_tokens {
            return self.say(chat, said, BUDGET_SPENT, "BUDGET_SPENT").await;
        }
        let _permit = self.permits.acquire().await;
        let prompt =
            context::prompt(db, chat.id, joined_seq, &self.system_prompt, &self.budget).await?;
        self.typing.set(chat.id, USER_ID, true).await;
        let mut answer = Answer::default();
        let streamed = self.stream(chat, said, &prompt, &mut answer).await;
        self.typing.set(chat.id, USER_ID, false).await;
        let prompt_tokens = answer.usage.map_or_else(
            || prompt.iter().map(|p| estimate_tokens(&p.content)).sum(),
            |u| u.prompt_tokens,
        );
        let completion_tokens = answer
            .usage
            .map_or_else(|| estimate_tokens(&answer.text), |u| u.completion_tokens);
        let (text, outcome) = match streamed {
            Ok(()) if !answer.text.trim().is_empty() => {
                (answer.text.trim().to_string(), "ANSWERED")
            }
            Ok(()) => (FAILED.to_string(), "FAILED"),
            Err(failure) => {
                tracing::warn!(error = %failure, chat = %chat.id, "the assistant's provider failed");
                let text = match failure {
                    Failure::Timeout => TIMED_OUT,
                    Failure::Provider(_) => FAILED,
                };
                (text.to_string(), "FAILED")
            }
        };
        let cost = Cost {
            user,
            day,
            outcome,
            prompt_tokens,
            completion_tokens,
        };
        match answer.message {
            Some((stored, _)) => self.finish(stored, &text, cost).await,
            None => self.write(chat, said, &text, cost).await.map(|_| ()),
        }
    }

    /// Streams the provider's answer into `answer`: the message appears with the first words, and the
    /// text so far is shown every [`Self::draft_every`].
    async fn stream(
        &self,
        chat: &chat::Model,
        said: &message::Model,
        prompt: &[Prompt],
        answer: &mut Answer,
    ) -> std::result::Result<(), Failure> {
        let deadline = Instant::now() + self.timeout;
        let mut completion = timeout_at(
            deadline,
            Completion::start(&self.http, &self.endpoint, prompt),
        )
        .await
        .map_err(|_| Failure::Timeout)??;
        let mut shown = Instant::now();
        while let Some(piece) = timeout_at(deadline, completion.next())
            .await
            .map_err(|_| Failure::Timeout)??
        {
            match piece {
                Piece::Usage(usage) => answer.usage = Some(usage),
                Piece::Text(text) => {
                    answer.text.push_str(&text);
                    if answer.message.is_none() {
                        let begun = self
                            .begin(chat, said)
                            .await
                            .map_err(|e| Failure::Provider(format!("storing: {e}")))?;
                        answer.message = Some(begun);
                        self.typing.set(chat.id, USER_ID, false).await;
                    }
                    if shown.elapsed() >= self.draft_every {
                        shown = Instant::now();
                        if let Some((_, card)) = &answer.message {
                            self.draft(card, &answer.text).await;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The answer's message, stored as `…` until the whole text is in.
    async fn begin(
        &self,
        chat: &chat::Model,
        said: &message::Model,
    ) -> Result<(message::Model, ChatMessage)> {
        let txn = begin_write(&self.service.db).await?;
        let (chat, _) = member_of(&txn, chat.id, USER_ID).await?;
        let stored = insert_message(&txn, &chat, USER_ID, reply("…", said)).await?;
        txn.commit().await?;
        self.service.events.wake();
        let card = payload(&self.service.db, &stored).await?;
        Ok((stored, card))
    }

    /// Shows the text so far on the live streams (not stored).
    async fn draft(&self, card: &ChatMessage, text: &str) {
        let mut draft = card.clone();
        draft.text = Some(clip(text));
        let event = EventEnvelope {
            position: 0,
            id: Uuid::now_v7(),
            source: <crate::Chat as parley_kit::Domain>::NAME.to_string(),
            kind: AssistantDraft::KIND.name.to_string(),
            aggregate_id: draft.chat_id.to_string(),
            occurred_at: Utc::now(),
            payload: serde_json::to_value(AssistantDraft(draft)).unwrap_or_default(),
        };
        if let Err(err) = self.service.events.bus.publish(&event).await {
            tracing::debug!(error = %err, "assistant draft not published");
        }
    }

    /// Stores the whole text of a begun answer (or the error that ended it), with what it cost.
    async fn finish(&self, stored: message::Model, text: &str, cost: Cost) -> Result<()> {
        let txn = begin_write(&self.service.db).await?;
        let chat_id = stored.chat_id;
        let message_id = stored.id;
        let mut active: message::ActiveModel = stored.into();
        active.text = Set(Some(clip(text)));
        let done = active.update(&txn).await?;
        append(&txn, chat_id, &MessageEdited(payload(&txn, &done).await?)).await?;
        cost.record(&txn, chat_id, message_id).await?;
        txn.commit().await?;
        self.service.events.wake();
        Ok(())
    }

    /// A message that is not an answer: the reason there is none.
    async fn say(
        &self,
        chat: &chat::Model,
        said: &message::Model,
        text: &str,
        outcome: &'static str,
    ) -> Result<()> {
        let cost = Cost {
            user: said.author_id,
            day: usage::today(),
            outcome,
            prompt_tokens: 0,
            completion_tokens: 0,
        };
        self.write(chat, said, text, cost).await.map(|_| ())
    }

    /// Writes `text` as the assistant's reply to `said` in one go, with what it cost.
    async fn write(
        &self,
        chat: &chat::Model,
        said: &message::Model,
        text: &str,
        cost: Cost,
    ) -> Result<message::Model> {
        let txn = begin_write(&self.service.db).await?;
        let (chat, _) = member_of(&txn, chat.id, USER_ID).await?;
        let stored = insert_message(&txn, &chat, USER_ID, reply(text, said)).await?;
        cost.record(&txn, chat.id, stored.id).await?;
        txn.commit().await?;
        self.service.events.wake();
        Ok(stored)
    }
}

/// An answer as it is streamed: its message once begun (with its live form), the text so far, the usage.
#[derive(Default)]
struct Answer {
    message: Option<(message::Model, ChatMessage)>,
    text: String,
    usage: Option<Usage>,
}

/// What one answer (or refusal) cost whom.
struct Cost {
    user: Uuid,
    day: i64,
    outcome: &'static str,
    prompt_tokens: i64,
    completion_tokens: i64,
}

impl Cost {
    /// Counts it against the user's day and says so in an event, in `txn`.
    async fn record(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        chat_id: Uuid,
        message_id: Uuid,
    ) -> Result<()> {
        let tokens = self.prompt_tokens + self.completion_tokens;
        if tokens > 0 {
            usage::record(txn, self.user, self.day, tokens).await?;
        }
        let event = AssistantAnswered {
            user_id: self.user,
            chat_id,
            message_id,
            outcome: self.outcome.to_string(),
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
        };
        append(txn, chat_id, &event).await?;
        Ok(())
    }
}

/// A text message replying to `said`.
fn reply(text: &str, said: &message::Model) -> NewMessage {
    NewMessage {
        kind: message::Kind::Text,
        text: Some(clip(text)),
        media_id: None,
        reply_to_id: Some(said.id),
        subject_id: None,
        client_message_id: None,
    }
}

/// At most a message's length.
fn clip(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}
