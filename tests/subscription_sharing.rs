//! The router's subscriptions to a subgraph share one WebSocket (the engine's pool), and every operation on
//! it still runs as its own caller: a non-member is refused, an anonymous subscriber stays anonymous, the
//! subgraph refuses a forged router key (4403) and ignores claims a client names itself. Alone in its binary:
//! it reads the chat subgraph's connection gauge, which in-process subgraphs of parallel tests would share.

use parley_harness as support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{direct_chat, Account, Platform, WsClient};

const MESSAGE_ADDED: &str =
    "subscription($c: ID!) { messageAdded(chatId: $c) { id text author { nickname } } }";

async fn send(p: &Platform, who: &Account, chat: &str, text: &str) {
    p.ok(
        "mutation($c: ID!, $t: String) { sendMessage(chatId: $c, input: { text: $t }) { id } }",
        json!({ "c": chat, "t": text }),
        Some(&who.access),
    )
    .await;
}

/// Subscribes with `payload` (under a fresh id) and expects the answer to be a refusal coded `code`.
async fn refused_with(ws: &mut WsClient, payload: Value, code: &str) {
    let id = uuid::Uuid::now_v7().to_string();
    ws.subscribe_with(&id, payload).await;
    let refused = answer(ws, &id).await;
    assert!(
        format!("{refused}").contains(code),
        "expected {code}: {refused}"
    );
}

/// Claims naming `who`, as the router forwards them to a subgraph.
fn claims_of(who: &Account) -> Value {
    json!({
        "sub": who.id,
        "roles": ["user"],
        "sid": uuid::Uuid::now_v7().to_string(),
        "exp": chrono::Utc::now().timestamp() + 600,
    })
}

/// The text of the next `next`/`error` message of subscription `id`.
async fn answer(ws: &mut WsClient, id: &str) -> Value {
    ws.next_for(id, Duration::from_secs(10))
        .await
        .expect("an answer in time")
}

/// The value of `parley_ws_connections{subgraph="chat",caller=…}` on the chat subgraph (0 when absent).
async fn chat_ws_connections(p: &Platform, caller: &str) -> f64 {
    let text = p
        .http
        .get(format!("{}/metrics", p.subgraph_url("chat")))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find(|l| {
            l.starts_with("parley_ws_connections{") && l.contains(&format!("caller=\"{caller}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn subscribers_share_the_routers_connection_and_each_keeps_their_identity() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    let chat = direct_chat(&p, &alice, &bob).await;
    // Alice subscribes first: the router's connection to chat opens with her request's headers.
    let mut alice_ws = WsClient::connect(&p, Some(&alice.access)).await;
    alice_ws
        .subscribe("a", MESSAGE_ADDED, json!({ "c": chat }))
        .await;
    // Carol, not a member, is refused on that same connection: she is not taken for alice.
    let mut carol_ws = WsClient::connect(&p, Some(&carol.access)).await;
    let plain = json!({ "query": MESSAGE_ADDED, "variables": { "c": chat } });
    refused_with(&mut carol_ws, plain.clone(), "FORBIDDEN").await;
    // And an anonymous subscriber stays anonymous.
    let mut anonymous = WsClient::connect(&p, None).await;
    refused_with(&mut anonymous, plain, "UNAUTHENTICATED").await;
    // Naming a caller in the client's own `extensions` changes nothing: only the router's claims count.
    let naming_alice = json!({
        "query": MESSAGE_ADDED,
        "variables": { "c": chat },
        "extensions": { "parleyIdentity": claims_of(&alice) },
    });
    refused_with(&mut anonymous, naming_alice.clone(), "UNAUTHENTICATED").await;
    let mut bob_ws = WsClient::connect(&p, Some(&bob.access)).await;
    bob_ws
        .subscribe("b", MESSAGE_ADDED, json!({ "c": chat }))
        .await;
    // Subscriptions take effect asynchronously; send until bob's arrives.
    let mut got = None;
    for attempt in 0..20 {
        send(&p, &alice, &chat, &format!("hello {attempt}")).await;
        if let Some(message) = bob_ws.next_for("b", Duration::from_millis(500)).await {
            got = Some(message);
            break;
        }
    }
    let got = got.expect("bob gets alice's message");
    assert_eq!(
        got["payload"]["data"]["messageAdded"]["author"]["nickname"], "alice",
        "{got}"
    );
    let mine = answer(&mut alice_ws, "a").await;
    assert_eq!(
        mine["payload"]["data"]["messageAdded"]["author"]["nickname"],
        "alice"
    );
    // Four subscribers, one connection from the router to chat.
    assert_eq!(chat_ws_connections(&p, "router").await, 1.0);
    assert_eq!(chat_ws_connections(&p, "client").await, 0.0);

    // Straight at chat's `/ws`: a wrong router key is refused with 4403 …
    let chat_ws = format!("{}/ws", p.subgraph_url("chat").replacen("http", "ws", 1));
    let mut forged = WsClient::open_url(&chat_ws).await;
    forged
        .send_raw(
            &json!({ "type": "connection_init", "payload": { "x-parley-router-key": "guess" } })
                .to_string(),
        )
        .await;
    assert_eq!(forged.close_code(Duration::from_secs(10)).await, Some(4403));
    // … and a client's own connection cannot name a caller: claims in `extensions` are ignored.
    let mut direct = WsClient::connect_with(&chat_ws, json!({})).await;
    refused_with(&mut direct, naming_alice, "UNAUTHENTICATED").await;
}

/// The subgraphs' graphql-transport-ws server keeps the protocol: each breach closes with its code.
#[tokio::test]
async fn the_subgraph_websocket_closes_on_protocol_errors() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let chat_ws = format!("{}/ws", p.subgraph_url("chat").replacen("http", "ws", 1));
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { chatEvents { kind } }" } });

    // Subscribing before `connection_init`: 4401.
    let mut early = WsClient::open_url(&chat_ws).await;
    early.send_raw(&subscribe.to_string()).await;
    assert_eq!(early.close_code(Duration::from_secs(10)).await, Some(4401));
    // Something that is not a protocol message: 4400.
    let mut garbled = WsClient::open_url(&chat_ws).await;
    garbled.send_raw("{\"type\": \"hello\"}").await;
    assert_eq!(
        garbled.close_code(Duration::from_secs(10)).await,
        Some(4400)
    );
    // A bad token in `connection_init`: 4403.
    let mut forged = WsClient::open_url(&chat_ws).await;
    forged
        .send_raw(
            &json!({ "type": "connection_init", "payload": { "Authorization": "Bearer nope" } })
                .to_string(),
        )
        .await;
    assert_eq!(forged.close_code(Duration::from_secs(10)).await, Some(4403));
    // A second `connection_init`: 4429.
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", alice.access) } });
    let mut twice = WsClient::connect_with(&chat_ws, init["payload"].clone()).await;
    twice.send_raw(&init.to_string()).await;
    assert_eq!(twice.close_code(Duration::from_secs(10)).await, Some(4429));
    // The same operation id twice while the first runs: 4409. Before that, the first one is served.
    let mut duplicate = WsClient::connect_with(&chat_ws, init["payload"].clone()).await;
    duplicate.send_raw(&subscribe.to_string()).await;
    duplicate
        .send_raw(&json!({ "type": "ping" }).to_string())
        .await;
    duplicate.send_raw(&subscribe.to_string()).await;
    assert_eq!(
        duplicate.close_code(Duration::from_secs(10)).await,
        Some(4409)
    );
}
