//! Live comments through the router: graphql-transport-ws and SSE subscribers receive a new comment with its
//! author resolved from users; a missing post is NOT_FOUND; score changes stream too.

use parley_harness as support;

use std::time::Duration;

use serde_json::json;
use support::{sse_next, sse_subscribe, Platform, WsClient};

const COMMENT_ADDED: &str =
    "subscription($p: ID!) { commentAdded(postId: $p) { body author { nickname avatarUrl } } }";

async fn new_post(p: &Platform, token: &str) -> String {
    let data = p
        .ok(
            "mutation { createPost(input: { title: \"Live\", body: \"b\" }) { id } }",
            json!({}),
            Some(token),
        )
        .await;
    data["createPost"]["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn websocket_and_sse_subscribers_get_new_comments_with_authors() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let post_id = new_post(&p, &alice.access).await;

    let mut ws = WsClient::connect(&p, Some(&alice.access)).await;
    ws.subscribe("1", COMMENT_ADDED, json!({ "p": post_id }))
        .await;
    let mut sse = sse_subscribe(&p, COMMENT_ADDED, json!({ "p": post_id }), None).await;
    let mut buffer = String::new();
    // Give both subscriptions time to reach the subgraph before writing.
    tokio::time::sleep(Duration::from_millis(500)).await;

    p.ok(
        "mutation($p: ID!) { createComment(postId: $p, body: \"first!\") { id } }",
        json!({ "p": post_id }),
        Some(&bob.access),
    )
    .await;

    let message = ws
        .next_for("1", Duration::from_secs(10))
        .await
        .expect("ws event");
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["payload"]["data"]["commentAdded"]["body"], "first!");
    assert_eq!(
        message["payload"]["data"]["commentAdded"]["author"]["nickname"],
        "bob"
    );

    let event = sse_next(&mut sse, &mut buffer, Duration::from_secs(10))
        .await
        .expect("sse event");
    assert_eq!(
        event["data"]["commentAdded"]["author"]["nickname"], "bob",
        "{event}"
    );
    ws.close().await;
}

#[tokio::test]
async fn score_changes_stream_and_missing_posts_are_not_found() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let post_id = new_post(&p, &alice.access).await;

    let mut ws = WsClient::connect(&p, None).await;
    ws.subscribe(
        "missing",
        COMMENT_ADDED,
        json!({ "p": "01900000-0000-7000-8000-000000000000" }),
    )
    .await;
    let refused = ws
        .next_for("missing", Duration::from_secs(10))
        .await
        .expect("an answer");
    let text = refused.to_string();
    assert!(text.contains("NOT_FOUND"), "{refused}");

    ws.subscribe(
        "score",
        "subscription($p: ID!) { postScoreChanged(postId: $p) { score upvotes } }",
        json!({ "p": post_id }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.ok(
        "mutation($t: ID!) { vote(targetId: $t, value: 1) { score } }",
        json!({ "t": post_id }),
        Some(&bob.access),
    )
    .await;
    let message = ws
        .next_for("score", Duration::from_secs(10))
        .await
        .expect("score event");
    assert_eq!(message["id"], "score");
    assert_eq!(
        message["payload"]["data"]["postScoreChanged"],
        json!({ "score": 1, "upvotes": 1 })
    );
    ws.close().await;
}
