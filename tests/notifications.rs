//! Notifications through the router, as a client uses them: live `notificationAdded` over WebSocket and SSE,
//! grouping, each kind from the event that makes it, the visibility rule (blocks), read state, settings, the
//! digest mail at a real SMTP server with its unsubscribe link, and Web Push to a push service on loopback
//! that decrypts what it receives with the subscription's private key and checks the VAPID signature.

use parley_harness as support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use support::{
    codes, create_post, direct_chat, eventually, eventually_within, sse_next, sse_subscribe,
    Account, Options, Platform, WsClient,
};
use web_push_native::jwt_simple::prelude::*;
use web_push_native::p256;

const ADDED: &str = "subscription { notificationAdded { id kind count read actors { nickname } post { id title } } }";
const LIST: &str = "query($u: Boolean) { notifications(unreadOnly: $u, first: 20) { edges { node { id kind count read actors { nickname } post { id } comment { id body } chat { id } message { id text } milestone } } } unreadNotificationCount }";

/// The notifications subgraph's settings for these tests: the test command's SMTP server, a digest each
/// second, messages held a second, the loopback push service allowed.
fn settings(smtp: Option<&parley_kit::testing::SmtpServer>) -> toml::Table {
    let mut t = toml::Table::new();
    if let Some(smtp) = smtp {
        t.insert("smtp_url".into(), smtp.url.clone().into());
    }
    t.insert("digest_seconds".into(), 1.into());
    t.insert("message_grace_ms".into(), 1000.into());
    t.insert("push_allow_private".into(), true.into());
    t
}

async fn start(smtp: Option<&parley_kit::testing::SmtpServer>) -> Platform {
    Platform::start_opts(Options {
        notifications: Some(settings(smtp)),
        ..Default::default()
    })
    .await
}

async fn list(p: &Platform, who: &Account) -> Value {
    p.ok(LIST, json!({}), Some(&who.access)).await
}

fn nodes(data: &Value) -> Vec<Value> {
    data["notifications"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// `who`'s notifications of `kind`, once there are `n`.
async fn wait_kind(p: &Platform, who: &Account, kind: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} {kind}"), || async {
        let of_kind: Vec<Value> = nodes(&list(p, who).await)
            .into_iter()
            .filter(|x| x["kind"] == kind)
            .collect();
        (of_kind.len() == n).then_some(of_kind)
    })
    .await
}

async fn comment(
    p: &Platform,
    who: &Account,
    post: &str,
    body: &str,
    parent: Option<&str>,
) -> Value {
    let data = p
        .gql(
            "mutation($p: ID!, $b: String!, $r: ID) { createComment(postId: $p, body: $b, parentId: $r) { id } }",
            json!({ "p": post, "b": body, "r": parent }),
            Some(&who.access),
        )
        .await
        .1;
    data
}

async fn comment_id(
    p: &Platform,
    who: &Account,
    post: &str,
    body: &str,
    parent: Option<&str>,
) -> String {
    let data = comment(p, who, post, body, parent).await;
    data["data"]["createComment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("comment: {data}"))
        .to_string()
}

async fn next_added(ws: &mut WsClient) -> Value {
    let message = ws
        .next_for("n", Duration::from_secs(10))
        .await
        .expect("notificationAdded in time");
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["notificationAdded"].clone()
}

#[tokio::test]
async fn comments_arrive_live_grouped_and_never_across_a_block() {
    let p = start(None).await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    let eve = p.register("eve").await;
    let post = create_post(&p, &alice, "Hello", None).await;

    let mut ws = WsClient::connect(&p, Some(&alice.access)).await;
    ws.subscribe("n", ADDED, json!({})).await;
    let mut sse = sse_subscribe(&p, ADDED, json!({}), Some(&alice.access)).await;
    let mut buffer = String::new();
    // The subscriptions are open once a first event reaches them; comment until it does.
    comment_id(&p, &bob, &post, "first!", None).await;
    let first = next_added(&mut ws).await;
    assert_eq!(first["kind"], "COMMENT");
    assert_eq!(first["count"], 1);
    assert_eq!(first["actors"], json!([{ "nickname": "bob" }]));
    assert_eq!(
        first["post"]["title"], "Hello",
        "the post resolved by posts"
    );
    let over_sse = sse_next(&mut sse, &mut buffer, Duration::from_secs(10))
        .await
        .expect("SSE event");
    assert_eq!(over_sse["data"]["notificationAdded"]["kind"], "COMMENT");
    assert_eq!(list(&p, &alice).await["unreadNotificationCount"], 1);

    for who in [&carol, &bob, &carol] {
        comment_id(&p, who, &post, "more", None).await;
    }
    // Each comment makes the notification grow; the stream shows each step.
    let mut grown = first.clone();
    while grown["count"] != 4 {
        grown = next_added(&mut ws).await;
    }
    assert_eq!(grown["id"], first["id"], "the same notification grew");
    assert_eq!(
        grown["actors"],
        json!([{ "nickname": "carol" }, { "nickname": "bob" }])
    );
    let data = list(&p, &alice).await;
    assert_eq!(nodes(&data).len(), 1);
    assert_eq!(data["unreadNotificationCount"], 1);

    // alice blocks eve: once posts knows, eve cannot comment; a mention from her tells alice nothing.
    p.ok(
        "mutation($u: ID!) { block(userId: $u) }",
        json!({ "u": eve.id }),
        Some(&alice.access),
    )
    .await;
    eventually("eve's comment refused", || async {
        let refused = comment(&p, &eve, &post, "hey", None).await;
        (!codes(&refused).is_empty()).then_some(())
    })
    .await;
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";
    p.ok(
        create,
        json!({ "i": { "title": "hi @alice", "body": "b" } }),
        Some(&eve.access),
    )
    .await;
    p.ok(
        create,
        json!({ "i": { "title": "look @alice", "body": "b" } }),
        Some(&carol.access),
    )
    .await;
    // carol's mention arrives; eve's never stays (told before the block reached notifications, it goes).
    eventually("only carol's mention", || async {
        let mentions: Vec<Value> = nodes(&list(&p, &alice).await)
            .into_iter()
            .filter(|n| n["kind"] == "MENTION")
            .map(|n| n["actors"].clone())
            .collect();
        (mentions == [json!([{ "nickname": "carol" }])]).then_some(())
    })
    .await;
    assert!(
        nodes(&list(&p, &alice).await)
            .iter()
            .all(|n| !n["actors"].to_string().contains("eve")),
        "nothing from eve"
    );

    // Read: all of them, then nothing unread.
    let marked = p
        .ok(
            "mutation { markNotificationsRead }",
            json!({}),
            Some(&alice.access),
        )
        .await;
    assert_eq!(
        marked["markNotificationsRead"], 2,
        "the COMMENT group and the MENTION"
    );
    let data = list(&p, &alice).await;
    assert_eq!(data["unreadNotificationCount"], 0);
    assert!(nodes(&data).iter().all(|n| n["read"] == true));
    // A new comment after reading starts a new notification.
    comment_id(&p, &bob, &post, "again", None).await;
    wait_kind(&p, &alice, "COMMENT", 2).await;

    // Nobody reads another's notifications; bad inputs are refused with codes.
    let theirs = p.gql(LIST, json!({}), None).await.1;
    assert!(
        codes(&theirs).iter().all(|c| c == "UNAUTHENTICATED"),
        "{theirs}"
    );
    let too_many: Vec<String> = (0..101)
        .map(|_| first["id"].as_str().expect("id").to_string())
        .collect();
    let refused = p
        .gql(
            "mutation($i: [ID!]) { markNotificationsRead(ids: $i) }",
            json!({ "i": too_many }),
            Some(&alice.access),
        )
        .await
        .1;
    assert_eq!(codes(&refused), ["BAD_USER_INPUT"]);
    let bob_marks = p
        .ok(
            "mutation($i: [ID!]) { markNotificationsRead(ids: $i) }",
            json!({ "i": [first["id"]] }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(bob_marks["markNotificationsRead"], 0, "not bob's to mark");
}

#[tokio::test]
async fn each_kind_comes_from_its_event() {
    let p = start(None).await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;

    // REPLY and MENTION in a comment.
    let post = create_post(&p, &alice, "Thread", None).await;
    let bobs = comment_id(&p, &bob, &post, "top level", None).await;
    comment_id(&p, &carol, &post, "answer to bob, cc @alice", Some(&bobs)).await;
    let reply = wait_kind(&p, &bob, "REPLY", 1).await;
    assert_eq!(reply[0]["comment"]["body"], "answer to bob, cc @alice");
    assert_eq!(reply[0]["actors"], json!([{ "nickname": "carol" }]));
    wait_kind(&p, &alice, "MENTION", 1).await;

    // VOTE_MILESTONE needs 10 votes; FOLLOW_REQUEST and FOLLOW_ACCEPTED on a private account.
    p.ok(
        "mutation { setPrivate(private: true) }",
        json!({}),
        Some(&alice.access),
    )
    .await;
    let status = p
        .ok(
            "mutation($u: ID!) { follow(userId: $u) }",
            json!({ "u": alice.id }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(status["follow"], "REQUESTED");
    let request = wait_kind(&p, &alice, "FOLLOW_REQUEST", 1).await;
    assert_eq!(request[0]["actors"], json!([{ "nickname": "bob" }]));
    p.ok(
        "mutation($u: ID!) { acceptFollowRequest(userId: $u) }",
        json!({ "u": bob.id }),
        Some(&alice.access),
    )
    .await;
    let accepted = wait_kind(&p, &bob, "FOLLOW_ACCEPTED", 1).await;
    assert_eq!(accepted[0]["actors"], json!([{ "nickname": "alice" }]));
    // A public account's new follower: FOLLOW.
    p.ok(
        "mutation($u: ID!) { follow(userId: $u) }",
        json!({ "u": carol.id }),
        Some(&bob.access),
    )
    .await;
    wait_kind(&p, &carol, "FOLLOW", 1).await;

    // CHAT_INVITE for a group's members; MESSAGE for a member whose app did not take it (bob), none for one
    // whose app marked it delivered (carol).
    let group = p
        .ok(
            "mutation($m: [ID!]!) { createGroupChat(title: \"Trip\", memberIds: $m) { id } }",
            json!({ "m": [bob.id, carol.id] }),
            Some(&alice.access),
        )
        .await["createGroupChat"]["id"]
        .as_str()
        .expect("chat")
        .to_string();
    let invite = wait_kind(&p, &bob, "CHAT_INVITE", 1).await;
    assert_eq!(invite[0]["chat"]["id"], group);
    let mut carols_app = WsClient::connect(&p, Some(&carol.access)).await;
    carols_app
        .subscribe(
            "m",
            "subscription($c: ID!) { messageAdded(chatId: $c) { id } }",
            json!({ "c": group }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let send =
        "mutation($c: ID!, $t: String) { sendMessage(chatId: $c, input: { text: $t }) { id } }";
    for text in ["one", "two"] {
        p.ok(send, json!({ "c": group, "t": text }), Some(&alice.access))
            .await;
        let got = carols_app
            .next_for("m", Duration::from_secs(10))
            .await
            .expect("carol's app gets it");
        let id = got["payload"]["data"]["messageAdded"]["id"].clone();
        p.ok(
            "mutation($c: ID!, $m: ID!) { markDelivered(chatId: $c, messageId: $m) }",
            json!({ "c": group, "m": id }),
            Some(&carol.access),
        )
        .await;
    }
    let messages = wait_kind(&p, &bob, "MESSAGE", 1).await;
    assert_eq!(
        messages[0]["count"], 2,
        "one notification per chat counting messages"
    );
    assert_eq!(messages[0]["message"]["text"], "two");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        nodes(&list(&p, &carol).await)
            .iter()
            .all(|n| n["kind"] != "MESSAGE"),
        "carol was there"
    );
    // Reading the chat reads its notification.
    p.ok(
        "mutation($c: ID!, $m: ID!) { markRead(chatId: $c, messageId: $m) }",
        json!({ "c": group, "m": messages[0]["message"]["id"] }),
        Some(&bob.access),
    )
    .await;
    eventually("MESSAGE read", || async {
        let read = nodes(&list(&p, &bob).await)
            .iter()
            .any(|n| n["kind"] == "MESSAGE" && n["read"] == true);
        read.then_some(())
    })
    .await;
    // A muted chat tells nothing.
    let direct = direct_chat(&p, &alice, &carol).await;
    p.ok(
        "mutation($c: ID!) { updateChatSettings(chatId: $c, input: { mutedUntil: \"2999-01-01T00:00:00Z\" }) { muted } }",
        json!({ "c": direct }),
        Some(&carol.access),
    )
    .await;
    p.ok(
        send,
        json!({ "c": direct, "t": "psst" }),
        Some(&alice.access),
    )
    .await;
    p.ok(
        send,
        json!({ "c": group, "t": "marker" }),
        Some(&alice.access),
    )
    .await;
    // The group message (sent after) reaches bob, so the muted one had its chance too.
    eventually("bob's second message", || async {
        nodes(&list(&p, &bob).await)
            .iter()
            .any(|n| n["kind"] == "MESSAGE" && n["read"] == false)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        nodes(&list(&p, &carol).await)
            .iter()
            .all(|n| n["chat"]["id"] != direct.as_str()),
        "muted"
    );

    // Settings: IN_APP off for FOLLOW → a new follower is not listed.
    let settings = p
        .ok(
            "mutation { updateNotificationSettings(input: { kind: FOLLOW, channel: IN_APP, enabled: false }) { entries { kind channel enabled } } }",
            json!({}),
            Some(&carol.access),
        )
        .await;
    let entries = settings["updateNotificationSettings"]["entries"]
        .as_array()
        .expect("entries");
    assert_eq!(entries.len(), 30, "10 kinds × 3 channels");
    assert!(entries.contains(&json!({ "kind": "FOLLOW", "channel": "IN_APP", "enabled": false })));
    assert!(entries.contains(&json!({ "kind": "COMMENT", "channel": "EMAIL", "enabled": true })));
    p.ok(
        "mutation($u: ID!) { follow(userId: $u) }",
        json!({ "u": carol.id }),
        Some(&alice.access),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        wait_kind(&p, &carol, "FOLLOW", 1).await[0]["count"],
        1,
        "alice's follow not listed"
    );
}

/// One push as the push service received it: the endpoint's name, the headers, the body.
type Received = (String, axum::http::HeaderMap, Vec<u8>);

/// A push service on loopback: keeps what it received; `/push/gone` answers 410, `/push/busy` 429 the first
/// time, the rest 201.
#[derive(Clone, Default)]
struct PushService {
    received: Arc<Mutex<Vec<Received>>>,
}

async fn push_service() -> (String, PushService) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    let service = PushService::default();
    let app = axum::Router::new()
        .route(
            "/push/{name}",
            axum::routing::post(
                |State(s): State<PushService>,
                 Path(name): Path<String>,
                 headers: HeaderMap,
                 body: axum::body::Bytes| async move {
                    let mut received = s.received.lock().expect("lock");
                    received.push((name.clone(), headers, body.to_vec()));
                    let tries = received.iter().filter(|(n, _, _)| *n == name).count();
                    match name.as_str() {
                        "gone" => StatusCode::GONE,
                        // Busy the first time: the push is retried.
                        "busy" if tries == 1 => StatusCode::TOO_MANY_REQUESTS,
                        _ => StatusCode::CREATED,
                    }
                },
            ),
        )
        .with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, service)
}

/// A browser's push subscription keys: (private key, p256dh, auth secret, auth base64url).
fn browser_keys() -> (p256::SecretKey, String, [u8; 16], String) {
    let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    let auth: [u8; 16] = rand::random();
    let p256dh = URL_SAFE_NO_PAD.encode(point.as_bytes());
    let auth_b64 = URL_SAFE_NO_PAD.encode(auth);
    (secret, p256dh, auth, auth_b64)
}

#[tokio::test]
async fn digests_mail_unsubscribe_and_pushes_arrive_encrypted() {
    let Some(smtp) = parley_kit::testing::smtp_server() else {
        return;
    };
    let p = start(Some(&smtp)).await;
    // Names of their own: the SMTP server is the test command's, shared by every run of this test.
    let suffix = rand::random::<u16>();
    let dana = p.register(&format!("dana{suffix}")).await;
    let bob_nick = format!("bob{suffix}");
    let bob = p.register(&bob_nick).await;
    let erin_nick = format!("erin{suffix}");
    let erin = p.register(&erin_nick).await;
    p.verify_email(&dana.email).await;
    p.verify_email(&erin.email).await;

    // Push: dana's browser subscribes; a second, stale subscription answers 410.
    let (push_url, service) = push_service().await;
    let (secret, p256dh, auth, auth_b64) = browser_keys();
    let key = p
        .ok("{ pushPublicKey }", json!({}), Some(&dana.access))
        .await["pushPublicKey"]
        .as_str()
        .expect("key")
        .to_string();
    let register = "mutation($i: PushSubscriptionInput!) { registerPushSubscription(input: $i) }";
    for name in ["dana", "gone", "busy"] {
        p.ok(
            register,
            json!({ "i": { "endpoint": format!("{push_url}/push/{name}"), "p256dh": p256dh, "auth": auth_b64 } }),
            Some(&dana.access),
        )
        .await;
    }
    let bad = p
        .gql(
            register,
            json!({ "i": { "endpoint": "ftp://x/y", "p256dh": p256dh, "auth": auth_b64 } }),
            Some(&dana.access),
        )
        .await
        .1;
    assert_eq!(codes(&bad), ["BAD_USER_INPUT"]);

    let post = create_post(&p, &dana, "Mail me", None).await;
    comment_id(&p, &bob, &post, "nice", None).await;

    // The push: encrypted to the subscription's keys, VAPID-signed by the key clients were given.
    let (headers, body) = eventually("a push", || async {
        let received = service.received.lock().expect("lock").clone();
        received
            .into_iter()
            .find(|(name, _, _)| name == "dana")
            .map(|(_, headers, body)| (headers, body))
    })
    .await;
    assert_eq!(headers["content-encoding"], "aes128gcm");
    assert!(headers.contains_key("ttl"));
    assert_eq!(headers["urgency"], "normal");
    let plain = web_push_native::decrypt(
        body,
        &secret,
        &web_push_native::Auth::clone_from_slice(&auth),
    )
    .expect("decrypts with the browser's key");
    let pushed: Value = serde_json::from_slice(&plain).expect("json");
    assert_eq!(pushed["kind"], "COMMENT");
    assert_eq!(pushed["text"], format!("{bob_nick} commented on your post"));
    let vapid = headers["authorization"].to_str().expect("ascii");
    let (t, k) = vapid
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .expect("vapid t=…, k=…");
    assert_eq!(k, key, "signed with the advertised key");
    let public = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(k).expect("b64")).expect("key");
    let claims = public
        .verify_token::<NoCustomClaims>(
            t,
            Some(VerificationOptions {
                allowed_audiences: Some(HashSet::from_strings(std::slice::from_ref(&push_url))),
                ..Default::default()
            }),
        )
        .expect("a valid VAPID JWT for the push service's origin");
    assert!(claims.subject.is_some_and(|s| s.starts_with("mailto:")));
    // The 429 was retried (with backoff): the busy endpoint got the same push again.
    eventually("the busy endpoint's retry", || async {
        let received = service.received.lock().expect("lock").clone();
        let busy: Vec<&Vec<u8>> = received
            .iter()
            .filter(|(name, _, _)| name == "busy")
            .map(|(_, _, body)| body)
            .collect();
        (busy.len() == 2).then_some(())
    })
    .await;
    // The 410 removed the stale subscription: unregistering it finds nothing.
    eventually("the stale subscription removed", || async {
        let gone = p
            .ok(
                "mutation($e: String!) { unregisterPushSubscription(endpoint: $e) }",
                json!({ "e": format!("{push_url}/push/gone") }),
                Some(&dana.access),
            )
            .await;
        (gone["unregisterPushSubscription"] == false).then_some(())
    })
    .await;

    // The digest: at the SMTP server, with the comment and an unsubscribe link.
    let mail = eventually("the digest", || async {
        smtp.received(&dana.email).into_iter().next()
    })
    .await;
    assert!(mail.contains("commented on your post"), "{mail}");
    assert!(
        mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{mail}"
    );
    let link = quoted_printable(&mail)
        .lines()
        .find_map(|l| {
            l.split_once("Stop emails about comment: ")
                .map(|(_, url)| url.trim().to_string())
        })
        .expect("an unsubscribe link");
    assert!(
        link.starts_with(&p.router_url),
        "on the public origin: {link}"
    );
    // Opening it changes nothing; the button (a POST) turns COMMENT's mail off.
    let page = p.http.get(&link).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("<form method=\"post\""));
    assert!(email_on(&p, &dana, "COMMENT").await);
    let done = p.http.post(&link).send().await.expect("post");
    assert_eq!(done.status(), 200);
    assert!(!email_on(&p, &dana, "COMMENT").await);
    let forged = p.http.post(format!("{link}x")).send().await.expect("post");
    assert_eq!(forged.status(), 403);

    // Another comment: in-app and pushed, but no second mail.
    comment_id(&p, &bob, &post, "again", None).await;
    eventually("a second push", || async {
        let n = service
            .received
            .lock()
            .expect("lock")
            .iter()
            .filter(|(name, _, _)| name == "dana")
            .count();
        (n == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(smtp.received(&dana.email).len(), 1, "COMMENT mail is off");

    // What was read in the app before the digest went out is never mailed.
    p.ok(
        "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
        json!({ "i": { "title": format!("hi @{erin_nick}"), "body": "b" } }),
        Some(&bob.access),
    )
    .await;
    eventually_within("erin's mention", Duration::from_secs(10), || async {
        let n = p
            .ok("{ unreadNotificationCount }", json!({}), Some(&erin.access))
            .await["unreadNotificationCount"]
            .as_i64();
        (n == Some(1)).then_some(())
    })
    .await;
    p.ok(
        "mutation { markNotificationsRead }",
        json!({}),
        Some(&erin.access),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(
        smtp.received(&erin.email).is_empty(),
        "read before the digest"
    );
}

async fn email_on(p: &Platform, who: &Account, kind: &str) -> bool {
    let data = p
        .ok(
            "{ notificationSettings { entries { kind channel enabled } } }",
            json!({}),
            Some(&who.access),
        )
        .await;
    data["notificationSettings"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .any(|e| e["kind"] == kind && e["channel"] == "EMAIL" && e["enabled"] == true)
}

/// A quoted-printable body as a mail client shows it (RFC 2045: `=` line ends joined, `=XX` decoded).
fn quoted_printable(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
