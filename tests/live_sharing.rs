//! Shared live streams through the router (issue 23): anonymous SSE viewers of one post share a single
//! subscription in the posts subgraph however many they are, get every event, and leave nothing behind; a
//! post they may not see is refused and a post gone private stops at once; signed-in SSE viewers share
//! another, each getting only what is theirs and ended when their right ends; a chat's members share one
//! too (over SSE and WebSocket), a member removed ended at the next message, a stranger refused; what the
//! front does not share is relayed to the engine. (A viewer falling behind is tested in the router's `plugin::live`:
//! over a real socket the kernel buffers megabytes before the router sees a slow reader.) The tests take
//! turns: they read the subgraphs' process-wide gauges.

use parley_harness as support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, sse_next, sse_subscribe, Account, Platform, WsClient};

const COMMENT_ADDED: &str =
    "subscription($p: ID!) { commentAdded(postId: $p) { id body author { nickname } } }";

async fn gauge_reaches(p: &Platform, wanted: f64) {
    eventually(&format!("{wanted} open subscriptions in posts"), || async {
        (p.posts_open_subscriptions().await == Some(wanted)).then_some(())
    })
    .await;
}

async fn new_post(p: &Platform, author: &Account) -> String {
    let data = p
        .ok(
            "mutation { createPost(input: { title: \"Viral\", body: \"b\" }) { id } }",
            json!({}),
            Some(&author.access),
        )
        .await;
    data["createPost"]["id"].as_str().expect("id").to_string()
}

async fn comment(p: &Platform, who: &Account, post: &str, body: &str) {
    p.ok(
        "mutation($p: ID!, $b: String!) { createComment(postId: $p, body: $b) { id } }",
        json!({ "p": post, "b": body }),
        Some(&who.access),
    )
    .await;
}

/// A web app's origin allowed to call the API from a browser.
const APP_ORIGIN: &str = "http://app.example";

/// One test at a time: each reads the process-wide gauge.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Many viewers from one address: counted without the per-caller limits.
async fn platform() -> Platform {
    Platform::start_opts(support::Options {
        extra_router_args: &[
            "--no-rate-limits",
            "--cors-origins",
            APP_ORIGIN,
            "--live-sharing-websocket",
            "true",
        ],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn anonymous_viewers_share_one_upstream_and_leave_nothing() {
    let _turn = TURN.lock().await;
    let p = platform().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let post = new_post(&p, &alice).await;

    // 200 anonymous viewers, 180 over SSE and 20 over WebSocket: one subscription in posts. A signed-in
    // WebSocket viewer shares the signed-in stream: a second.
    let mut viewers = Vec::new();
    for _ in 0..180 {
        let response = sse_subscribe(&p, COMMENT_ADDED, json!({ "p": post }), None).await;
        viewers.push((response, String::new()));
    }
    let mut sockets = Vec::new();
    for n in 0..20 {
        let mut socket = WsClient::connect(&p, None).await;
        socket
            .subscribe(&format!("v{n}"), COMMENT_ADDED, json!({ "p": post }))
            .await;
        sockets.push(socket);
    }
    let mut ws = WsClient::connect(&p, Some(&bob.access)).await;
    ws.subscribe("1", COMMENT_ADDED, json!({ "p": post })).await;
    gauge_reaches(&p, 2.0).await;

    comment(&p, &bob, &post, "first!").await;
    for (response, buffer) in &mut viewers {
        let event = sse_next(response, buffer, Duration::from_secs(10))
            .await
            .expect("every viewer gets the comment");
        assert_eq!(event["data"]["commentAdded"]["body"], "first!", "{event}");
        assert_eq!(
            event["data"]["commentAdded"]["author"]["nickname"], "bob",
            "{event}"
        );
    }
    for (n, socket) in sockets.iter_mut().enumerate() {
        let message = socket
            .next_for(&format!("v{n}"), Duration::from_secs(10))
            .await
            .expect("every WebSocket viewer gets the comment");
        assert_eq!(
            message["payload"]["data"]["commentAdded"]["body"], "first!",
            "{message}"
        );
    }
    let message = ws
        .next_for("1", Duration::from_secs(10))
        .await
        .expect("ws event");
    assert_eq!(message["payload"]["data"]["commentAdded"]["body"], "first!");

    // A browser app on an allowed origin may read the shared stream (the front applies the CORS policy).
    let cross_origin = p
        .http
        .post(p.graphql_url())
        .header("accept", "text/event-stream")
        .header("origin", APP_ORIGIN)
        .json(&json!({ "query": COMMENT_ADDED, "variables": { "p": post } }))
        .send()
        .await
        .expect("router");
    assert_eq!(
        cross_origin.headers().get("access-control-allow-origin"),
        Some(&reqwest::header::HeaderValue::from_static(APP_ORIGIN))
    );
    assert!(cross_origin.headers().contains_key("x-request-id"));
    drop(cross_origin);

    // The SSE viewers leave: the shared stream stays for the WebSocket ones (half of them complete, half
    // just go away); all leave: it closes.
    drop(viewers);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.posts_open_subscriptions().await, Some(2.0));
    for (n, socket) in sockets.iter_mut().enumerate().take(10) {
        socket.complete(&format!("v{n}")).await;
    }
    drop(sockets);
    gauge_reaches(&p, 1.0).await;
    ws.close().await;
    gauge_reaches(&p, 0.0).await;

    // The next viewer opens a new one.
    let (mut again, mut buffer) = (
        sse_subscribe(&p, COMMENT_ADDED, json!({ "p": post }), None).await,
        String::new(),
    );
    gauge_reaches(&p, 1.0).await;
    comment(&p, &bob, &post, "second").await;
    let event = sse_next(&mut again, &mut buffer, Duration::from_secs(10))
        .await
        .expect("event after reopening");
    assert_eq!(event["data"]["commentAdded"]["body"], "second", "{event}");
}

#[tokio::test]
async fn a_blocked_viewer_stops_while_the_shared_stream_goes_on() {
    let _turn = TURN.lock().await;
    let p = platform().await;
    let alice = p.register("alice").await;
    let eve = p.register("eve").await;
    let frank = p.register("frank").await;
    let post = new_post(&p, &alice).await;

    // Eve watches over a WebSocket (her own stream), an anonymous reader over SSE (the shared one).
    let mut eve_ws = WsClient::connect(&p, Some(&eve.access)).await;
    eve_ws
        .subscribe("1", COMMENT_ADDED, json!({ "p": post }))
        .await;
    let mut reader = sse_subscribe(&p, COMMENT_ADDED, json!({ "p": post }), None).await;
    let mut buffer = String::new();
    gauge_reaches(&p, 2.0).await;
    comment(&p, &frank, &post, "before").await;
    let seen = eve_ws.next_for("1", Duration::from_secs(10)).await;
    assert_eq!(
        seen.expect("eve's event")["payload"]["data"]["commentAdded"]["body"],
        "before"
    );
    let event = sse_next(&mut reader, &mut buffer, Duration::from_secs(10))
        .await
        .expect("reader's event");
    assert_eq!(event["data"]["commentAdded"]["body"], "before", "{event}");

    // Alice blocks eve: eve sees nothing more of the post; the anonymous reader sees everything.
    p.block(&alice, &eve).await;
    eventually("posts hides the post from eve", || async {
        let (_, answer) = p
            .gql(
                "query($p: ID!) { post(id: $p) { id } }",
                json!({ "p": post }),
                Some(&eve.access),
            )
            .await;
        (first_code(&answer) == "NOT_FOUND").then_some(())
    })
    .await;
    for body in ["after, by frank", "after, by alice"] {
        let who = if body.ends_with("frank") {
            &frank
        } else {
            &alice
        };
        comment(&p, who, &post, body).await;
        let event = sse_next(&mut reader, &mut buffer, Duration::from_secs(10))
            .await
            .expect("the shared stream goes on");
        assert_eq!(event["data"]["commentAdded"]["body"], body, "{event}");
    }
    let leaked = eve_ws.next_for("1", Duration::from_millis(1500)).await;
    assert!(
        !matches!(&leaked, Some(m) if m["type"] == "next"),
        "a blocked viewer saw {leaked:?}"
    );
}

fn first_code(event: &Value) -> &str {
    event["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn refused_viewers_and_a_post_gone_private() {
    let _turn = TURN.lock().await;
    let p = platform().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let post = new_post(&p, &alice).await;

    // A post that does not exist, and a malformed id: refused with the posts subgraph's codes.
    for (id, code) in [
        ("01900000-0000-7000-8000-000000000000", "NOT_FOUND"),
        ("not-an-id", "BAD_USER_INPUT"),
    ] {
        let mut response = sse_subscribe(&p, COMMENT_ADDED, json!({ "p": id }), None).await;
        let event = sse_next(&mut response, &mut String::new(), Duration::from_secs(10))
            .await
            .expect("refusal");
        assert_eq!(first_code(&event), code, "{event}");
    }
    // A forged and an expired token: `UNAUTHENTICATED` (HTTP 401) in the stream type the client asked for;
    // an anonymous chat stream: refused as before.
    for token in ["forged.token.value", &expired_token(&bob)] {
        let response = p
            .http
            .post(p.graphql_url())
            .header("accept", "text/event-stream")
            .bearer_auth(token)
            .json(&json!({ "query": COMMENT_ADDED, "variables": { "p": post } }))
            .send()
            .await
            .expect("router");
        assert_eq!(response.status(), 401);
        let text = response.text().await.expect("body");
        assert!(text.contains("\"UNAUTHENTICATED\""), "{text}");
        assert!(!text.contains("\"data\":{"), "{text}");
    }
    let mut chat = sse_subscribe(
        &p,
        "subscription($c: ID!) { messageAdded(chatId: $c) { id text } }",
        json!({ "c": "01900000-0000-7000-8000-000000000000" }),
        None,
    )
    .await;
    let event = sse_next(&mut chat, &mut String::new(), Duration::from_secs(10))
        .await
        .expect("chat refusal");
    assert!(event["errors"].is_array(), "{event}");

    // Watching, then the author goes private: anonymous viewers see nothing more of the post.
    let mut viewer = sse_subscribe(&p, COMMENT_ADDED, json!({ "p": post }), None).await;
    let mut buffer = String::new();
    gauge_reaches(&p, 1.0).await;
    comment(&p, &bob, &post, "public").await;
    let event = sse_next(&mut viewer, &mut buffer, Duration::from_secs(10))
        .await
        .expect("public comment");
    assert_eq!(event["data"]["commentAdded"]["body"], "public", "{event}");
    p.ok(
        "mutation { setPrivate(private: true) }",
        json!({}),
        Some(&alice.access),
    )
    .await;
    eventually("the post hidden from anonymous readers", || async {
        let (_, answer) = p
            .gql(
                "query($p: ID!) { post(id: $p) { id } }",
                json!({ "p": post }),
                None,
            )
            .await;
        (first_code(&answer) == "NOT_FOUND").then_some(())
    })
    .await;
    comment(&p, &alice, &post, "for followers only").await;
    let leaked = sse_next(&mut viewer, &mut buffer, Duration::from_millis(1500)).await;
    assert!(leaked.is_none(), "an anonymous viewer saw {leaked:?}");
    // And a new anonymous viewer is refused.
    let mut late = sse_subscribe(&p, COMMENT_ADDED, json!({ "p": post }), None).await;
    let event = sse_next(&mut late, &mut String::new(), Duration::from_secs(10))
        .await
        .expect("refusal");
    assert_eq!(first_code(&event), "NOT_FOUND", "{event}");
}

/// `who`'s access token with its expiry moved into the past (the signature no longer matches either: the
/// router refuses it as it refuses every bad token).
fn expired_token(who: &Account) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = who.access.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&engine.decode(parts[1]).expect("claims")).expect("json");
    claims["exp"] = json!(1);
    format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(claims.to_string()),
        parts[2]
    )
}

/// Whether `who` may read `post`.
async fn sees(p: &Platform, post: &str, who: &Account) -> bool {
    let (_, answer) = p
        .gql(
            "query($p: ID!) { post(id: $p) { id } }",
            json!({ "p": post }),
            Some(&who.access),
        )
        .await;
    answer["data"]["post"]["id"].is_string()
}

/// On a WebSocket the front serves, what it does not share is the engine's, relayed: a chat's messages with
/// a per-viewer field (`clientMessageId`) arrive live beside a shared comment stream on the same connection.
#[tokio::test]
async fn a_websocket_client_chats_through_the_front() {
    let _turn = TURN.lock().await;
    let p = platform().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let post = new_post(&p, &alice).await;
    let chat = support::direct_chat(&p, &alice, &bob).await;

    let mut ws = WsClient::connect(&p, Some(&bob.access)).await;
    ws.subscribe(
        "chat",
        "subscription($c: ID!) { messageAdded(chatId: $c) { seq text clientMessageId author { nickname } } }",
        json!({ "c": chat }),
    )
    .await;
    ws.subscribe("post", COMMENT_ADDED, json!({ "p": post }))
        .await;
    gauge_reaches(&p, 1.0).await;
    // The chat subscription is running once a message sent now arrives.
    let mut delivered = false;
    for _ in 0..20 {
        p.ok(
            "mutation($c: ID!) { sendMessage(chatId: $c, input: { text: \"hi bob\" }) { seq } }",
            json!({ "c": chat }),
            Some(&alice.access),
        )
        .await;
        if let Some(message) = ws.next_for("chat", Duration::from_secs(2)).await {
            assert_eq!(
                message["payload"]["data"]["messageAdded"]["text"], "hi bob",
                "{message}"
            );
            delivered = true;
            break;
        }
    }
    assert!(delivered, "bob's chat subscription delivers");
    comment(&p, &alice, &post, "and a comment").await;
    let message = ws
        .next_for("post", Duration::from_secs(10))
        .await
        .expect("the shared comment");
    assert_eq!(
        message["payload"]["data"]["commentAdded"]["body"], "and a comment",
        "{message}"
    );
    ws.close().await;
    gauge_reaches(&p, 0.0).await;
}

/// What the front relays goes over one link to the engine per worker, not a connection per client: 30
/// signed-in clients each with a relayed chat subscription add about 30 sockets to the router, not 90. Each
/// gets the chat's messages under its own id; one that reuses a running operation's id or sends a malformed
/// `subscribe` is closed alone (4409, 4400), the others going on; the link outlives the engine's heartbeat
/// timeout (10 s) while idle; each operation ends in chat when its client completes it or goes away.
#[tokio::test]
async fn websocket_clients_share_the_fronts_link_to_the_engine() {
    const CHAT: &str =
        "subscription($c: ID!) { messageAdded(chatId: $c) { text clientMessageId } }";
    let _turn = TURN.lock().await;
    let p = platform().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = support::direct_chat(&p, &alice, &bob).await;
    let chat_gauge = |wanted: f64| {
        let p = &p;
        async move {
            eventually(&format!("{wanted} open subscriptions in chat"), || async {
                (p.open_subscriptions("chat").await == Some(wanted)).then_some(())
            })
            .await;
        }
    };

    let before = p.router_sockets();
    let mut clients = Vec::new();
    for i in 0..30 {
        let mut ws = WsClient::connect(&p, Some(&bob.access)).await;
        ws.subscribe(&format!("chat-{i}"), CHAT, json!({ "c": chat }))
            .await;
        clients.push(ws);
    }
    chat_gauge(30.0).await;
    let added = p.router_sockets().saturating_sub(before);
    assert!(
        (30..=40).contains(&added),
        "30 relayed clients added {added} sockets to the router"
    );

    // A reused id and a malformed subscribe close their own clients only.
    let mut reuser = clients.pop().expect("a client");
    reuser
        .subscribe("chat-29", CHAT, json!({ "c": chat }))
        .await;
    assert_eq!(reuser.close_code(Duration::from_secs(10)).await, Some(4409));
    let mut malformed = clients.pop().expect("a client");
    malformed
        .send_raw(&json!({ "id": "x", "type": "subscribe", "payload": { "query": 7 } }).to_string())
        .await;
    assert_eq!(
        malformed.close_code(Duration::from_secs(10)).await,
        Some(4400)
    );
    chat_gauge(28.0).await;

    // Idle for longer than the engine gives a silent connection: the link answers its pings.
    tokio::time::sleep(Duration::from_secs(12)).await;
    p.ok(
        "mutation($c: ID!) { sendMessage(chatId: $c, input: { text: \"to all of bob\" }) { seq } }",
        json!({ "c": chat }),
        Some(&alice.access),
    )
    .await;
    for (i, ws) in clients.iter_mut().enumerate() {
        let id = format!("chat-{i}");
        let message = ws
            .next_for(&id, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{id} got nothing"));
        assert_eq!(message["id"], id.as_str());
        assert_eq!(
            message["payload"]["data"]["messageAdded"]["text"], "to all of bob",
            "{message}"
        );
    }

    // Completed by half the clients, the others just going away: nothing left in chat.
    for (i, ws) in clients.iter_mut().enumerate().take(14) {
        ws.complete(&format!("chat-{i}")).await;
    }
    chat_gauge(14.0).await;
    drop(clients);
    chat_gauge(0.0).await;
}

/// Reads `viewer`'s comments until the one with body `last`; returns the bodies in order.
async fn bodies_until(viewer: &mut (reqwest::Response, String), last: &str) -> Vec<String> {
    until(viewer, "/data/commentAdded/body", last).await
}

/// Reads `viewer`'s events until the one whose text at `pointer` is `last`; returns those texts in order.
async fn until(viewer: &mut (reqwest::Response, String), pointer: &str, last: &str) -> Vec<String> {
    let mut texts = Vec::new();
    loop {
        let event = sse_next(&mut viewer.0, &mut viewer.1, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no event after {texts:?}"));
        let text = event
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{event}"))
            .to_string();
        texts.push(text.clone());
        if text == last {
            return texts;
        }
    }
}

/// `who` signs out; returns once the subgraphs refuse their token (`query`, which they could read before).
async fn sign_out(p: &Platform, who: &Account, query: &str, variables: Value) {
    p.ok(
        "mutation($t: String!) { logout(refreshToken: $t) }",
        json!({ "t": who.refresh }),
        None,
    )
    .await;
    eventually("the signed-out token refused", || async {
        let (_, answer) = p.gql(query, variables.clone(), Some(&who.access)).await;
        (first_code(&answer) == "UNAUTHENTICATED").then_some(())
    })
    .await;
}

/// The stream ends (its last payload, if any, returned) within 10 seconds, without `next` events before.
async fn ends(viewer: &mut (reqwest::Response, String)) -> Option<Value> {
    let last = sse_next(&mut viewer.0, &mut viewer.1, Duration::from_secs(10)).await;
    let rest = tokio::time::timeout(Duration::from_secs(10), viewer.0.chunk())
        .await
        .expect("the stream ends")
        .expect("read");
    assert!(
        rest.is_none_or(|chunk| !String::from_utf8_lossy(&chunk).contains("data:")),
        "more after {last:?}"
    );
    last
}

/// Signed-in SSE viewers of a post share one upstream too (opened as the live front's account), and each
/// gets exactly what their own subscription would: not the comments of someone they blocked, a private
/// author's only if they follow them; a viewer the post's author blocks, or whose session is revoked, is
/// ended while the others go on; when all leave, nothing stays open.
#[tokio::test]
async fn signed_in_viewers_share_one_upstream_and_each_sees_their_own() {
    let _turn = TURN.lock().await;
    let p = platform().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    let dave = p.register("dave").await;
    let eve = p.register("eve").await;
    let frank = p.register("frank").await;
    let post = new_post(&p, &alice).await;

    // Dave follows carol, who then goes private; bob blocks frank.
    eventually("social knows carol", || async {
        let (_, body) = p
            .gql(
                "mutation($id: ID!) { follow(userId: $id) }",
                json!({ "id": carol.id }),
                Some(&dave.access),
            )
            .await;
        (body["data"]["follow"] == "FOLLOWING").then_some(())
    })
    .await;
    p.ok(
        "mutation { setPrivate(private: true) }",
        json!({}),
        Some(&carol.access),
    )
    .await;
    p.block(&bob, &frank).await;
    let carols = new_post(&p, &carol).await;
    let franks = new_post(&p, &frank).await;
    eventually(
        "posts knows the follow, the privacy and the block",
        || async {
            let known = sees(&p, &carols, &dave).await
                && !sees(&p, &carols, &bob).await
                && !sees(&p, &franks, &bob).await;
            known.then_some(())
        },
    )
    .await;

    // Bob, dave and eve watch on three connections each, and an anonymous reader: two upstreams in posts.
    let mut watching = Vec::new();
    for who in [&bob, &dave, &eve] {
        for _ in 0..3 {
            let response =
                sse_subscribe(&p, COMMENT_ADDED, json!({ "p": post }), Some(&who.access)).await;
            watching.push((who.id.clone(), (response, String::new())));
        }
    }
    let mut anonymous = (
        sse_subscribe(&p, COMMENT_ADDED, json!({ "p": post }), None).await,
        String::new(),
    );
    // And dave the post's score over a WebSocket: a third upstream (the signed-in score stream).
    let mut scores = WsClient::connect(&p, Some(&dave.access)).await;
    scores
        .subscribe(
            "score",
            "subscription($p: ID!) { postScoreChanged(postId: $p) { id score } }",
            json!({ "p": post }),
        )
        .await;
    gauge_reaches(&p, 3.0).await;
    p.ok(
        "mutation($p: ID!) { vote(targetId: $p, value: 1) { score } }",
        json!({ "p": post }),
        Some(&frank.access),
    )
    .await;
    let scored = scores
        .next_for("score", Duration::from_secs(10))
        .await
        .expect("the score reaches a signed-in viewer");
    assert_eq!(
        scored["payload"]["data"]["postScoreChanged"]["score"], 1,
        "{scored}"
    );
    scores.close().await;
    gauge_reaches(&p, 2.0).await;

    for (who, body) in [
        (&alice, "from alice"),
        (&carol, "from carol"),
        (&frank, "from frank"),
        (&alice, "last"),
    ] {
        comment(&p, who, &post, body).await;
    }
    for (id, viewer) in &mut watching {
        let expected: &[&str] = if *id == bob.id {
            &["from alice", "last"]
        } else if *id == dave.id {
            &["from alice", "from carol", "from frank", "last"]
        } else {
            &["from alice", "from frank", "last"]
        };
        assert_eq!(bodies_until(viewer, "last").await, expected, "viewer {id}");
    }
    assert_eq!(
        bodies_until(&mut anonymous, "last").await,
        ["from alice", "from frank", "last"]
    );

    // Alice blocks eve: eve's streams end at the next event; the others get it.
    p.block(&alice, &eve).await;
    eventually("posts hides the post from eve", || async {
        let (_, answer) = p
            .gql(
                "query($p: ID!) { post(id: $p) { id } }",
                json!({ "p": post }),
                Some(&eve.access),
            )
            .await;
        (first_code(&answer) == "NOT_FOUND").then_some(())
    })
    .await;
    comment(&p, &alice, &post, "after the block").await;
    for (id, viewer) in &mut watching {
        if *id == eve.id {
            assert_eq!(ends(viewer).await, None, "eve's stream just ends");
        } else {
            assert_eq!(
                bodies_until(viewer, "after the block").await,
                ["after the block"]
            );
        }
    }
    // Bob signs out: his streams end with `UNAUTHENTICATED` at the next event.
    sign_out(
        &p,
        &bob,
        "query($p: ID!) { post(id: $p) { id } }",
        json!({ "p": post }),
    )
    .await;
    comment(&p, &alice, &post, "after the logout").await;
    for (id, viewer) in &mut watching {
        if *id == bob.id {
            let last = ends(viewer).await.expect("bob is told");
            assert_eq!(first_code(&last), "UNAUTHENTICATED", "{last}");
        } else if *id == dave.id {
            assert_eq!(
                bodies_until(viewer, "after the logout").await,
                ["after the logout"]
            );
        }
    }

    // A forged token is refused before it joins.
    let forged = p
        .http
        .post(p.graphql_url())
        .header("accept", "text/event-stream")
        .bearer_auth(expired_token(&dave))
        .json(&json!({ "query": COMMENT_ADDED, "variables": { "p": post } }))
        .send()
        .await
        .expect("router");
    assert_eq!(forged.status(), 401);

    drop(watching);
    drop(anonymous);
    gauge_reaches(&p, 0.0).await;
}

const MESSAGE_ADDED: &str =
    "subscription($c: ID!) { messageAdded(chatId: $c) { id seq text author { nickname } } }";

async fn chat_gauge_reaches(p: &Platform, wanted: f64) {
    eventually(&format!("{wanted} open subscriptions in chat"), || async {
        (p.open_subscriptions("chat").await == Some(wanted)).then_some(())
    })
    .await;
}

async fn send(p: &Platform, who: &Account, chat: &str, text: &str) {
    p.ok(
        "mutation($c: ID!, $t: String!) { sendMessage(chatId: $c, input: { text: $t }) { seq } }",
        json!({ "c": chat, "t": text }),
        Some(&who.access),
    )
    .await;
}

/// Reads `viewer`'s messages until the one with text `last`; returns the texts in order.
async fn texts_until(viewer: &mut (reqwest::Response, String), last: &str) -> Vec<String> {
    until(viewer, "/data/messageAdded/text", last).await
}

/// A chat's members share one upstream (opened as the live front's account, which chat lets follow any
/// chat), over SSE and WebSocket alike: each message of this small chat names its members, in the order of
/// the chat's events, and the front keeps to them. A stranger is refused as by their own subscription; a
/// member removed gets their removal's notice and is ended at the next message, one signed out is told
/// `UNAUTHENTICATED`, while the others go on; when all leave, nothing stays open in chat.
#[tokio::test]
async fn a_chats_members_share_one_upstream_and_a_removed_member_is_ended() {
    let _turn = TURN.lock().await;
    let p = platform().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    let dave = p.register("dave").await;
    // Chat learns of every account before the group names them.
    support::direct_chat(&p, &alice, &bob).await;
    support::direct_chat(&p, &alice, &carol).await;
    let chat = p
        .ok(
            "mutation($m: [ID!]!) { createGroupChat(title: \"Launch\", memberIds: $m) { id } }",
            json!({ "m": [bob.id, carol.id] }),
            Some(&alice.access),
        )
        .await["createGroupChat"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    // Bob on two SSE connections and a WebSocket, carol on SSE: one subscription in chat.
    let mut bobs = Vec::new();
    for _ in 0..2 {
        let response =
            sse_subscribe(&p, MESSAGE_ADDED, json!({ "c": chat }), Some(&bob.access)).await;
        bobs.push((response, String::new()));
    }
    let mut carols = (
        sse_subscribe(&p, MESSAGE_ADDED, json!({ "c": chat }), Some(&carol.access)).await,
        String::new(),
    );
    let mut ws = WsClient::connect(&p, Some(&bob.access)).await;
    ws.subscribe("chat", MESSAGE_ADDED, json!({ "c": chat }))
        .await;
    chat_gauge_reaches(&p, 1.0).await;

    // Dave is not a member: refused with chat's own code, over SSE and WebSocket; anonymous: as before.
    let mut refused =
        sse_subscribe(&p, MESSAGE_ADDED, json!({ "c": chat }), Some(&dave.access)).await;
    let event = sse_next(&mut refused, &mut String::new(), Duration::from_secs(10))
        .await
        .expect("refusal");
    assert_eq!(first_code(&event), "FORBIDDEN", "{event}");
    let mut daves = WsClient::connect(&p, Some(&dave.access)).await;
    daves
        .subscribe("chat", MESSAGE_ADDED, json!({ "c": chat }))
        .await;
    let refusal = daves
        .next_for("chat", Duration::from_secs(10))
        .await
        .expect("a refusal over WebSocket");
    assert_eq!(first_code(&refusal["payload"]), "FORBIDDEN", "{refusal}");
    daves.close().await;
    let mut anonymous = sse_subscribe(&p, MESSAGE_ADDED, json!({ "c": chat }), None).await;
    let event = sse_next(&mut anonymous, &mut String::new(), Duration::from_secs(10))
        .await
        .expect("refusal");
    assert_eq!(first_code(&event), "UNAUTHENTICATED", "{event}");

    send(&p, &alice, &chat, "one").await;
    for viewer in bobs.iter_mut().chain([&mut carols]) {
        assert_eq!(texts_until(viewer, "one").await, ["one"]);
    }
    let message = ws
        .next_for("chat", Duration::from_secs(10))
        .await
        .expect("the message over WebSocket");
    assert_eq!(
        message["payload"]["data"]["messageAdded"]["author"]["nickname"], "alice",
        "{message}"
    );

    // Viewers get what they asked for: not the members the front's upstream names (`liveAudience`).
    let message = &message["payload"]["data"]["messageAdded"];
    assert_eq!(
        message.as_object().map(|m| m.len()),
        Some(4),
        "id, seq, text, author: {message}"
    );
    // A client asking for `liveAudience` itself gets `null` (its subscription is its own, in the engine).
    let mut nosy = WsClient::connect(&p, Some(&bob.access)).await;
    nosy.subscribe(
        "nosy",
        "subscription($c: ID!) { messageAdded(chatId: $c) { text liveAudience } }",
        json!({ "c": chat }),
    )
    .await;
    let mut alices = (
        sse_subscribe(&p, MESSAGE_ADDED, json!({ "c": chat }), Some(&alice.access)).await,
        String::new(),
    );
    chat_gauge_reaches(&p, 2.0).await;

    // Alice removes carol: carol gets her removal's notice, as her own subscription would, and her
    // stream ends at the next message; bob's go on.
    p.ok(
        "mutation($c: ID!, $u: ID!) { removeChatMember(chatId: $c, userId: $u) { id } }",
        json!({ "c": chat, "u": carol.id }),
        Some(&alice.access),
    )
    .await;
    send(&p, &alice, &chat, "two").await;
    assert_eq!(
        texts_until(&mut carols, "MEMBER_REMOVED").await,
        ["MEMBER_REMOVED"]
    );
    assert_eq!(ends(&mut carols).await, None, "carol's stream just ends");
    for viewer in &mut bobs {
        let texts = texts_until(viewer, "two").await;
        assert_eq!(
            texts,
            ["MEMBER_REMOVED", "two"],
            "the removal's notice, then two"
        );
    }
    let seen = nosy
        .next_for("nosy", Duration::from_secs(10))
        .await
        .expect("the notice");
    assert_eq!(
        seen["payload"]["data"]["messageAdded"]["liveAudience"],
        Value::Null,
        "{seen}"
    );
    nosy.close().await;

    // Bob signs out: his streams end with `UNAUTHENTICATED` at the next message; alice's goes on.
    sign_out(
        &p,
        &bob,
        "query($c: ID!) { chat(id: $c) { id } }",
        json!({ "c": chat }),
    )
    .await;
    // The front reads the sessions signed out at most a second before it judges a message.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    send(&p, &alice, &chat, "three").await;
    for viewer in &mut bobs {
        let last = ends(viewer).await.expect("bob is told");
        assert_eq!(first_code(&last), "UNAUTHENTICATED", "{last}");
    }
    let mut over_ws = Vec::new();
    while let Some(message) = ws.next_for("chat", Duration::from_secs(10)).await {
        let payload = message["payload"].clone();
        let ended = payload["errors"].is_array();
        over_ws.push(payload);
        if ended {
            break;
        }
    }
    let told = over_ws.last().expect("bob's WebSocket is told");
    assert_eq!(first_code(told), "UNAUTHENTICATED", "{over_ws:?}");
    assert_eq!(
        texts_until(&mut alices, "three").await,
        ["MEMBER_REMOVED", "two", "three"]
    );
    drop(alices);
    drop(bobs);
    drop(carols);
    ws.close().await;
    chat_gauge_reaches(&p, 0.0).await;
}
