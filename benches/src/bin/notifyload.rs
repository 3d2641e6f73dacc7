//! Notifications figures (issue 19). Three phases, each printing its figures:
//!
//! 1. `generate`: a burst of comment events applied by the notifications subgraph in-process, as its consumer
//!    applies them (`apply_batch`, batches of 100, exactly once): events/s, and the notifications they made
//!    (grouped per post while unread).
//! 2. `live --url …`: through the router. `--recipients` accounts each write a post and hold a WebSocket
//!    subscribed to `notificationAdded { id count actors { nickname } }`; commenters comment on those posts at
//!    `--rate`/s for `--seconds`; each delivery is paired with its comment's send time (a recipient's deliveries
//!    come in the order of their comments): mutation sent → notification delivered, p50/p99.
//! 3. `mail --smtp …`: digests to a real SMTP server: `--users` recipients with a proven address and a
//!    notification each, mailed by the digest task's own code: mails/s.
//!
//! `target/release/notifyload generate`; `notifyload live --url http://127.0.0.1:4000/graphql`;
//! `notifyload mail --smtp smtp://127.0.0.1:2525` (benches/notifications.sh runs all three).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures::{SinkExt, StreamExt};
use parley_bench::{gql, register, Samples};
use parley_kit::events::consumer::{apply_batch, Attempts};
use parley_kit::events::contracts::{
    CommentChanged, CommentCreated, EmailVerified, PostChanged, PostCreated, UserRegistered,
};
use parley_kit::events::{Event, EventEnvelope};
use parley_kit::Domain;
use parley_notifications::projection::Projection;
use parley_notifications::Notifications;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    phase: Phase,
}

#[derive(Subcommand)]
enum Phase {
    Generate {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        /// A PostgreSQL server (`postgres://user@host:port`) to run the store on, in a fresh database,
        /// instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
    },
    Live {
        #[arg(long, default_value = "http://127.0.0.1:4000/graphql")]
        url: String,
        #[arg(long, default_value_t = 1_000)]
        recipients: usize,
        #[arg(long, default_value_t = 1_000.0)]
        rate: f64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 16)]
        commenters: usize,
    },
    Mail {
        #[arg(long)]
        smtp: String,
        #[arg(long, default_value_t = 2_000)]
        users: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().phase {
        Phase::Generate {
            events,
            users,
            postgres,
        } => generate(events, users, postgres).await,
        Phase::Live {
            url,
            recipients,
            rate,
            seconds,
            commenters,
        } => live(&url, recipients, rate, seconds, commenters).await,
        Phase::Mail { smtp, users } => mail(&smtp, users).await,
    }
}

/// The notifications subgraph on a fresh SQLite store, started but not serving.
async fn subgraph(
    label: &str,
    postgres: Option<&str>,
) -> anyhow::Result<(parley_kit::Runtime, std::path::PathBuf)> {
    let dir = std::env::temp_dir().join(format!("parley-notifyload-{label}-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let mut config = parley_kit::ServiceConfig {
        name: Notifications::NAME.into(),
        data_dir: dir.clone(),
        ..Default::default()
    };
    if let Some(server) = postgres {
        config.database_url =
            Some(parley_bench::fresh_postgres(server, "parley_notifyload").await?);
    }
    let (runtime, _) = Notifications::start(config).await?;
    Ok((runtime, dir))
}

fn envelope<E: Event>(position: &mut i64, event: E) -> EventEnvelope {
    *position += 1;
    EventEnvelope {
        position: *position,
        id: Uuid::now_v7(),
        source: E::KIND.source.into(),
        kind: E::KIND.name.into(),
        aggregate_id: "bench".into(),
        occurred_at: chrono::Utc::now(),
        payload: serde_json::to_value(event).unwrap_or_default(),
    }
}

/// Applies `events` in batches of 100, as the consumer does.
async fn apply_all(runtime: &parley_kit::Runtime, events: &[EventEnvelope]) -> anyhow::Result<()> {
    let handler = Projection {
        grace: chrono::Duration::seconds(3),
    };
    let mut attempts = Attempts::default();
    for batch in events.chunks(100) {
        apply_batch(
            &runtime.db,
            &batch[0].source,
            &handler,
            batch,
            &mut attempts,
            5,
        )
        .await
        .map_err(|_| anyhow::anyhow!("a batch stalled"))?;
    }
    Ok(())
}

/// Users and one post each: (user ids, posts).
fn people(position: &mut i64, users: usize) -> (Vec<Uuid>, Vec<PostChanged>, Vec<EventEnvelope>) {
    let ids: Vec<Uuid> = (0..users).map(|_| Uuid::now_v7()).collect();
    let mut events = Vec::new();
    let mut posts = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        events.push(envelope(
            position,
            UserRegistered {
                user_id: *id,
                nickname: format!("user{n}"),
                avatar_url: None,
                ..Default::default()
            },
        ));
        let post = PostChanged {
            post_id: Uuid::now_v7(),
            author_id: *id,
            topic_id: None,
            created_at: chrono::Utc::now(),
            score: 0,
            mentions: Vec::new(),
            ..Default::default()
        };
        events.push(envelope(position, PostCreated(post.clone())));
        posts.push(post);
    }
    (ids, posts, events)
}

fn comment(post: &PostChanged, author: Uuid) -> CommentChanged {
    CommentChanged {
        comment_id: Uuid::now_v7(),
        post_id: post.post_id,
        parent_id: None,
        author_id: author,
        post_author_id: post.author_id,
        parent_author_id: None,
        mentions: Vec::new(),
        ..Default::default()
    }
}

async fn generate(events: usize, users: usize, postgres: Option<String>) -> anyhow::Result<()> {
    let (runtime, dir) = subgraph("generate", postgres.as_deref()).await?;
    let store = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut position = 0;
    let (ids, posts, setup) = people(&mut position, users);
    apply_all(&runtime, &setup).await?;
    let burst: Vec<EventEnvelope> = (0..events)
        .map(|n| {
            let post = &posts[n % posts.len()];
            // Someone else than the post's author.
            let author = ids[(n / posts.len() + 1 + n) % ids.len()];
            let author = if author == post.author_id {
                ids[(n + 1) % ids.len()]
            } else {
                author
            };
            envelope(&mut position, CommentCreated(comment(post, author)))
        })
        .collect();
    let started = Instant::now();
    apply_all(&runtime, &burst).await?;
    let elapsed = started.elapsed();
    let made = parley_notifications::store::notification::Entity::find()
        .count(&runtime.db)
        .await?;
    println!(
        "generate ({store}): {events} comment events on {users} posts applied in {:.2} s: {:.0} events/s ({made} notifications, grouped per post)",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

async fn mail(smtp: &str, users: usize) -> anyhow::Result<()> {
    let (runtime, dir) = subgraph("mail", None).await?;
    let mut position = 0;
    let (ids, posts, mut setup) = people(&mut position, users);
    for (n, id) in ids.iter().enumerate() {
        let email = format!("bench{n}@example.com");
        setup.push(envelope(
            &mut position,
            EmailVerified {
                user_id: *id,
                email,
            },
        ));
        let commenter = ids[(n + 1) % ids.len()];
        setup.push(envelope(
            &mut position,
            CommentCreated(comment(&posts[n], commenter)),
        ));
    }
    apply_all(&runtime, &setup).await?;
    let links = Arc::new(parley_notifications::digest::Links::new(
        vec![7; 32],
        "http://127.0.0.1:4000",
    ));
    let digests = parley_notifications::digest::Digests {
        db: runtime.db.clone(),
        events: runtime.events.clone(),
        mailer: parley_kit::mail::Mailer::new(
            "Parley <bench@parley.local>",
            Some(smtp),
            dir.join("mail"),
        )?,
        links,
        interval: chrono::Duration::zero(),
    };
    let started = Instant::now();
    let mut sent = 0;
    loop {
        let round = digests.send_due().await?;
        if round == 0 {
            break;
        }
        sent += round;
    }
    let elapsed = started.elapsed();
    println!(
        "mail: {sent} digests to the SMTP server in {:.2} s: {:.0} mails/s ({} at a time over lettre's pooled SMTP connections)",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        parley_notifications::digest::CONCURRENT_SENDS
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

type Pending = Arc<Vec<Mutex<VecDeque<Instant>>>>;

async fn live(
    url: &str,
    recipients: usize,
    rate: f64,
    seconds: u64,
    commenters: usize,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let run = Uuid::now_v7().simple().to_string()[20..].to_string();
    println!(
        "live: registering {recipients} recipients and {commenters} commenters, one post each …"
    );
    let mut posts = Vec::with_capacity(recipients);
    let mut tokens = Vec::with_capacity(recipients);
    let made = futures::stream::iter(0..recipients)
        .map(|n| {
            let http = http.clone();
            let nickname = format!("r{run}{n}");
            async move {
                let (token, _) = register(&http, url, &nickname).await?;
                let post = gql(
                    &http,
                    url,
                    "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
                    json!({ "i": { "title": "t", "body": "b" } }),
                    Some(&token),
                )
                .await?;
                anyhow::Ok((
                    token,
                    post["createPost"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ))
            }
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await;
    for result in made {
        let (token, post) = result?;
        tokens.push(token);
        posts.push(post);
    }
    let mut writers = Vec::new();
    for n in 0..commenters {
        writers.push(register(&http, url, &format!("c{run}{n}")).await?.0);
    }
    let ws_url = url.replacen("http", "ws", 1);
    let pending: Pending = Arc::new(
        (0..recipients)
            .map(|_| Mutex::new(VecDeque::new()))
            .collect(),
    );
    let samples = Arc::new(Mutex::new(Samples::default()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for (i, token) in tokens.iter().enumerate() {
        let (ws_url, token, pending, samples, ready) = (
            ws_url.clone(),
            token.clone(),
            pending.clone(),
            samples.clone(),
            ready_tx.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = subscriber(&ws_url, &token, i, pending, samples, ready).await {
                eprintln!("subscriber {i}: {e}");
            }
        });
    }
    for _ in 0..recipients {
        ready_rx.recv().await;
    }
    // The subscriptions reach the subgraph a moment after the acknowledgement.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("live: {recipients} WebSockets subscribed to notificationAdded; commenting at {rate}/s for {seconds} s");
    let total = (rate * seconds as f64) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut sends = Vec::with_capacity(total);
    for k in 0..total {
        let due = started + interval * k as u32;
        tokio::time::sleep_until(due.into()).await;
        let target = k % recipients;
        let (http, url, post, token, pending) = (
            http.clone(),
            url.to_string(),
            posts[target].clone(),
            writers[k % writers.len()].clone(),
            pending.clone(),
        );
        sends.push(tokio::spawn(async move {
            // The send time goes in before the mutation: the delivery can beat the mutation's answer.
            let sent = Instant::now();
            pending[target].lock().expect("lock").push_back(sent);
            let query = "mutation($p: ID!) { createComment(postId: $p, body: \"hi\") { id } }";
            let ok = gql(&http, &url, query, json!({ "p": post }), Some(&token))
                .await
                .is_ok();
            (ok, sent.elapsed())
        }));
    }
    let sent_in = started.elapsed();
    let mut failed = 0;
    let mut answered = Samples::default();
    for send in sends {
        match send.await {
            Ok((true, took)) => answered.push(took),
            _ => failed += 1,
        }
    }
    // Deliveries still on their way.
    let deadline = Instant::now() + Duration::from_secs(10);
    while samples.lock().expect("lock").len() < total - failed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut samples = std::mem::take(&mut *samples.lock().expect("lock"));
    println!(
        "live: {total} comments sent in {:.1} s ({:.0}/s achieved, {failed} failed), {} delivered: comment sent → notificationAdded delivered {}",
        sent_in.as_secs_f64(),
        total as f64 / sent_in.as_secs_f64(),
        samples.len(),
        samples.summary()
    );
    println!(
        "live: createComment answered through the router {}",
        answered.summary()
    );
    Ok(())
}

async fn subscriber(
    url: &str,
    token: &str,
    index: usize,
    pending: Pending,
    samples: Arc<Mutex<Samples>>,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
) -> anyhow::Result<()> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(init.to_string().into()).await?;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { notificationAdded { id count actors { nickname } } }" } });
    let mut acknowledged = false;
    let mut counts: HashMap<String, i64> = HashMap::new();
    while let Some(frame) = socket.next().await {
        let frame = frame?;
        let Ok(text) = frame.to_text() else { continue };
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        match value["type"].as_str() {
            Some("connection_ack") if !acknowledged => {
                acknowledged = true;
                socket.send(subscribe.to_string().into()).await?;
                let _ = ready.send(());
            }
            Some("ping") => {
                socket
                    .send(json!({ "type": "pong" }).to_string().into())
                    .await?
            }
            Some("next") => {
                let added = &value["payload"]["data"]["notificationAdded"];
                let id = added["id"].as_str().unwrap_or_default().to_string();
                let count = added["count"].as_i64().unwrap_or(0);
                // One delivery per comment; a delivery showing a count that jumped stands for those too.
                let before = counts.insert(id, count).unwrap_or(0);
                let steps = (count - before).max(1);
                for _ in 0..steps {
                    if let Some(sent) = pending[index].lock().expect("lock").pop_front() {
                        samples.lock().expect("lock").push(sent.elapsed());
                    }
                }
            }
            Some("error") => anyhow::bail!("subscription error: {text}"),
            _ => {}
        }
    }
    Ok(())
}
