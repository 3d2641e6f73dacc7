//! Chat through the router, as a client would: direct and group chats, live messages over WebSocket and
//! SSE with their authors' cards (provided by chat; the rest of a user comes from users), receipts, typing,
//! idempotent sends, history paging, and every refusal (non-members, non-authors, blocked users, missing
//! tokens).

use parley_harness as support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{
    codes, direct_chat, eventually, sse_next, sse_subscribe, Account, Platform, WsClient,
};

const MESSAGE_ADDED: &str = "subscription($c: ID!) { messageAdded(chatId: $c) { id seq kind text author { nickname avatarUrl } } }";
const CHAT_EVENTS: &str =
    "subscription { chatEvents { kind chatId seq typing user { nickname } message { text } } }";
const SEND: &str = "mutation($c: ID!, $t: String, $k: String) { sendMessage(chatId: $c, input: { text: $t, clientMessageId: $k }) { id seq text clientMessageId } }";

async fn send(p: &Platform, who: &Account, chat: &str, text: &str) -> Value {
    p.ok(SEND, json!({ "c": chat, "t": text }), Some(&who.access))
        .await["sendMessage"]
        .clone()
}

async fn unread(p: &Platform, who: &Account, chat: &str) -> i64 {
    p.ok(
        "query($c: ID!) { chat(id: $c) { unreadCount } }",
        json!({ "c": chat }),
        Some(&who.access),
    )
    .await["chat"]["unreadCount"]
        .as_i64()
        .expect("count")
}

/// The next `next` payload's data of subscription `id`.
async fn next_data(ws: &mut WsClient, id: &str) -> Value {
    let message = ws
        .next_for(id, Duration::from_secs(10))
        .await
        .expect("event in time");
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"].clone()
}

/// The next chatEvents event of a kind, skipping others.
async fn next_event_of(ws: &mut WsClient, id: &str, kind: &str) -> Value {
    loop {
        let data = next_data(ws, id).await;
        if data["chatEvents"]["kind"] == kind {
            return data["chatEvents"].clone();
        }
    }
}

async fn direct_flow(p: &Platform) {
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = direct_chat(p, &alice, &bob).await;
    let again = direct_chat(p, &alice, &bob).await;
    assert_eq!(chat, again, "one direct chat per pair");
    let from_bob = direct_chat(p, &bob, &alice).await;
    assert_eq!(chat, from_bob, "whoever opens it");

    let mut bob_ws = WsClient::connect(p, Some(&bob.access)).await;
    bob_ws
        .subscribe("m", MESSAGE_ADDED, json!({ "c": chat }))
        .await;
    let mut alice_ws = WsClient::connect(p, Some(&alice.access)).await;
    alice_ws.subscribe("e", CHAT_EVENTS, json!({})).await;
    let mut sse = sse_subscribe(p, MESSAGE_ADDED, json!({ "c": chat }), Some(&bob.access)).await;
    let mut buffer = String::new();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sent = send(p, &alice, &chat, "hello bob").await;
    assert_eq!(sent["seq"], 1);
    let live = next_data(&mut bob_ws, "m").await;
    assert_eq!(live["messageAdded"]["text"], "hello bob");
    assert_eq!(live["messageAdded"]["author"]["nickname"], "alice");
    assert_eq!(live["messageAdded"]["seq"], 1);
    let over_sse = sse_next(&mut sse, &mut buffer, Duration::from_secs(10))
        .await
        .expect("sse event");
    assert_eq!(
        over_sse["data"]["messageAdded"]["text"], "hello bob",
        "{over_sse}"
    );
    assert_eq!(
        over_sse["data"]["messageAdded"]["author"]["nickname"],
        "alice"
    );
    let echoed = next_event_of(&mut alice_ws, "e", "MESSAGE_ADDED").await;
    assert_eq!(echoed["message"]["text"], "hello bob");

    assert_eq!(unread(p, &bob, &chat).await, 1);
    let delivered = p
        .ok(
            "mutation($c: ID!, $m: ID!) { markDelivered(chatId: $c, messageId: $m) }",
            json!({ "c": chat, "m": sent["id"] }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(delivered["markDelivered"], true);
    let receipt = next_event_of(&mut alice_ws, "e", "DELIVERED").await;
    assert_eq!(receipt["user"]["nickname"], "bob");
    assert_eq!(unread(p, &bob, &chat).await, 1, "delivered is not read");
    assert_eq!(
        unread(p, &alice, &chat).await,
        0,
        "your own messages are read"
    );
    let read = p
        .ok(
            "mutation($c: ID!, $m: ID!) { markRead(chatId: $c, messageId: $m) }",
            json!({ "c": chat, "m": sent["id"] }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(read["markRead"], true);
    let receipt = next_event_of(&mut alice_ws, "e", "READ").await;
    assert_eq!(receipt["user"]["nickname"], "bob");
    assert_eq!(receipt["seq"], 1);
    assert_eq!(unread(p, &bob, &chat).await, 0);
    let again = p
        .ok(
            "mutation($c: ID!, $m: ID!) { markRead(chatId: $c, messageId: $m) }",
            json!({ "c": chat, "m": sent["id"] }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(again["markRead"], false, "a read marker only moves forward");
    let read_by = p
        .ok(
            "query($c: ID!) { chat(id: $c) { lastMessage { text readBy { nickname } } } }",
            json!({ "c": chat }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(
        read_by["chat"]["lastMessage"],
        json!({ "text": "hello bob", "readBy": [{ "nickname": "bob" }] })
    );

    // Lists: most recently active first, with the last message.
    let listed = p
        .ok(
            "{ chats(first: 10) { edges { node { id kind lastMessage { text } } } } }",
            json!({}),
            Some(&bob.access),
        )
        .await;
    assert_eq!(listed["chats"]["edges"][0]["node"]["id"], chat.as_str());
    assert_eq!(listed["chats"]["edges"][0]["node"]["kind"], "DIRECT");
    bob_ws.close().await;
    alice_ws.close().await;
}

#[tokio::test]
async fn direct_chat_live_messages_and_receipts() {
    direct_flow(&Platform::start().await).await;
}

#[tokio::test]
async fn direct_chat_live_messages_and_receipts_on_postgres() {
    direct_flow(&Platform::start_with(support::Store::Postgres).await).await;
}

#[tokio::test]
async fn groups_members_and_refusals() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    let mallory = p.register("mallory").await;
    // Make sure chat knows every account before naming them.
    direct_chat(&p, &alice, &mallory).await;
    direct_chat(&p, &alice, &carol).await;
    let group = p
        .ok(
            "mutation($m: [ID!]!) { createGroupChat(title: \"Trip\", memberIds: $m) { id kind title memberships { role user { nickname } } } }",
            json!({ "m": [bob.id] }),
            Some(&alice.access),
        )
        .await["createGroupChat"]
        .clone();
    let chat = group["id"].as_str().expect("id").to_string();
    assert_eq!(group["kind"], "GROUP");
    assert_eq!(group["memberships"].as_array().expect("members").len(), 2);

    // Only admins manage members.
    let (_, body) = p
        .gql(
            "mutation($c: ID!, $u: ID!) { addChatMember(chatId: $c, userId: $u) { id } }",
            json!({ "c": chat, "u": carol.id }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    // Carol follows all her chats; the group she is added to joins her stream.
    let mut carol_ws = WsClient::connect(&p, Some(&carol.access)).await;
    carol_ws.subscribe("e", CHAT_EVENTS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.ok(
        "mutation($c: ID!, $u: ID!) { addChatMember(chatId: $c, userId: $u) { id } }",
        json!({ "c": chat, "u": carol.id }),
        Some(&alice.access),
    )
    .await;
    let added = next_event_of(&mut carol_ws, "e", "MEMBER_ADDED").await;
    assert_eq!(added["user"]["nickname"], "carol");
    send(&p, &bob, &chat, "welcome carol").await;
    let welcome = next_event_of(&mut carol_ws, "e", "MESSAGE_ADDED").await;
    assert_eq!(welcome["message"]["text"], "welcome carol");
    carol_ws.close().await;
    send(&p, &carol, &chat, "hi all").await;
    p.ok(
        "mutation($c: ID!, $u: ID!) { removeChatMember(chatId: $c, userId: $u) { id } }",
        json!({ "c": chat, "u": bob.id }),
        Some(&alice.access),
    )
    .await;
    let history = p
        .ok(
            "query($c: ID!) { chat(id: $c) { members { nickname } messages(first: 10) { edges { node { seq kind text author { nickname } subject { nickname } } } } } }",
            json!({ "c": chat }),
            Some(&carol.access),
        )
        .await;
    let nodes: Vec<Value> = history["chat"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert_eq!(
        nodes,
        vec![
            json!({ "seq": 1, "kind": "SYSTEM", "text": "MEMBER_ADDED", "author": { "nickname": "alice" }, "subject": { "nickname": "carol" } }),
            json!({ "seq": 2, "kind": "TEXT", "text": "welcome carol", "author": { "nickname": "bob" }, "subject": null }),
            json!({ "seq": 3, "kind": "TEXT", "text": "hi all", "author": { "nickname": "carol" }, "subject": null }),
            json!({ "seq": 4, "kind": "SYSTEM", "text": "MEMBER_REMOVED", "author": { "nickname": "alice" }, "subject": { "nickname": "bob" } }),
        ]
    );
    let mut members: Vec<String> = history["chat"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["nickname"].as_str().expect("nick").to_string())
        .collect();
    members.sort();
    assert_eq!(members, ["alice", "carol"]);

    // A removed member and an outsider are refused alike, for queries, sends and subscriptions; a chat that
    // does not exist gets the same answer.
    for outsider in [&bob, &mallory] {
        let (_, body) = p
            .gql(
                "query($c: ID!) { chat(id: $c) { title } }",
                json!({ "c": chat }),
                Some(&outsider.access),
            )
            .await;
        assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
        let (_, body) = p
            .gql(
                SEND,
                json!({ "c": chat, "t": "let me in" }),
                Some(&outsider.access),
            )
            .await;
        assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
        let mut ws = WsClient::connect(&p, Some(&outsider.access)).await;
        ws.subscribe("x", MESSAGE_ADDED, json!({ "c": chat })).await;
        // The refusal comes as the operation's errors, with no data.
        let refused = ws
            .next_for("x", Duration::from_secs(10))
            .await
            .expect("answer");
        assert!(refused.to_string().contains("FORBIDDEN"), "{refused}");
        assert_eq!(refused["payload"]["data"], Value::Null, "{refused}");
        ws.close().await;
    }
    let (_, body) = p
        .gql(
            "query($c: ID!) { chat(id: $c) { title } }",
            json!({ "c": uuid::Uuid::now_v7().to_string() }),
            Some(&mallory.access),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    let (_, body) = p
        .gql(
            "query($c: ID!) { chat(id: $c) { title } }",
            json!({ "c": chat }),
            None,
        )
        .await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"], "{body}");

    // Settings are the caller's own; admins promote members.
    let settings = p
        .ok(
            "mutation($c: ID!) { updateChatSettings(chatId: $c, input: { mutedUntil: \"2099-01-01T00:00:00Z\", notificationLevel: MENTIONS }) { muted notificationLevel } }",
            json!({ "c": chat }),
            Some(&carol.access),
        )
        .await;
    assert_eq!(
        settings["updateChatSettings"],
        json!({ "muted": true, "notificationLevel": "MENTIONS" })
    );
    let alices = p
        .ok(
            "query($c: ID!) { chat(id: $c) { mySettings { muted notificationLevel } } }",
            json!({ "c": chat }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(
        alices["chat"]["mySettings"],
        json!({ "muted": false, "notificationLevel": "ALL" })
    );
    let promoted = p
        .ok(
            "mutation($c: ID!, $u: ID!) { setChatAdmin(chatId: $c, userId: $u, admin: true) { memberships { role user { nickname } } } }",
            json!({ "c": chat, "u": carol.id }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(
        promoted["setChatAdmin"]["memberships"],
        json!([{ "role": "ADMIN", "user": { "nickname": "alice" } }, { "role": "ADMIN", "user": { "nickname": "carol" } }])
    );
    p.ok(
        "mutation($c: ID!, $u: ID!) { setChatAdmin(chatId: $c, userId: $u, admin: false) { id } }",
        json!({ "c": chat, "u": carol.id }),
        Some(&alice.access),
    )
    .await;

    // Leaving: the last admin hands over to the longest-standing member.
    p.ok(
        "mutation($c: ID!) { leaveChat(chatId: $c) }",
        json!({ "c": chat }),
        Some(&alice.access),
    )
    .await;
    let after = p
        .ok(
            "query($c: ID!) { chat(id: $c) { memberships { role user { nickname } } lastMessage { text subject { nickname } } } }",
            json!({ "c": chat }),
            Some(&carol.access),
        )
        .await;
    assert_eq!(
        after["chat"]["memberships"],
        json!([{ "role": "ADMIN", "user": { "nickname": "carol" } }])
    );
    assert_eq!(after["chat"]["lastMessage"]["text"], "MEMBER_LEFT");

    // Bad inputs.
    for (query, vars, code) in [
        ("mutation { createGroupChat(title: \"  \", memberIds: []) { id } }", json!({}), "BAD_USER_INPUT"),
        (SEND, json!({ "c": chat, "t": "" }), "BAD_USER_INPUT"),
        (SEND, json!({ "c": "not-an-id", "t": "x" }), "BAD_USER_INPUT"),
        (
            "mutation($c: ID!) { sendMessage(chatId: $c, input: { kind: SYSTEM, text: \"x\" }) { id } }",
            json!({ "c": chat }),
            "BAD_USER_INPUT",
        ),
        (
            "mutation($c: ID!) { sendMessage(chatId: $c, input: { kind: IMAGE }) { id } }",
            json!({ "c": chat }),
            "BAD_USER_INPUT",
        ),
        (
            "mutation($u: ID!) { createDirectChat(userId: $u) { id } }",
            json!({ "u": uuid::Uuid::now_v7().to_string() }),
            "NOT_FOUND",
        ),
        (
            "mutation($u: ID!) { createDirectChat(userId: $u) { id } }",
            json!({ "u": carol.id }),
            "BAD_USER_INPUT",
        ),
    ] {
        let (_, body) = p.gql(query, vars, Some(&carol.access)).await;
        assert_eq!(codes(&body), [code], "{query}: {body}");
    }
}

#[tokio::test]
async fn sends_are_idempotent_and_history_pages_both_ways() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = direct_chat(&p, &alice, &bob).await;

    // The same clientMessageId, sent five times at once and once more later: one message.
    let sends = (0..5).map(|_| {
        p.gql(
            SEND,
            json!({ "c": chat, "t": "once", "k": "client-1" }),
            Some(&alice.access),
        )
    });
    let answers = futures::future::join_all(sends).await;
    let ids: Vec<Value> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["data"]["sendMessage"]["id"].clone()
        })
        .collect();
    assert!(
        ids.iter().all(|id| id == &ids[0] && id.is_string()),
        "{ids:?}"
    );
    let retried = p
        .ok(
            SEND,
            json!({ "c": chat, "t": "once", "k": "client-1" }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(retried["sendMessage"]["id"], ids[0]);
    assert_eq!(retried["sendMessage"]["clientMessageId"], "client-1");

    // Replies, media messages and `message(id)`; a reply to a message of another chat is refused.
    let first_id = ids[0].as_str().expect("id").to_string();
    // A message names only its sender's checked upload: not a made-up id, not someone else's.
    let media = p.upload_image(&bob, "MESSAGE").await;
    let alices = p.upload_image(&alice, "MESSAGE").await;
    const IMAGE: &str = "mutation($c: ID!, $m: ID!) { sendMessage(chatId: $c, input: { kind: IMAGE, mediaId: $m }) { id } }";
    for other in [uuid::Uuid::now_v7().to_string(), alices] {
        let (_, refused) = p
            .gql(IMAGE, json!({ "c": chat, "m": other }), Some(&bob.access))
            .await;
        assert_eq!(codes(&refused), ["BAD_USER_INPUT"], "{refused}");
    }
    // Chat learns of bob's upload from media's event; then the message goes.
    let reply = support::eventually("chat knows the upload", || async {
        let (_, body) = p
            .gql(
                "mutation($c: ID!, $r: ID!, $m: ID!) { sendMessage(chatId: $c, input: { kind: IMAGE, mediaId: $m, replyToId: $r }) { id kind mediaId replyTo { text } } }",
                json!({ "c": chat, "r": first_id, "m": media }),
                Some(&bob.access),
            )
            .await;
        body["data"]["sendMessage"].is_object().then_some(body["data"].clone())
    })
    .await;
    assert_eq!(reply["sendMessage"]["kind"], "IMAGE");
    assert_eq!(reply["sendMessage"]["mediaId"], media.as_str());
    assert_eq!(reply["sendMessage"]["replyTo"]["text"], "once");
    let reply_id = reply["sendMessage"]["id"].as_str().expect("id").to_string();
    let read = p
        .ok(
            "query($m: ID!) { message(id: $m) { seq author { nickname } } }",
            json!({ "m": reply_id }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(
        read["message"],
        json!({ "seq": 2, "author": { "nickname": "bob" } })
    );
    let carol = p.register("carol").await;
    let (_, body) = p
        .gql(
            "query($m: ID!) { message(id: $m) { seq } }",
            json!({ "m": reply_id }),
            Some(&carol.access),
        )
        .await;
    assert_eq!(
        codes(&body),
        ["NOT_FOUND"],
        "outsiders learn nothing: {body}"
    );
    let other = direct_chat(&p, &alice, &carol).await;
    let (_, body) = p
        .gql(
            "mutation($c: ID!, $r: ID!) { sendMessage(chatId: $c, input: { text: \"x\", replyToId: $r }) { id } }",
            json!({ "c": other, "r": first_id }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&body), ["NOT_FOUND"], "{body}");
    let (_, body) = p
        .gql(
            "mutation($c: ID!) { leaveChat(chatId: $c) }",
            json!({ "c": chat }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(
        codes(&body),
        ["BAD_USER_INPUT"],
        "a direct chat cannot be left: {body}"
    );

    for i in 3..=23 {
        let who = if i % 2 == 0 { &bob } else { &alice };
        send(&p, who, &chat, &format!("m{i}")).await;
    }
    // Backward from the newest (the default), 5 at a time: every message once, in order.
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = p
            .ok(
                "query($c: ID!, $b: String) { chat(id: $c) { messages(last: 5, before: $b) { edges { node { seq } } pageInfo { hasPreviousPage startCursor } } } }",
                json!({ "c": chat, "b": before }),
                Some(&bob.access),
            )
            .await;
        let conn = &page["chat"]["messages"];
        let seqs: Vec<i64> = conn["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["seq"].as_i64().expect("seq"))
            .collect();
        seen.splice(0..0, seqs);
        if conn["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = conn["pageInfo"]["startCursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen, (1..=23).collect::<Vec<i64>>());
    // Forward, and the resync form.
    let mut forward = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = p
            .ok(
                "query($c: ID!, $a: String) { chat(id: $c) { messages(first: 7, after: $a) { edges { node { seq } } pageInfo { hasNextPage endCursor } } } }",
                json!({ "c": chat, "a": after }),
                Some(&alice.access),
            )
            .await;
        let conn = &page["chat"]["messages"];
        forward.extend(
            conn["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"]["seq"].as_i64().expect("seq")),
        );
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    assert_eq!(forward, (1..=23).collect::<Vec<i64>>());
    let resync = p
        .ok(
            "query($c: ID!) { chat(id: $c) { lastSeq messages(afterSeq: 20) { edges { node { seq } } } } }",
            json!({ "c": chat }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(resync["chat"]["lastSeq"], 23);
    assert_eq!(
        resync["chat"]["messages"]["edges"],
        json!([{ "node": { "seq": 21 } }, { "node": { "seq": 22 } }, { "node": { "seq": 23 } }])
    );
}

#[tokio::test]
async fn edits_deletes_typing_and_blocks() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = direct_chat(&p, &alice, &bob).await;
    let mut bob_ws = WsClient::connect(&p, Some(&bob.access)).await;
    bob_ws.subscribe("e", CHAT_EVENTS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = send(&p, &alice, &chat, "draft").await;
    let id = first["id"].as_str().expect("id").to_string();

    // Non-authors are refused and nothing changes.
    let (_, body) = p
        .gql(
            "mutation($m: ID!) { editMessage(id: $m, text: \"hacked\") { id } }",
            json!({ "m": id }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    let (_, body) = p
        .gql(
            "mutation($m: ID!) { deleteMessage(id: $m, forEveryone: true) }",
            json!({ "m": id }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    let edited = p
        .ok(
            "mutation($m: ID!) { editMessage(id: $m, text: \"final\") { text editedAt } }",
            json!({ "m": id }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(edited["editMessage"]["text"], "final");
    assert!(edited["editMessage"]["editedAt"].is_string());
    let event = next_event_of(&mut bob_ws, "e", "MESSAGE_EDITED").await;
    assert_eq!(event["message"]["text"], "final");

    // Typing arrives, then expires without renewal.
    p.ok(
        "mutation($c: ID!) { setTyping(chatId: $c, typing: true) }",
        json!({ "c": chat }),
        Some(&alice.access),
    )
    .await;
    let typing = next_event_of(&mut bob_ws, "e", "TYPING").await;
    assert_eq!(typing["typing"], true);
    assert_eq!(typing["user"]["nickname"], "alice");
    let now = p
        .ok(
            "query($c: ID!) { chat(id: $c) { typing { nickname } } }",
            json!({ "c": chat }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(now["chat"]["typing"], json!([{ "nickname": "alice" }]));
    let stopped = next_event_of(&mut bob_ws, "e", "TYPING").await;
    assert_eq!(stopped["typing"], false, "expired");
    let now = p
        .ok(
            "query($c: ID!) { chat(id: $c) { typing { nickname } } }",
            json!({ "c": chat }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(now["chat"]["typing"], json!([]));

    // Delete for me hides it from me only; for everyone leaves a tombstone.
    p.ok(
        "mutation($m: ID!) { deleteMessage(id: $m, forEveryone: false) }",
        json!({ "m": id }),
        Some(&bob.access),
    )
    .await;
    let count = |who: &Account| {
        let who = who.access.clone();
        let p = &p;
        let chat = chat.clone();
        async move {
            p.ok("query($c: ID!) { chat(id: $c) { messages { edges { node { text deletedAt } } } } }", json!({ "c": chat }), Some(&who))
                .await["chat"]["messages"]["edges"]
                .clone()
        }
    };
    assert_eq!(count(&bob).await, json!([]));
    assert_eq!(count(&alice).await.as_array().expect("edges").len(), 1);
    p.ok(
        "mutation($m: ID!) { deleteMessage(id: $m, forEveryone: true) }",
        json!({ "m": id }),
        Some(&alice.access),
    )
    .await;
    let tomb = count(&alice).await;
    assert_eq!(tomb[0]["node"]["text"], Value::Null);
    assert!(tomb[0]["node"]["deletedAt"].is_string());
    let event = next_event_of(&mut bob_ws, "e", "MESSAGE_DELETED").await;
    assert_eq!(event["message"]["text"], Value::Null);

    // A block (social's event) stops sends both ways, and new direct chats.
    p.ok(
        "mutation($u: ID!) { block(userId: $u) }",
        json!({ "u": alice.id }),
        Some(&bob.access),
    )
    .await;
    eventually("chat learns the block", || async {
        let (_, body) = p
            .gql(
                SEND,
                json!({ "c": chat, "t": "still there?" }),
                Some(&alice.access),
            )
            .await;
        (codes(&body) == ["FORBIDDEN"]).then_some(())
    })
    .await;
    let (_, body) = p
        .gql(SEND, json!({ "c": chat, "t": "hm" }), Some(&bob.access))
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    let (_, body) = p
        .gql(
            "mutation($u: ID!) { createDirectChat(userId: $u) { id } }",
            json!({ "u": bob.id }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    bob_ws.close().await;
}

#[tokio::test]
async fn subscriptions_need_a_valid_token() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = direct_chat(&p, &alice, &bob).await;
    // No token: refused.
    let mut ws = WsClient::connect(&p, None).await;
    ws.subscribe("a", MESSAGE_ADDED, json!({ "c": chat })).await;
    let answer = ws.next_for("a", Duration::from_secs(10)).await;
    let text = format!("{answer:?}");
    assert!(text.contains("UNAUTHENTICATED"), "{text}");
    ws.close().await;
    // A tampered token: refused.
    // (A change inside the signature: its last character also carries padding bits some decoders ignore.)
    let mut tampered = alice.access.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let mut ws = WsClient::connect(&p, Some(&tampered)).await;
    ws.subscribe("b", MESSAGE_ADDED, json!({ "c": chat })).await;
    let answer = ws.next_for("b", Duration::from_secs(10)).await;
    let text = format!("{answer:?}");
    assert!(text.contains("UNAUTHENTICATED"), "{text}");
}

/// Every subgraph a query plan fetches from (the router's `extensions.queryPlan`, developer mode).
fn planned_services(plan: &Value, into: &mut std::collections::BTreeSet<String>) {
    match plan {
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("serviceName") {
                into.insert(name.clone());
            }
            map.values().for_each(|v| planned_services(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| planned_services(v, into)),
        _ => {}
    }
}

/// The subgraphs the router would ask for `query`, from a dry run (plan only, nothing executed).
async fn services_for(p: &Platform, who: &Account, query: &str, variables: Value) -> Vec<String> {
    let response = p
        .http
        .post(format!("{}/graphql", p.router_url))
        .bearer_auth(&who.access)
        .header("hive-expose-query-plan", "dry-run")
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("router reachable");
    let body: Value = response.json().await.expect("json");
    let plan = &body["extensions"]["queryPlan"];
    assert!(plan.is_object(), "a plan: {body}");
    let mut services = std::collections::BTreeSet::new();
    planned_services(plan, &mut services);
    services.into_iter().collect()
}

#[tokio::test]
async fn chat_provides_authors_cards_and_follows_profile_changes() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let (avatar, _) = p.set_avatar(&alice).await;
    let avatar = avatar.as_str();
    let chat = direct_chat(&p, &alice, &bob).await;

    // The router answers a message's author card from chat alone, live or from history; other users' fields
    // still come from users.
    let history = "query($c: ID!) { chat(id: $c) { messages(last: 10) { nodes { text author { nickname avatarUrl } } } } }";
    let vars = json!({ "c": chat });
    assert_eq!(
        services_for(&p, &bob, history, vars.clone()).await,
        ["chat"]
    );
    assert_eq!(
        services_for(&p, &bob, MESSAGE_ADDED, vars.clone()).await,
        ["chat"]
    );
    let members = "query($c: ID!) { chat(id: $c) { members { nickname } } }";
    assert_eq!(
        services_for(&p, &bob, members, vars.clone()).await,
        ["chat", "users"]
    );

    // Chat learned the avatar from users' event (it may take a moment), then a live message carries it.
    send(&p, &alice, &chat, "before").await;
    eventually("chat learns alice's avatar", || async {
        let data = p.ok(history, vars.clone(), Some(&bob.access)).await;
        let nodes = data["chat"]["messages"]["nodes"].as_array().cloned()?;
        (nodes.last()?["author"]["avatarUrl"] == avatar).then_some(())
    })
    .await;
    let mut bob_ws = WsClient::connect(&p, Some(&bob.access)).await;
    bob_ws.subscribe("m", MESSAGE_ADDED, vars.clone()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    send(&p, &alice, &chat, "hi").await;
    let live = next_data(&mut bob_ws, "m").await;
    assert_eq!(
        live["messageAdded"]["author"],
        json!({ "nickname": "alice", "avatarUrl": avatar })
    );

    // A new nickname and no avatar: history shows the current card once chat has heard of the change, and
    // so do later live messages.
    p.ok(
        "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { id } }",
        json!({ "i": { "nickname": "alicia", "avatarId": "" } }),
        Some(&alice.access),
    )
    .await;
    eventually("chat learns the new card", || async {
        let data = p.ok(history, vars.clone(), Some(&bob.access)).await;
        let nodes = data["chat"]["messages"]["nodes"].as_array().cloned()?;
        nodes
            .iter()
            .all(|n| n["author"] == json!({ "nickname": "alicia", "avatarUrl": null }))
            .then_some(())
    })
    .await;
    send(&p, &alice, &chat, "new name").await;
    let live = next_data(&mut bob_ws, "m").await;
    assert_eq!(live["messageAdded"]["text"], "new name");
    assert_eq!(
        live["messageAdded"]["author"],
        json!({ "nickname": "alicia", "avatarUrl": null })
    );
    bob_ws.close().await;
}

/// What the chat subgraph's event log (`GET /events`, with the router key) holds now, as text.
async fn event_log(p: &Platform) -> String {
    reqwest::Client::new()
        .get(format!(
            "{}/events?after=0&limit=500",
            p.subgraph_url("chat")
        ))
        .header("x-parley-router-key", &p.router_key)
        .send()
        .await
        .expect("chat")
        .text()
        .await
        .expect("log")
}

/// An edited message's old text and a deleted message's text leave the event log: no reader of it (a
/// consumer catching up, an operator) gets them back.
#[tokio::test]
async fn withdrawn_text_leaves_the_event_log() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = direct_chat(&p, &alice, &bob).await;
    let edited = send(&p, &alice, &chat, "first draft with a typo").await;
    let deleted = send(&p, &alice, &chat, "something I regret").await;
    send(&p, &alice, &chat, "this one stays").await;
    support::eventually("the log has them", || async {
        event_log(&p)
            .await
            .contains("something I regret")
            .then_some(())
    })
    .await;
    p.ok(
        "mutation($id: ID!) { editMessage(id: $id, text: \"final text\") { id } }",
        json!({ "id": edited["id"] }),
        Some(&alice.access),
    )
    .await;
    p.ok(
        "mutation($id: ID!) { deleteMessage(id: $id, forEveryone: true) }",
        json!({ "id": deleted["id"] }),
        Some(&alice.access),
    )
    .await;
    support::eventually("the edit and the delete are in the log", || async {
        let log = event_log(&p).await;
        (log.contains("MessageEdited") && log.contains("MessageDeleted")).then_some(log)
    })
    .await;
    let log = event_log(&p).await;
    assert!(!log.contains("first draft"), "an edited message's old text");
    assert!(!log.contains("I regret"), "a deleted message's text");
    assert!(log.contains("final text") && log.contains("this one stays"));
}
