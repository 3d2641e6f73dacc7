//! Consumers: a domain's [`Handler`] of the events it declares, and the pull consumers of other subgraphs'
//! event feeds.
//!
//! Events are applied in one transaction together with their inbox rows (their ids) and the new feed
//! position, so a crash between "applied" and "recorded" cannot happen and a redelivered event is skipped.
//! [`apply_batch`] (a whole batch per transaction) and [`apply`] (one event) are shared with the Redis
//! consumer groups. An event whose payload does not decode would fail on every retry: it is set aside as a
//! dead letter ([`dead_letter`]) and the events behind it go on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, Set,
};
use uuid::Uuid;

use super::contracts::{Consumed, DecodeError};
use super::tables::{dead_letter as dead_letters, feed_position, inbox};
use super::EventEnvelope;
use crate::config::EventSource;
use crate::store::begin_write;

/// Why an event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The payload is not what its kind names: retrying cannot help.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("store error: {0}")]
    Store(#[from] DbErr),
}

impl HandleError {
    /// Whether the failure is the consuming store's, not the event's (unreachable, restarting, busy,
    /// a conflict with a concurrent transaction): the event is retried with backoff for as long as that
    /// lasts, never counted towards dead-lettering — a short outage must not drop a `UserBlocked`.
    pub fn is_transient(&self) -> bool {
        match self {
            HandleError::Decode(_) => false,
            HandleError::Store(error) => store_unavailable(error),
        }
    }
}

/// Whether `error` says the store could not be used at all (rather than that this statement failed).
pub fn store_unavailable(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::RuntimeErr;
    let runtime = match error {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return false;
    };
    match sqlx.as_ref() {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::Protocol(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::BeginFailed => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL: connection exceptions (08…), insufficient resources (53…), shutting down or
            // starting up (57P01–57P03), serialization failures and deadlocks (40001, 40P01); SQLite:
            // busy or locked (5, 6).
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "5" | "6"
                )
        }),
        _ => false,
    }
}

/// A consumer's count of failed attempts: per event for failures of the event's own (dead-lettered after
/// `max`), and a streak of transient ones that only sets the backoff.
#[derive(Debug, Default)]
pub struct Attempts {
    per_event: HashMap<String, u32>,
    transient_streak: u32,
}

/// What to do after a failed attempt at an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Try the same event again after this long (nothing newer goes first).
    Retry(Duration),
    /// Set it aside: it failed `max` times for its own reason, or can never apply.
    DeadLetter,
}

impl Attempts {
    /// Records a failure of event `id` and says what to do.
    pub fn failed(&mut self, id: &str, error: &HandleError, max: u32) -> Verdict {
        if error.is_transient() {
            self.transient_streak = self.transient_streak.saturating_add(1);
            let delay =
                Duration::from_millis(200) * 2u32.saturating_pow(self.transient_streak.min(5));
            return Verdict::Retry(delay.min(Duration::from_secs(5)));
        }
        self.transient_streak = 0;
        if matches!(error, HandleError::Decode(_)) {
            self.per_event.remove(id);
            return Verdict::DeadLetter;
        }
        let count = self.per_event.entry(id.to_string()).or_insert(0);
        *count += 1;
        if *count >= max {
            self.per_event.remove(id);
            Verdict::DeadLetter
        } else {
            Verdict::Retry(Duration::from_millis(200))
        }
    }

    /// `id` went through (or was set aside).
    pub fn done(&mut self, id: &str) {
        self.per_event.remove(id);
        self.transient_streak = 0;
    }
}

/// A domain's reaction to the events of other domains, typed: `Event` is the one enum of what it applies
/// (declared with [`crate::consumed!`]); the registry subscribes the domain to exactly those kinds.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    type Event: Consumed;

    /// Runs first in every transaction that applies events, once per batch, before the inbox is read: a
    /// handler whose transactions must not interleave takes its lock here. Nothing by default.
    async fn begin(&self, _txn: &DatabaseTransaction) -> Result<(), DbErr> {
        Ok(())
    }

    /// Applies `event` inside `txn`.
    async fn apply(&self, txn: &DatabaseTransaction, event: Self::Event) -> Result<(), DbErr>;

    /// Called after a transaction that applied events committed (search wakes its index here).
    fn committed(&self) {}
}

/// The handler of a domain that consumes no events.
pub struct NoHandler;

#[async_trait]
impl Handler for NoHandler {
    type Event = super::contracts::NoEvents;

    async fn apply(&self, _: &DatabaseTransaction, event: Self::Event) -> Result<(), DbErr> {
        match event {}
    }
}

/// What the consumers drive: any envelope in, whether it concerned the domain out. Every [`Handler`] is one
/// (events of other kinds are not its concern); tests implement it directly.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// See [`Handler::begin`].
    async fn begin(&self, _txn: &DatabaseTransaction) -> Result<(), DbErr> {
        Ok(())
    }

    /// Applies `event` inside `txn`. Returns whether the event concerned this domain (only those are
    /// remembered in the inbox).
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &EventEnvelope,
    ) -> Result<bool, HandleError>;

    /// The consuming subgraph, for the `consumer` label of the event metrics (several subgraphs can share
    /// one process, and so one metrics recorder). Empty unless named ([`Named`]).
    fn consumer(&self) -> &str {
        ""
    }

    /// Called after a transaction that applied events committed: a handler that wrote events of its own
    /// (notifications does) wakes its relay here, so they go out now rather than at the relay's next poll.
    fn committed(&self) {}
}

/// A handler, the subgraph it consumes for, and that subgraph's events (what the runtime gives the consumers).
pub struct Named {
    pub consumer: String,
    pub handler: Arc<dyn EventHandler>,
    pub events: super::Events,
}

#[async_trait]
impl EventHandler for Named {
    async fn begin(&self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        self.handler.begin(txn).await
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &EventEnvelope,
    ) -> Result<bool, HandleError> {
        self.handler.handle(txn, event).await
    }

    fn consumer(&self) -> &str {
        &self.consumer
    }

    fn committed(&self) {
        self.events.wake();
        self.handler.committed();
    }
}

#[async_trait]
impl<H: Handler> EventHandler for H {
    async fn begin(&self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        Handler::begin(self, txn).await
    }

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &EventEnvelope,
    ) -> Result<bool, HandleError> {
        let Some(event) = H::Event::decode(event)? else {
            return Ok(false);
        };
        self.apply(txn, event).await?;
        Ok(true)
    }

    fn committed(&self) {
        Handler::committed(self);
    }
}

const LONG_POLL_MS: u64 = 20_000;

/// Starts one consumer task per source.
pub fn spawn_consumers(
    db: DatabaseConnection,
    sources: &[EventSource],
    handler: Arc<dyn EventHandler>,
    router_key: Option<&str>,
    max_failures: u32,
) -> Vec<tokio::task::JoinHandle<()>> {
    // The feeds answer only holders of the shared key.
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = router_key.and_then(|key| reqwest::header::HeaderValue::from_str(key).ok())
    {
        headers.insert(parley_protocol::headers::ROUTER_KEY, value);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(LONG_POLL_MS + 10_000))
        .default_headers(headers)
        .build()
        .unwrap_or_default();
    sources
        .iter()
        .cloned()
        .map(|source| {
            let (db, handler, http) = (db.clone(), handler.clone(), http.clone());
            tokio::spawn(async move { consume(db, source, handler, http, max_failures).await })
        })
        .collect()
}

async fn consume(
    db: DatabaseConnection,
    source: EventSource,
    handler: Arc<dyn EventHandler>,
    http: reqwest::Client,
    max_failures: u32,
) {
    let mut backoff = Duration::from_millis(100);
    let mut attempts = Attempts::default();
    loop {
        match poll_once(
            &db,
            &source,
            handler.as_ref(),
            &http,
            &mut attempts,
            max_failures,
        )
        .await
        {
            Ok(None) => backoff = Duration::from_millis(100),
            // An event did not apply: the same batch again after the verdict's delay.
            Ok(Some(delay)) => tokio::time::sleep(delay).await,
            Err(err) => {
                tracing::debug!(source = %source.name, error = %err, "event feed unavailable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
        }
    }
}

/// One pull and its batch: `Ok(Some(delay))` when an event has to be tried again after `delay`.
async fn poll_once(
    db: &DatabaseConnection,
    source: &EventSource,
    handler: &dyn EventHandler,
    http: &reqwest::Client,
    attempts: &mut Attempts,
    max_failures: u32,
) -> anyhow::Result<Option<Duration>> {
    let after = feed_position::Entity::find_by_id(source.name.clone())
        .one(db)
        .await?
        .map_or(0, |row| row.position);
    let url = format!(
        "{}/events?after={after}&limit=200&wait_ms={LONG_POLL_MS}",
        source.url
    );
    let events: Vec<EventEnvelope> = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    match apply_batch(db, &source.name, handler, &events, attempts, max_failures).await {
        Ok(()) => Ok(None),
        Err(Stalled(delay)) => Ok(Some(delay)),
    }
}

/// The batch stopped at an event to try again after this long.
#[derive(Debug)]
pub struct Stalled(pub Duration);

/// Applies a batch exactly once, in one transaction when it can (one commit instead of one per event); when
/// that fails, event by event, so a failing event is found and the ones before it still land. A failing
/// event stops the batch (nothing newer goes first) and is retried: with backoff and uncounted while the
/// store is unavailable, and set aside as a dead letter once it failed `max_failures` times for its own
/// reason (at once when it does not decode).
pub async fn apply_batch(
    db: &DatabaseConnection,
    source: &str,
    handler: &dyn EventHandler,
    events: &[EventEnvelope],
    attempts: &mut Attempts,
    max_failures: u32,
) -> Result<(), Stalled> {
    if events.len() > 1 && apply_batch_only(db, source, handler, events).await.is_ok() {
        attempts.done("");
        return Ok(());
    }
    for event in events {
        let id = event.id.to_string();
        let error = match apply(db, source, handler, event).await {
            Ok(()) => {
                attempts.done(&id);
                continue;
            }
            Err(error) => error,
        };
        match attempts.failed(&id, &error, max_failures) {
            Verdict::Retry(delay) => {
                tracing::warn!(%source, kind = %event.kind, id = %event.id, %error, transient = error.is_transient(), "event not applied; will retry");
                return Err(Stalled(delay));
            }
            Verdict::DeadLetter => {
                if dead_letter(db, source, handler.consumer(), event, &error)
                    .await
                    .is_err()
                {
                    return Err(Stalled(Duration::from_secs(1)));
                }
            }
        }
    }
    Ok(())
}

/// Sets `event` aside in the dead-letter table and moves the position past it, in one transaction.
pub async fn dead_letter(
    db: &DatabaseConnection,
    source: &str,
    consumer: &str,
    event: &EventEnvelope,
    error: &(dyn std::fmt::Display + Sync),
) -> Result<(), DbErr> {
    tracing::error!(%source, kind = %event.kind, id = %event.id, %error, "event set aside; dead-lettered");
    let txn = begin_write(db).await?;
    dead_letters::Entity::insert(dead_letters::ActiveModel {
        event_id: Set(event.id),
        source: Set(source.to_string()),
        position: Set(event.position),
        kind: Set(event.kind.clone()),
        payload: Set(event.payload.to_string()),
        error: Set(error.to_string()),
        failed_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing_on([dead_letters::Column::EventId])
    .exec(&txn)
    .await?;
    save_position(&txn, source, event.position).await?;
    txn.commit().await?;
    metrics::counter!("parley_events_dead_lettered_total", "source" => source.to_string(), "consumer" => consumer.to_string())
        .increment(1);
    Ok(())
}

/// The batch in one transaction: handler, inbox rows and position, all or nothing.
pub async fn apply_batch_only(
    db: &DatabaseConnection,
    source: &str,
    handler: &dyn EventHandler,
    events: &[EventEnvelope],
) -> Result<(), HandleError> {
    let Some(position) = events.iter().map(|e| e.position).max() else {
        return Ok(());
    };
    let txn = begin_write(db).await?;
    handler.begin(&txn).await?;
    // Ids applied before, and (as the loop goes) in this batch: a relay retry can repeat an event.
    let mut seen: HashSet<Uuid> = inbox::Entity::find()
        .filter(inbox::Column::EventId.is_in(events.iter().map(|e| e.id)))
        .all(&txn)
        .await?
        .into_iter()
        .map(|row| row.event_id)
        .collect();
    let mut applied = Vec::new();
    for event in events {
        if seen.insert(event.id) && handler.handle(&txn, event).await? {
            applied.push(inbox::ActiveModel {
                event_id: Set(event.id),
                applied_at: Set(Utc::now()),
            });
        }
    }
    if !applied.is_empty() {
        inbox::Entity::insert_many(applied).exec(&txn).await?;
    }
    save_position(&txn, source, position).await?;
    txn.commit().await?;
    handler.committed();
    metrics::counter!("parley_events_consumed_total", "source" => source.to_string(), "consumer" => handler.consumer().to_string())
        .increment(events.len() as u64);
    Ok(())
}

async fn save_position(
    txn: &DatabaseTransaction,
    source: &str,
    position: i64,
) -> Result<(), DbErr> {
    let row = feed_position::ActiveModel {
        source: Set(source.to_string()),
        position: Set(position),
    };
    feed_position::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(feed_position::Column::Source)
                .update_column(feed_position::Column::Position)
                .to_owned(),
        )
        .exec(txn)
        .await?;
    Ok(())
}

/// Applies one event exactly once: handler + inbox + position in one transaction.
pub async fn apply(
    db: &DatabaseConnection,
    source: &str,
    handler: &dyn EventHandler,
    event: &EventEnvelope,
) -> Result<(), HandleError> {
    let txn = begin_write(db).await?;
    handler.begin(&txn).await?;
    let seen = inbox::Entity::find_by_id(event.id)
        .one(&txn)
        .await?
        .is_some();
    if !seen && handler.handle(&txn, event).await? {
        inbox::ActiveModel {
            event_id: Set(event.id),
            applied_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
    }
    save_position(&txn, source, event.position).await?;
    txn.commit().await?;
    handler.committed();
    metrics::counter!("parley_events_consumed_total", "source" => source.to_string(), "consumer" => handler.consumer().to_string())
        .increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::testing::{temp_dir, tick, EventTables};

    /// Remembers what the consumer called, in order: `begin`, or the position handled.
    #[derive(Default)]
    struct Calls(Mutex<Vec<String>>);

    #[async_trait]
    impl EventHandler for Calls {
        async fn begin(&self, _txn: &DatabaseTransaction) -> Result<(), DbErr> {
            self.0.lock().expect("lock").push("begin".into());
            Ok(())
        }

        async fn handle(
            &self,
            _txn: &DatabaseTransaction,
            event: &EventEnvelope,
        ) -> Result<bool, HandleError> {
            self.0
                .lock()
                .expect("lock")
                .push(event.position.to_string());
            Ok(true)
        }
    }

    /// Applies ticks, remembering their numbers.
    #[derive(Default)]
    struct Ticks(Mutex<Vec<i64>>);

    #[derive(Debug)]
    struct TickEvent(crate::testing::Tick);

    impl Consumed for TickEvent {
        const KINDS: &'static [super::super::EventKind] =
            &[<crate::testing::Tick as super::super::Event>::KIND];
        fn decode(envelope: &EventEnvelope) -> Result<Option<Self>, DecodeError> {
            Ok(envelope.decode::<crate::testing::Tick>()?.map(TickEvent))
        }
    }

    #[async_trait]
    impl Handler for Ticks {
        type Event = TickEvent;
        async fn apply(&self, _: &DatabaseTransaction, event: TickEvent) -> Result<(), DbErr> {
            self.0.lock().expect("lock").push(event.0.n);
            Ok(())
        }
    }

    /// A payload that does not decode is set aside, and the events behind it still land (in a batch and
    /// one by one alike), instead of the consumer retrying it for ever.
    #[tokio::test]
    async fn an_event_that_does_not_decode_is_dead_lettered_and_the_rest_go_on() {
        let dir = temp_dir("consumer-dead");
        let url = format!("sqlite://{}?mode=rwc", dir.join("c.db").display());
        let db = crate::store::connect_url::<EventTables>(&url, 2)
            .await
            .expect("store");
        let mut poison = tick(2);
        poison.payload = serde_json::json!({ "n": "two" });
        let handler = Ticks::default();
        let (first, last) = (tick(1), tick(3));
        let batch = [first.clone(), poison.clone(), last.clone()];
        apply_batch(
            &db,
            "producer",
            &handler,
            &batch,
            &mut Attempts::default(),
            5,
        )
        .await
        .expect("batch goes on");
        // (The batch's own transaction was tried first and rolled back: the handler saw 1 twice.)
        assert_eq!(*handler.0.lock().expect("lock"), [1, 1, 3]);
        let applied: HashSet<Uuid> = inbox::Entity::find()
            .all(&db)
            .await
            .expect("read")
            .into_iter()
            .map(|row| row.event_id)
            .collect();
        assert_eq!(applied, HashSet::from([first.id, last.id]));
        let dead = dead_letters::Entity::find().all(&db).await.expect("read");
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].event_id, dead[0].position), (poison.id, 2));
        assert!(
            dead[0].error.contains("bad Tick payload"),
            "{}",
            dead[0].error
        );
        let position = feed_position::Entity::find_by_id("producer".to_string())
            .one(&db)
            .await
            .expect("read")
            .map(|row| row.position);
        assert_eq!(position, Some(3), "the consumer moved past it");
    }

    #[tokio::test]
    async fn begin_opens_each_transaction_once_before_its_events() {
        let dir = temp_dir("consumer-begin");
        let url = format!("sqlite://{}?mode=rwc", dir.join("c.db").display());
        let db = crate::store::connect_url::<EventTables>(&url, 2)
            .await
            .expect("store");
        let calls = Calls::default();
        let batch = [tick(1), tick(2), tick(3)];
        apply_batch(&db, "producer", &calls, &batch, &mut Attempts::default(), 5)
            .await
            .expect("batch");
        apply(&db, "producer", &calls, &tick(4)).await.expect("one");
        assert_eq!(
            *calls.0.lock().expect("lock"),
            ["begin", "1", "2", "3", "begin", "4"]
        );
    }

    #[test]
    fn outages_are_retried_uncounted_and_own_failures_dead_lettered() {
        let mut attempts = Attempts::default();
        let down = HandleError::Store(DbErr::ConnectionAcquire(
            sea_orm::error::ConnAcquireErr::Timeout,
        ));
        for _ in 0..50 {
            assert!(matches!(attempts.failed("e", &down, 3), Verdict::Retry(_)));
        }
        let poison = HandleError::Store(DbErr::Custom("constraint".into()));
        assert!(!poison.is_transient());
        assert!(matches!(
            attempts.failed("e", &poison, 3),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            attempts.failed("e", &poison, 3),
            Verdict::Retry(_)
        ));
        assert_eq!(attempts.failed("e", &poison, 3), Verdict::DeadLetter);
        let undecodable = HandleError::Decode(DecodeError {
            kind: "Tick".into(),
            reason: "bad".into(),
        });
        assert_eq!(attempts.failed("f", &undecodable, 3), Verdict::DeadLetter);
    }
}
