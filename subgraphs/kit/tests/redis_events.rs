//! The Redis Streams bus against a real `redis-server` of the test's own: consumer groups apply every event
//! once and in order even when the consumer holding a batch dies in the middle of it, a poison event is dead-lettered
//! without stopping the ones after it, and every instance's live tail sees every instance's events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use parley_kit::events::group::{dead_letter_key, GroupConsumer};
use parley_kit::events::redis_bus::RedisBus;
use parley_kit::events::{EventBus, EventEnvelope, EventHandler, HandleError};
use parley_kit::lease::Leadership;
use parley_kit::testing::{
    fresh_postgres_db, temp_dir, tick, EventTables, PostgresServer, RedisServer,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, Statement};

/// A consumer's store: the kit's tables and `applied`, the handler's effect (written in the event's
/// transaction, so it is exactly as durable as a real projection).
async fn store() -> DatabaseConnection {
    let dir = temp_dir("redis-events");
    let url = format!("sqlite://{}?mode=rwc", dir.join("consumer.db").display());
    let db = parley_kit::store::connect_url::<EventTables>(&url, 4)
        .await
        .expect("store");
    db.execute_unprepared(
        "CREATE TABLE applied (seq INTEGER PRIMARY KEY AUTOINCREMENT, position INTEGER NOT NULL)",
    )
    .await
    .expect("applied table");
    db
}

/// The positions applied, in the order they were.
async fn applied(db: &DatabaseConnection) -> Vec<i64> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT position FROM applied ORDER BY seq",
    ))
    .await
    .expect("applied rows")
    .iter()
    .map(|row| row.try_get::<i64>("", "position").expect("position"))
    .collect()
}

/// Writes each position into `applied`; hangs forever on `hang_at`, fails on `fail_at`; remembers every
/// position it was handed (`reached`), committed or not.
#[derive(Default)]
struct Recorder {
    reached: Mutex<Vec<i64>>,
    hang_at: Option<i64>,
    fail_at: Option<i64>,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &EventEnvelope,
    ) -> Result<bool, HandleError> {
        self.reached.lock().expect("lock").push(event.position);
        if Some(event.position) == self.hang_at {
            std::future::pending::<()>().await;
        }
        if Some(event.position) == self.fail_at {
            return Err(DbErr::Custom("poison".into()).into());
        }
        txn.execute_unprepared(&format!(
            "INSERT INTO applied (position) VALUES ({})",
            event.position
        ))
        .await?;
        Ok(true)
    }
}

fn consumer(bus: &RedisBus, name: &str, max_deliveries: u32) -> GroupConsumer {
    GroupConsumer {
        client: bus.client.clone(),
        conn: bus.conn.clone(),
        source: "producer".into(),
        group: "reader".into(),
        consumer: name.into(),
        claim_after: Duration::from_millis(600),
        max_deliveries,
    }
}

/// Runs `consumer` under the group's lease, as the runtime does.
fn spawn(
    bus: &RedisBus,
    consumer: GroupConsumer,
    db: DatabaseConnection,
    handler: Arc<Recorder>,
) -> tokio::task::JoinHandle<()> {
    let leadership = Leadership::Redis {
        conn: bus.conn.clone(),
        instance: consumer.consumer.clone(),
        ttl: Duration::from_millis(600),
    };
    tokio::spawn(async move {
        leadership
            .run("consume:reader:producer", || {
                consumer
                    .clone()
                    .run(db.clone(), handler.clone() as Arc<dyn EventHandler>)
            })
            .await;
    })
}

async fn eventually_applied(db: &DatabaseConnection, count: usize) {
    for _ in 0..200 {
        if applied(db).await.len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {count} applied events");
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_consumer_killed_mid_batch_loses_nothing_and_applies_nothing_twice() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let bus = RedisBus::connect(&redis.url(), "producer", 10_000)
        .await
        .expect("bus");
    let db = store().await;

    // Instance A applies a first batch, then takes the next one and dies while applying its first event.
    let a = Arc::new(Recorder {
        hang_at: Some(10),
        ..Default::default()
    });
    let task_a = spawn(&bus, consumer(&bus, "a", 5), db.clone(), a.clone());
    for position in 1..=9 {
        bus.publish(&tick(position)).await.expect("publish");
    }
    eventually_applied(&db, 9).await;
    for position in 10..=30 {
        bus.publish(&tick(position)).await.expect("publish");
    }
    wait_for("A to take the second batch", || {
        a.reached.lock().expect("lock").contains(&10)
    })
    .await;
    task_a.abort();

    // Instance B takes the lease once A's has run out and re-claims what A held.
    let b = Arc::new(Recorder::default());
    let task_b = spawn(&bus, consumer(&bus, "b", 5), db.clone(), b.clone());
    eventually_applied(&db, 30).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    task_b.abort();
    assert_eq!(
        applied(&db).await,
        (1..=30).collect::<Vec<_>>(),
        "each once, in order"
    );
    assert_eq!(
        b.reached.lock().expect("lock").first(),
        Some(&10),
        "B began where A died"
    );

    // Nothing is left pending in the group.
    let mut conn = bus.conn.clone();
    let pending: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg("parley:events:producer")
        .arg("reader")
        .query_async(&mut conn)
        .await
        .expect("xpending");
    assert_eq!(
        redis::from_redis_value_ref::<i64>(&pending[0]).expect("count"),
        0
    );
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_and_the_rest_go_on() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let bus = RedisBus::connect(&redis.url(), "producer", 10_000)
        .await
        .expect("bus");
    for position in 1..=5 {
        bus.publish(&tick(position)).await.expect("publish");
    }
    let db = store().await;
    let handler = Arc::new(Recorder {
        fail_at: Some(3),
        ..Default::default()
    });
    let task = spawn(&bus, consumer(&bus, "only", 3), db.clone(), handler.clone());
    eventually_applied(&db, 4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    assert_eq!(applied(&db).await, vec![1, 2, 4, 5]);

    let mut conn = bus.conn.clone();
    let dead: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(dead_letter_key("producer", "reader"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("xrange");
    assert_eq!(dead.len(), 1, "one dead letter");
    let fields = &dead[0].1;
    let body = &fields[fields
        .iter()
        .position(|f| f == "event")
        .expect("event field")
        + 1];
    let poisoned: EventEnvelope = serde_json::from_str(body).expect("envelope");
    assert_eq!(poisoned.position, 3);
    assert!(fields.iter().any(|f| f.contains("poison")), "{fields:?}");
}

#[tokio::test]
async fn every_instance_sees_every_instances_events_live() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let one = RedisBus::connect(&redis.url(), "chat", 10_000)
        .await
        .expect("bus one");
    let two = RedisBus::connect(&redis.url(), "chat", 10_000)
        .await
        .expect("bus two");
    let mut on_two = two.subscribe();
    let mut on_one = one.subscribe();
    let sent = tick(1);
    one.publish(&sent).await.expect("publish");
    let got = tokio::time::timeout(Duration::from_secs(5), on_two.recv())
        .await
        .expect("in time")
        .expect("event");
    assert_eq!(got, sent);
    let own = tokio::time::timeout(Duration::from_secs(5), on_one.recv())
        .await
        .expect("in time")
        .expect("event");
    assert_eq!(own.id, sent.id);
}

/// The consuming subgraph's PostgreSQL goes away for longer than the retries would last: nothing is
/// dead-lettered, and every event is applied, once and in order, when it is back.
#[tokio::test]
async fn a_store_outage_longer_than_the_retries_loses_nothing() {
    let (Some(redis), Some(pg)) = (RedisServer::start(), PostgresServer::start()) else {
        return;
    };
    let bus = RedisBus::connect(&redis.url(), "producer", 10_000)
        .await
        .expect("bus");
    let url = fresh_postgres_db(&pg.url(), "outage").await;
    let db = parley_kit::store::connect_url::<EventTables>(&url, 4)
        .await
        .expect("store");
    db.execute_unprepared(
        "CREATE TABLE applied (seq SERIAL PRIMARY KEY, position BIGINT NOT NULL)",
    )
    .await
    .expect("applied table");
    let handler = Arc::new(Recorder::default());
    let task = spawn(&bus, consumer(&bus, "only", 3), db.clone(), handler.clone());
    for position in 1..=3 {
        bus.publish(&tick(position)).await.expect("publish");
    }
    eventually_applied(&db, 3).await;

    pg.stop().expect("stop PostgreSQL");
    for position in 4..=8 {
        bus.publish(&tick(position)).await.expect("publish");
    }
    // Three deliveries would be spent in well under a second; the outage lasts four.
    tokio::time::sleep(Duration::from_secs(4)).await;
    pg.resume().expect("start PostgreSQL again");
    for _ in 0..300 {
        if applied(&db).await.len() >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.abort();
    assert_eq!(applied(&db).await, (1..=8).collect::<Vec<_>>());
    let mut conn = bus.conn.clone();
    let dead: i64 = redis::cmd("XLEN")
        .arg(dead_letter_key("producer", "reader"))
        .query_async(&mut conn)
        .await
        .expect("xlen");
    assert_eq!(dead, 0, "nothing dead-lettered for an outage");
}

/// Trimming never takes an entry a consumer group has not acknowledged, however far past the length
/// budget the stream grows; once the group has read and acknowledged everything, the stream shrinks.
#[tokio::test]
async fn trimming_waits_for_the_slowest_group() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let bus = RedisBus::connect(&redis.url(), "producer", 10)
        .await
        .expect("bus");
    // The group exists (its consumer started once, say) but reads nothing for now.
    let mut conn = bus.conn.clone();
    let _: String = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("parley:events:producer")
        .arg("reader")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .expect("group");
    for position in 1..=50 {
        bus.publish(&tick(position)).await.expect("publish");
    }
    assert_eq!(
        bus.trim().await.expect("trim"),
        50,
        "nothing read, nothing cut"
    );

    let db = store().await;
    let handler = Arc::new(Recorder::default());
    let task = spawn(&bus, consumer(&bus, "only", 3), db.clone(), handler.clone());
    eventually_applied(&db, 50).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    assert_eq!(applied(&db).await, (1..=50).collect::<Vec<_>>());
    let left = bus.trim().await.expect("trim");
    assert!(left <= 1, "acknowledged entries are trimmed: {left} left");
}
