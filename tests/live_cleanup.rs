//! Clients that go away leave nothing behind: after 200 subscriptions are opened and closed through the
//! router (150 of them on their own connections: more long-lived clients than the engine's default allows),
//! the posts subgraph's open-subscription gauge is back to 0. (Alone in its binary: the gauge is
//! process-wide.)

use parley_harness as support;

use std::time::Duration;

use serde_json::json;
use support::{eventually, Platform, WsClient};

#[tokio::test]
async fn subscriptions_opened_and_closed_leave_nothing() {
    // 200 anonymous subscriptions from one address are over the per-caller limits: counted without them.
    let p = Platform::start_opts(support::Options {
        extra_router_args: &["--no-rate-limits"],
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
        ws.subscribe(
            &i.to_string(),
            "subscription($p: ID!) { commentAdded(postId: $p) { id } }",
            json!({ "p": post_id }),
        )
        .await;
    }
    let mut sockets = Vec::new();
    for _ in 0..150 {
        let mut s = WsClient::connect(&p, None).await;
        s.subscribe(
            "0",
            "subscription($p: ID!) { commentAdded(postId: $p) { id } }",
            json!({ "p": post_id }),
        )
        .await;
        sockets.push(s);
    }
    eventually("200 open subscriptions", || async {
        (p.posts_open_subscriptions().await == Some(200.0)).then_some(())
    })
    .await;

    for i in 0..50 {
        ws.complete(&i.to_string()).await;
    }
    for s in sockets {
        s.close().await;
    }
    ws.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    eventually("every subscription released", || async {
        (p.posts_open_subscriptions().await == Some(0.0)).then_some(())
    })
    .await;
}
