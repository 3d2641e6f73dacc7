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

/// Posts reads what every subscriber's check of an event reads alike once per event and checks only the
/// viewer's own part per subscriber: on one comment, a viewer blocked by its author and a viewer who
/// blocked it get nothing while the others get it; a private commenter's comment reaches no one who does
/// not follow them but themselves; the same streams carry the next comment they may see.
#[tokio::test]
async fn one_event_checked_per_viewer_reaches_exactly_those_who_may_see_it() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let (bob, carol, dave, erin) = (
        p.register("bob").await,
        p.register("carol").await,
        p.register("dave").await,
        p.register("erin").await,
    );
    let post_id = new_post(&p, &alice.access).await;
    // Dave blocks carol; erin blocks dave.
    p.block(&dave, &carol).await;
    p.block(&erin, &dave).await;
    const BODIES: &str = "subscription($p: ID!) { commentAdded(postId: $p) { body } }";
    let mut viewers = Vec::new();
    for who in [Some(&bob), Some(&carol), Some(&erin), Some(&dave), None] {
        let mut ws = WsClient::connect(&p, who.map(|a| a.access.as_str())).await;
        ws.subscribe("c", BODIES, json!({ "p": post_id })).await;
        viewers.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let comment = |who: &support::Account, body: &str| {
        let (token, body) = (who.access.clone(), body.to_string());
        let p = &p;
        let post_id = post_id.clone();
        async move {
            p.ok(
                "mutation($p: ID!, $b: String!) { createComment(postId: $p, body: $b) { id } }",
                json!({ "p": post_id, "b": body }),
                Some(&token),
            )
            .await;
        }
    };
    comment(&dave, "from dave").await;
    // Dave goes private: from now on his comments are for him (no one follows him).
    let daves = new_post(&p, &dave.access).await;
    p.ok(
        "mutation { setPrivate(private: true) }",
        json!({}),
        Some(&dave.access),
    )
    .await;
    support::eventually("posts knows dave is private", || async {
        let (_, body) = p
            .gql(
                "query($id: ID!) { post(id: $id) { id } }",
                json!({ "id": daves }),
                None,
            )
            .await;
        body["data"]["post"].is_null().then_some(())
    })
    .await;
    comment(&dave, "private dave").await;
    comment(&bob, "from bob").await;
    // Who sees what, in order: bob, carol (blocked by dave), erin (blocked dave), dave, anonymous.
    let want: [&[&str]; 5] = [
        &["from dave", "from bob"],
        &["from bob"],
        &["from bob"],
        &["from dave", "private dave", "from bob"],
        &["from dave", "from bob"],
    ];
    for (ws, want) in viewers.iter_mut().zip(want) {
        let mut got = Vec::new();
        while got.last().map(String::as_str) != Some("from bob") {
            let message = ws
                .next_for("c", Duration::from_secs(10))
                .await
                .expect("a comment");
            assert_eq!(message["type"], "next", "{message}");
            got.push(
                message["payload"]["data"]["commentAdded"]["body"]
                    .as_str()
                    .expect("body")
                    .to_string(),
            );
        }
        assert_eq!(got, want);
    }
}
