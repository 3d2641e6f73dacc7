//! Clients that go away leave nothing behind: after 200 subscriptions are opened and closed through the
//! router (150 of them on their own connections: more long-lived clients than the engine's default allows),
//! shared by the router's live front, relayed by it to the engine, or with sharing off, the posts
//! subgraph's open-subscription gauge is back to 0. (Alone in its binary: the gauge is
//! process-wide.)

use parley_harness as support;

use std::time::Duration;

use serde_json::json;
use support::{eventually, Platform, WsClient};

/// With the live front serving WebSockets (the default): a viewer-independent selection (shared: one
/// upstream) and one with a per-viewer field (relayed to the engine over the front's link: one upstream
/// each); then the shareable one with the engine serving WebSockets, and with sharing off: each time the
/// gauge goes up as expected and back to 0.
#[tokio::test]
async fn subscriptions_opened_and_closed_leave_nothing() {
    const SHARED: &str = "subscription($p: ID!) { commentAdded(postId: $p) { id } }";
    const PER_VIEWER: &str = "subscription($p: ID!) { commentAdded(postId: $p) { id myVote } }";
    opened_and_closed(&[], SHARED, 1.0).await;
    opened_and_closed(&[], PER_VIEWER, 200.0).await;
    opened_and_closed(&["--live-sharing-websocket", "false"], SHARED, 200.0).await;
    opened_and_closed(&["--live-sharing", "false"], SHARED, 200.0).await;
}

async fn opened_and_closed(router_args: &[&str], query: &str, upstreams: f64) {
    // 200 anonymous subscriptions from one address are over the per-caller limits: counted without them.
    let mut args = vec!["--no-rate-limits"];
    args.extend_from_slice(router_args);
    let p = Platform::start_opts(support::Options {
        extra_router_args: &args,
        ..Default::default()
    })
    .await;
    let alice = p.register("alice").await;
    let data = p
        .ok(
            "mutation { createPost(input: { title: \"Busy\", body: \"b\" }) { id } }",
            json!({}),
            Some(&alice.access),
        )
        .await;
    let post_id = data["createPost"]["id"].as_str().expect("id").to_string();

    // 50 on one connection, completed one by one; 150 more, one per connection, dropped without a word.
    let mut ws = WsClient::connect(&p, None).await;
    for i in 0..50 {
        ws.subscribe(&i.to_string(), query, json!({ "p": post_id }))
            .await;
    }
    let mut sockets = Vec::new();
    for _ in 0..150 {
        let mut s = WsClient::connect(&p, None).await;
        s.subscribe("0", query, json!({ "p": post_id })).await;
        sockets.push(s);
    }
    eventually(
        &format!("{upstreams} open subscriptions for {query}"),
        || async { (p.posts_open_subscriptions().await == Some(upstreams)).then_some(()) },
    )
    .await;

    for i in 0..50 {
        ws.complete(&i.to_string()).await;
    }
    for s in sockets {
        s.close().await;
    }
    ws.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    eventually(
        &format!("every subscription released for {query}"),
        || async { (p.posts_open_subscriptions().await == Some(0.0)).then_some(()) },
    )
    .await;
}
