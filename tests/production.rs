//! Production mode on loopback: every subgraph on PostgreSQL, events through a real Redis (a server of the
//! test's own, so it can be stopped), several instances and routers.
//! - A message sent through router A (chat instance 1) reaches a subscriber on router B (chat instance 2).
//! - Writes while Redis is down succeed (the outboxes fill); once it is back every event reaches every
//!   consuming subgraph once and in order per aggregate.

use parley_harness as support;

use std::time::Duration;

use parley_kit::testing::RedisServer;
use serde_json::json;
use support::{create_post, direct_chat, eventually, feed_titles, Account, Platform, WsClient};

const SEND: &str =
    "mutation($c: ID!, $t: String) { sendMessage(chatId: $c, input: { text: $t }) { id seq } }";
const MESSAGE_ADDED: &str =
    "subscription($c: ID!) { messageAdded(chatId: $c) { seq text author { nickname } } }";

/// Redis of the test's own and the PostgreSQL server of the test command (both required by it).
fn services() -> Option<RedisServer> {
    support::postgres_url()?;
    RedisServer::start()
}

#[tokio::test]
async fn a_message_sent_through_router_a_reaches_a_subscriber_on_router_b() {
    let Some(redis) = services() else { return };
    let mut p = Platform::start_production(&redis.url()).await;
    let chat_two = p.spawn_instance("chat").await;
    let router_b = p.start_router(&[("chat", &chat_two)]).await;

    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = direct_chat(&p, &alice, &bob).await;

    // Bob listens through router B, whose chat is the second instance.
    let mut ws = WsClient::connect_url(&router_b.ws_url(), Some(&bob.access)).await;
    ws.subscribe("m", MESSAGE_ADDED, json!({ "c": chat })).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the subscription reaches chat #2

    for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
        p.ok(SEND, json!({ "c": chat, "t": text }), Some(&alice.access))
            .await;
        let got = ws
            .next_for("m", Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("message {text:?} did not reach router B"));
        let message = &got["payload"]["data"]["messageAdded"];
        assert_eq!(message["text"], text, "{got}");
        assert_eq!(message["seq"], i as i64 + 1);
        assert_eq!(message["author"]["nickname"], "alice");
    }
    ws.close().await;
}

/// Each producer's stream (length, consumer groups with their pending and last delivered entries) and the
/// leases held, as Redis has them now.
async fn bus_state(url: &str) -> String {
    let mut out = String::new();
    let Ok(client) = redis::Client::open(url) else {
        return "no Redis client".into();
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return "Redis unreachable".into();
    };
    for source in ["users", "social", "posts"] {
        let stream = format!("parley:events:{source}");
        let len: redis::RedisResult<i64> =
            redis::cmd("XLEN").arg(&stream).query_async(&mut conn).await;
        let groups: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&stream)
            .query_async(&mut conn)
            .await;
        out.push_str(&format!("{stream}: length {len:?}, groups {groups:?}\n"));
    }
    let leases: redis::RedisResult<Vec<String>> = redis::cmd("KEYS")
        .arg("parley:lease:*")
        .query_async(&mut conn)
        .await;
    out.push_str(&format!("leases: {leases:?}\n"));
    out
}

async fn set_follow(p: &Platform, who: &Account, target: &Account, follow: bool) {
    let mutation = if follow {
        "mutation($id: ID!) { follow(userId: $id) }"
    } else {
        "mutation($id: ID!) { unfollow(userId: $id) }"
    };
    p.ok(mutation, json!({ "id": target.id }), Some(&who.access))
        .await;
}

#[tokio::test]
async fn writes_during_a_redis_outage_are_delivered_once_and_in_order_when_it_returns() {
    let Some(mut redis) = services() else { return };
    let p = Platform::start_production(&redis.url()).await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    // The pipeline works and everything so far has been consumed: social and chat know both users, feed
    // knows the follow and bob's first post.
    eventually("social learns bob", || async {
        let (_, body) = p
            .gql(
                "mutation($id: ID!) { follow(userId: $id) }",
                json!({ "id": bob.id }),
                Some(&alice.access),
            )
            .await;
        (body["data"]["follow"] == "FOLLOWING").then_some(())
    })
    .await;
    direct_chat(&p, &alice, &bob).await;
    create_post(&p, &bob, "p0", None).await;
    eventually("p0 in alice's feed", || async {
        (feed_titles(&p, &alice).await == ["p0"]).then_some(())
    })
    .await;

    redis.stop();
    // Every write still succeeds: the events wait in the outboxes.
    set_follow(&p, &alice, &bob, false).await;
    create_post(&p, &bob, "p1", None).await;
    set_follow(&p, &alice, &bob, true).await;
    create_post(&p, &bob, "p2", None).await;
    let carol = p.register("carol").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        feed_titles(&p, &alice).await,
        ["p0"],
        "nothing moved while Redis was down"
    );

    redis.restart().expect("redis back");
    // Unfollow then follow, in that order: alice follows bob again and sees every post once. Recovery is
    // reconnects, lease renewal and consumer-group backoff (≤ 2 s a round) on both hops (social → feed, posts
    // → feed); with the whole suite sharing two cores it once took longer than the usual 15 s.
    let started = std::time::Instant::now();
    while feed_titles(&p, &alice).await != ["p2", "p1", "p0"] {
        if started.elapsed() > Duration::from_secs(45) {
            // Say where the pipeline stands, so a rare failure explains itself.
            panic!(
                "the feed did not catch up in 45 s: alice's feed {:?}\n{}",
                feed_titles(&p, &alice).await,
                bus_state(&redis.url()).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Users' events reached chat as well.
    direct_chat(&p, &alice, &carol).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(feed_titles(&p, &alice).await, ["p2", "p1", "p0"]);
}

#[tokio::test]
async fn queries_keep_succeeding_when_one_of_two_instances_dies() {
    let Some(redis) = services() else { return };
    let mut p = Platform::start_production(&redis.url()).await;
    let chat_one = p.subgraph_url("chat");
    let chat_two = p.spawn_instance("chat").await;
    let router_b = p
        .start_router(&[("chat", &chat_one), ("chat", &chat_two)])
        .await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = direct_chat(&p, &alice, &bob).await;
    let b = Platform::client_of(&router_b.url);
    const CHATS: &str = "query { chats(first: 5) { edges { node { id } } } }";
    let listed = |body: &serde_json::Value| body["data"]["chats"]["edges"][0]["node"]["id"] == chat;
    for _ in 0..20 {
        let (status, body) = b.gql(CHATS, json!({}), Some(&alice.access)).await;
        assert!(status == 200 && listed(&body), "{body}");
    }

    p.stop_subgraph("chat").await;
    // The balancer notices within its health interval (a request caught on a dying connection may fail).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..30 {
        let (status, body) = b.gql(CHATS, json!({}), Some(&alice.access)).await;
        assert!(
            status == 200 && listed(&body),
            "request {i} after the stop: {body}"
        );
        let sent = b
            .gql(
                SEND,
                json!({ "c": chat, "t": format!("still here {i}") }),
                Some(&alice.access),
            )
            .await;
        assert!(sent.1["errors"].is_null(), "{}", sent.1);
    }
}

#[tokio::test]
async fn a_rate_limit_holds_across_two_routers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let limits = parley_kit::testing::temp_dir("limits").join("limits.yaml");
    std::fs::write(
        &limits,
        "plugins: {parley: {config: {rate_limit: {window_secs: 600, query: 6}}}}",
    )
    .expect("write limits");
    let redis_url = redis.url();
    let limits = limits.display().to_string();
    let args = ["--redis-url", &redis_url, "--config", &limits];
    let p = Platform::start_opts(support::Options {
        extra_router_args: &args,
        ..Default::default()
    })
    .await;
    let router_b_process = p.start_router_with(&[], &args).await;
    let router_b = Platform::client_of(&router_b_process.url);
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    const ME: &str = "query { me { nickname } }";

    // Six queries, alternating routers, then the seventh is refused whichever router serves it.
    for i in 0..6 {
        let (status, body) = if i % 2 == 0 {
            p.gql(ME, json!({}), Some(&alice.access)).await
        } else {
            router_b.gql(ME, json!({}), Some(&alice.access)).await
        };
        assert_eq!(
            (status, &body["data"]["me"]["nickname"]),
            (200, &json!("alice")),
            "{body}"
        );
    }
    for (status, body) in [
        p.gql(ME, json!({}), Some(&alice.access)).await,
        router_b.gql(ME, json!({}), Some(&alice.access)).await,
    ] {
        assert_eq!(status, 429, "{body}");
        assert_eq!(support::codes(&body), ["RATE_LIMITED"], "{body}");
        let retry_after = body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .expect("retryAfter");
        assert!((1..=600).contains(&retry_after), "{body}");
    }
    // Limits are per caller: bob is not affected, and alice may still write (another class).
    let (status, body) = router_b.gql(ME, json!({}), Some(&bob.access)).await;
    assert_eq!(status, 200, "{body}");
    p.ok(
        "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
        json!({ "i": { "title": "t", "body": "b" } }),
        Some(&alice.access),
    )
    .await;
}

/// Counts panics raised outside the tests' own code (a subgraph handler that panics would otherwise only
/// show as a dropped connection).
fn count_foreign_panics() -> &'static std::sync::atomic::AtomicUsize {
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|l| !l.file().starts_with("tests/"))
            {
                PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            previous(info);
        }));
    });
    &PANICS
}

#[tokio::test]
async fn a_postgres_restart_under_load_fails_cleanly_and_parley_recovers_by_itself() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let panics = count_foreign_panics();
    let Some(pg) = parley_kit::testing::PostgresServer::start() else {
        return;
    };
    let p = Arc::new(
        Platform::start_opts(support::Options {
            store: Some(support::Store::Postgres),
            postgres_url: Some(pg.url()),
            ..Default::default()
        })
        .await,
    );
    let alice = p.register("alice").await;
    const ME: &str = "query { me { nickname } }";
    const POST: &str = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";

    // Load: readers and writers until told to stop; every outcome kept.
    let running = Arc::new(AtomicBool::new(true));
    // (HTTP status, error codes) of every request.
    type Outcomes = Mutex<Vec<(u16, Vec<String>)>>;
    let outcomes: Arc<Outcomes> = Arc::default();
    let mut load = Vec::new();
    for worker in 0..4 {
        let (p, running, outcomes, token) = (
            p.clone(),
            running.clone(),
            outcomes.clone(),
            alice.access.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while running.load(Ordering::SeqCst) {
                i += 1;
                let (status, body) = if worker % 2 == 0 {
                    p.gql(ME, json!({}), Some(&token)).await
                } else {
                    let input = json!({ "i": { "title": format!("w{worker} {i}"), "body": "b" } });
                    p.gql(POST, input, Some(&token)).await
                };
                outcomes
                    .lock()
                    .expect("lock")
                    .push((status, support::codes(&body)));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop().expect("stop PostgreSQL");
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.resume().expect("start PostgreSQL again");

    // Without restarting anything, reads and writes succeed again.
    eventually("reads and writes succeed again", || async {
        let (_, read) = p.gql(ME, json!({}), Some(&alice.access)).await;
        let (_, write) = p
            .gql(
                POST,
                json!({ "i": { "title": "after", "body": "b" } }),
                Some(&alice.access),
            )
            .await;
        (read["data"]["me"]["nickname"] == "alice" && write["errors"].is_null()).then_some(())
    })
    .await;
    running.store(false, Ordering::SeqCst);
    for task in load {
        task.await.expect("load task");
    }
    let outcomes = outcomes.lock().expect("lock");
    let failures: Vec<_> = outcomes
        .iter()
        .filter(|(_, codes)| !codes.is_empty())
        .collect();
    assert!(outcomes.len() > failures.len(), "some requests succeeded");
    for (status, codes) in &failures {
        assert!(
            codes
                .iter()
                .all(|c| c == "SUBGRAPH_UNAVAILABLE" || c == "INTERNAL"),
            "a failure during the gap must say the service is unavailable: {status} {codes:?}"
        );
    }
    eprintln!(
        "PostgreSQL restart: {} requests, {} failed with SUBGRAPH_UNAVAILABLE/INTERNAL",
        outcomes.len(),
        failures.len()
    );
    assert_eq!(panics.load(Ordering::SeqCst), 0, "no panics in Parley");
}

/// In production an edited or deleted message's earlier events also leave the Redis stream (their entries
/// are erased), not only the outbox.
#[tokio::test]
async fn withdrawn_text_leaves_the_redis_stream() {
    let Some(redis) = services() else { return };
    let p = Platform::start_production(&redis.url()).await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = direct_chat(&p, &alice, &bob).await;
    let sent = p
        .ok(
            SEND,
            json!({ "c": chat, "t": "a secret in the stream" }),
            Some(&alice.access),
        )
        .await;
    let id = sent["sendMessage"]["id"].clone();
    let client = redis::Client::open(redis.url()).expect("redis");
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis conn");
    let stream = || async {
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg("parley:events:chat")
            .arg("-")
            .arg("+")
            .query_async(&mut conn.clone())
            .await
            .expect("xrange");
        format!("{entries:?}")
    };
    eventually("the message is in the stream", || async {
        stream()
            .await
            .contains("a secret in the stream")
            .then_some(())
    })
    .await;
    p.ok(
        "mutation($id: ID!) { deleteMessage(id: $id, forEveryone: true) }",
        json!({ "id": id }),
        Some(&alice.access),
    )
    .await;
    eventually("the deletion is in the stream", || async {
        stream().await.contains("MessageDeleted").then_some(())
    })
    .await;
    assert!(!stream().await.contains("a secret"), "erased from Redis");
}
