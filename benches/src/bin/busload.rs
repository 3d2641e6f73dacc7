//! The Redis Streams event bus, measured with the kit's own relay and consumer group on a real Redis:
//! 1. end to end (outbox rows → relay → stream → consumer group → applied with its inbox row): events/s;
//! 2. redelivery: a consumer dies holding a batch; time until another instance has applied the first held event;
//! 3. live fan-out across instances: publish on instance 1, receive on instance 2's tail; latency percentiles.
//!
//! `busload --redis-url redis://127.0.0.1:6379 [--postgres postgres://…/postgres] [--events 20000]`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use parley_bench::Samples;
use parley_kit::events::group::GroupConsumer;
use parley_kit::events::redis_bus::RedisBus;
use parley_kit::events::{
    append, relay, Event, EventBus, EventEnvelope, EventHandler, EventKind, HandleError,
};
use parley_kit::lease::Leadership;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};

#[derive(Parser)]
struct Args {
    #[arg(long, env = "PARLEY_TEST_REDIS_URL")]
    redis_url: String,
    /// A PostgreSQL admin URL: producer and consumer stores become fresh databases there (default SQLite).
    #[arg(long)]
    postgres: Option<String>,
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Lease/claim time for the redelivery measurement.
    #[arg(long, default_value_t = 2_000)]
    takeover_ms: u64,
    /// Live messages per second across instances (for 10 s).
    #[arg(long, default_value_t = 500)]
    live_rate: u64,
}

/// Only the kit's own tables (the outbox, inbox and positions).
type Tables = parley_kit::events::NoTables;

async fn store(args: &Args, label: &str) -> anyhow::Result<DatabaseConnection> {
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let url = match &args.postgres {
        Some(admin) => {
            let db = sea_orm::Database::connect(admin).await?;
            let name = format!("busload_{label}_{suffix}");
            db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await?;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
        None => {
            let dir = std::env::temp_dir().join(format!("parley-busload-{suffix}"));
            std::fs::create_dir_all(&dir)?;
            format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{label}.db")).display()
            )
        }
    };
    Ok(parley_kit::store::connect_url::<Tables>(&url, 10).await?)
}

/// The benchmark's event.
#[derive(serde::Serialize, serde::Deserialize)]
struct Tick {
    i: u64,
}

impl Event for Tick {
    const KIND: EventKind = EventKind {
        name: "Tick",
        source: "bench",
    };
}

/// Counts applied events; can hang on one (a consumer that dies mid-batch).
struct Counter {
    applied: AtomicU64,
    hang_on_first: bool,
    first_at: std::sync::Mutex<Option<Instant>>,
}

#[async_trait]
impl EventHandler for Counter {
    async fn handle(
        &self,
        _: &DatabaseTransaction,
        _: &EventEnvelope,
    ) -> Result<bool, HandleError> {
        if self.hang_on_first {
            std::future::pending::<()>().await;
        }
        let mut first = self.first_at.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(Instant::now);
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(true)
    }
}

fn counter(hang_on_first: bool) -> Arc<Counter> {
    Arc::new(Counter {
        applied: AtomicU64::new(0),
        hang_on_first,
        first_at: std::sync::Mutex::new(None),
    })
}

fn leadership(bus: &RedisBus, instance: &str, ttl: Duration) -> Leadership {
    Leadership::Redis {
        conn: bus.conn.clone(),
        instance: instance.to_string(),
        ttl,
    }
}

/// One instance's consumer of `source` in group `bench`, run under lease `lease` as the runtime does.
fn spawn_group(
    bus: &RedisBus,
    source: &str,
    instance: &str,
    ttl: Duration,
    lease: String,
    db: DatabaseConnection,
    handler: Arc<Counter>,
) -> tokio::task::JoinHandle<()> {
    let consumer = GroupConsumer {
        client: bus.client.clone(),
        conn: bus.conn.clone(),
        source: source.to_string(),
        group: "bench".into(),
        consumer: instance.to_string(),
        claim_after: ttl,
        max_deliveries: 5,
    };
    let leadership = leadership(bus, instance, ttl);
    tokio::spawn(async move {
        leadership
            .run(&lease, || {
                consumer
                    .clone()
                    .run(db.clone(), handler.clone() as Arc<dyn EventHandler>)
            })
            .await;
    })
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Outbox → relay → Redis → group → applied.
async fn end_to_end(args: &Args) -> anyhow::Result<()> {
    let source = format!("bench{}", uuid::Uuid::now_v7().simple());
    let producer = store(args, "producer").await?;
    let consumer_db = store(args, "consumer").await?;
    let bus = RedisBus::connect(&args.redis_url, &source, 1_000_000).await?;
    // The outbox filled first (as after an outage), then drained.
    for chunk in 0..args.events.div_ceil(500) {
        let txn = producer.begin().await?;
        for i in 0..500.min(args.events - chunk * 500) {
            append(&txn, i % 100, &Tick { i }).await?;
        }
        txn.commit().await?;
    }
    let ttl = Duration::from_secs(15);
    let handler = counter(false);
    let started = Instant::now();
    let (_events, relay_task) = relay::start(
        producer.clone(),
        source.clone(),
        bus.clone() as Arc<dyn EventBus>,
        leadership(&bus, "producer", ttl),
    );
    let lease = format!("consume:bench:{source}");
    let group = spawn_group(
        &bus,
        &source,
        "consumer",
        ttl,
        lease,
        consumer_db,
        handler.clone(),
    );
    // When the relay alone is done (the stream holds every event).
    let stream = parley_kit::events::redis_bus::stream_key(&source);
    let (mut conn, events) = (bus.conn.clone(), args.events);
    let relayed = tokio::spawn(async move {
        loop {
            let length: u64 = redis::cmd("XLEN")
                .arg(&stream)
                .query_async(&mut conn)
                .await
                .unwrap_or(0);
            if length >= events {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let done = wait_until(Duration::from_secs(600), || {
        handler.applied.load(Ordering::SeqCst) >= args.events
    })
    .await;
    let elapsed = started.elapsed();
    let relay_elapsed = relayed.await?;
    relay_task.abort();
    group.abort();
    let store_kind = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "end to end ({store_kind} stores): {} events in {:.2} s = {:.0} events/s{} (the relay alone: {:.0} events/s)",
        handler.applied.load(Ordering::SeqCst),
        elapsed.as_secs_f64(),
        handler.applied.load(Ordering::SeqCst) as f64 / elapsed.as_secs_f64(),
        if done { "" } else { " (INCOMPLETE)" },
        args.events as f64 / relay_elapsed.as_secs_f64(),
    );
    Ok(())
}

/// A consumer dies holding a batch; another instance re-claims it.
async fn redelivery(args: &Args) -> anyhow::Result<()> {
    let source = format!("bench{}", uuid::Uuid::now_v7().simple());
    let db = store(args, "redelivery").await?;
    let bus = RedisBus::connect(&args.redis_url, &source, 1_000_000).await?;
    for i in 0..100 {
        bus.publish(&EventEnvelope {
            position: i + 1,
            id: uuid::Uuid::now_v7(),
            source: source.clone(),
            kind: "Tick".into(),
            aggregate_id: "x".into(),
            occurred_at: chrono::Utc::now(),
            payload: serde_json::json!({}),
        })
        .await?;
    }
    let ttl = Duration::from_millis(args.takeover_ms);
    let lease = format!("consume:bench:{source}");
    let start_instance = |instance: &str, handler: Arc<Counter>| {
        spawn_group(
            &bus,
            &source,
            instance,
            ttl,
            lease.clone(),
            db.clone(),
            handler,
        )
    };
    let dying = start_instance("a", counter(true));
    tokio::time::sleep(Duration::from_millis(500) + ttl / 3).await; // it holds the lease and the batch
    dying.abort();
    let died = Instant::now();
    let survivor = counter(false);
    let task = start_instance("b", survivor.clone());
    let done = wait_until(Duration::from_secs(120), || {
        survivor.applied.load(Ordering::SeqCst) >= 100
    })
    .await;
    task.abort();
    let first = survivor
        .first_at
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map(|t| t.duration_since(died));
    println!(
        "redelivery (takeover {} ms): first held event applied {:.0} ms after the consumer died; all 100 {}",
        args.takeover_ms,
        first.unwrap_or_default().as_secs_f64() * 1000.0,
        if done { "applied once each" } else { "NOT applied" }
    );
    Ok(())
}

/// Instance 1 publishes, instance 2's live tail receives.
async fn live_across_instances(args: &Args) -> anyhow::Result<()> {
    let source = format!("bench{}", uuid::Uuid::now_v7().simple());
    let one = RedisBus::connect(&args.redis_url, &source, 100_000).await?;
    let two = RedisBus::connect(&args.redis_url, &source, 100_000).await?;
    let mut received = two.subscribe();
    let origin = Instant::now();
    let total = args.live_rate * 10;
    let receiver = tokio::spawn(async move {
        let mut samples = Samples::default();
        while samples.len() < total as usize {
            match tokio::time::timeout(Duration::from_secs(5), received.recv()).await {
                Ok(Ok(event)) => {
                    let sent_ns = event.payload["t"].as_u64().unwrap_or(0);
                    let now_ns = origin.elapsed().as_nanos() as u64;
                    samples.push(Duration::from_nanos(now_ns.saturating_sub(sent_ns)));
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                _ => break,
            }
        }
        samples
    });
    let mut tick = tokio::time::interval(Duration::from_secs(1) / args.live_rate.max(1) as u32);
    for i in 0..total {
        tick.tick().await;
        one.publish(&EventEnvelope {
            position: i as i64,
            id: uuid::Uuid::now_v7(),
            source: source.clone(),
            kind: "MessageSent".into(),
            aggregate_id: "chat".into(),
            occurred_at: chrono::Utc::now(),
            payload: serde_json::json!({ "t": origin.elapsed().as_nanos() as u64 }),
        })
        .await?;
    }
    let mut samples = receiver.await?;
    println!(
        "live across instances ({} msg/s): {} received, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.live_rate,
        samples.len(),
        samples.percentile(50.0).as_secs_f64() * 1000.0,
        samples.percentile(99.0).as_secs_f64() * 1000.0,
        samples.percentile(100.0).as_secs_f64() * 1000.0,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    end_to_end(&args).await?;
    redelivery(&args).await?;
    live_across_instances(&args).await?;
    Ok(())
}
