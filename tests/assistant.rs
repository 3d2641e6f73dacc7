//! The chat assistant through the router, against a local server that speaks the Chat Completions protocol
//! with streaming (`data:` chunks, then `[DONE]`), started by each test: a direct answer streams into one
//! message that subscribers see grow and that is stored whole; in a group it answers only when mentioned and
//! reads only that chat's messages since it joined; a slow or failing provider ends with an error message,
//! never half an answer; without the PRO plan it says so; its rate limit and daily token budget hold.

use parley_harness as support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually_within, Account, Options, Platform, WsClient};

/// The answer the provider streams, in these pieces.
const PIECES: [&str; 6] = ["The ", "answer ", "is ", "forty", "-two", "."];
const ANSWER: &str = "The answer is forty-two.";
const NOT_ENTITLED: &str = "I answer members on the PRO plan. Upgrade your plan to talk with me.";
const RATE_LIMITED: &str = "That is a lot of questions at once. Ask me again in a minute.";
const BUDGET_SPENT: &str = "You have used today's assistant budget. Ask me again tomorrow.";
const TIMED_OUT: &str = "Sorry, I took too long to answer. Please ask again.";
const FAILED: &str = "Sorry, I could not answer just now. Please try again later.";
const SYSTEM: &str = "You are the test assistant.";

const SEND: &str =
    "mutation($c: ID!, $t: String!) { sendMessage(chatId: $c, input: { text: $t }) { id } }";
const EVENTS: &str = "subscription { chatEvents { kind chatId typing user { nickname } message { id text author { nickname } } } }";

/// What the provider was asked (each request's body).
type Asked = Arc<Mutex<Vec<Value>>>;

/// A Chat Completions server on loopback. The last message decides how it answers: one saying `slow`
/// gets a first piece and then nothing for longer than the tests' timeout; `broken`, an HTTP 500; anything
/// else, [`ANSWER`] in [`PIECES`] 80 ms apart, the usage, `[DONE]`.
async fn provider() -> (String, Asked) {
    use axum::body::{Body, Bytes};
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};

    async fn complete(State(asked): State<Asked>, body: Bytes) -> Response {
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        let last = request["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        asked.lock().expect("lock").push(request);
        if last.contains("broken") {
            return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
        }
        let slow = last.contains("slow");
        let chunk = |text: &str| {
            format!(
                "data: {}\n\n",
                json!({ "choices": [{ "index": 0, "delta": { "content": text } }] })
            )
        };
        let mut frames: Vec<(u64, String)> = PIECES.iter().map(|p| (80, chunk(p))).collect();
        if slow {
            frames[1].0 = 4_000;
        }
        frames.push((
            10,
            format!(
                "data: {}\n\n",
                json!({ "choices": [], "usage": { "prompt_tokens": 12, "completion_tokens": 6 } })
            ),
        ));
        frames.push((10, "data: [DONE]\n\n".to_string()));
        let stream = futures::stream::unfold(frames.into_iter(), |mut frames| async move {
            let (wait, frame) = frames.next()?;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(frame)),
                frames,
            ))
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .expect("response")
    }

    let asked: Asked = Arc::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(complete))
        .with_state(asked.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, asked)
}

/// The platform with the assistant on `url` (and `more` of its settings).
async fn platform(url: &str, more: &[(&str, toml::Value)]) -> Platform {
    let mut chat = toml::Table::new();
    chat.insert("assistant_url".into(), url.into());
    chat.insert("assistant_model".into(), "test-model".into());
    chat.insert("assistant_system_prompt".into(), SYSTEM.into());
    chat.insert("assistant_edit_ms".into(), 100.into());
    chat.insert("assistant_timeout_ms".into(), 1_500.into());
    for (key, value) in more {
        chat.insert(key.to_string(), value.clone());
    }
    let mut users = toml::Table::new();
    users.insert("assistant".into(), true.into());
    Platform::start_opts(Options {
        chat: Some(chat),
        users: Some(users),
        ..Default::default()
    })
    .await
}

/// The assistant's user id, with its badge checked.
async fn assistant(p: &Platform) -> String {
    let data = p
        .ok(
            "{ userByNickname(nickname: \"assistant\") { id isAssistant name } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(data["userByNickname"]["isAssistant"], true, "{data}");
    data["userByNickname"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// `who`'s direct chat with the assistant (once chat knows it).
async fn direct_with_assistant(p: &Platform, who: &Account, assistant: &str) -> String {
    eventually_within(
        "chat knows the assistant",
        Duration::from_secs(15),
        || async {
            let (_, body) = p
                .gql(
                    "mutation($u: ID!) { createDirectChat(userId: $u) { id } }",
                    json!({ "u": assistant }),
                    Some(&who.access),
                )
                .await;
            body["data"]["createDirectChat"]["id"]
                .as_str()
                .map(str::to_string)
        },
    )
    .await
}

async fn send(p: &Platform, who: &Account, chat: &str, text: &str) -> String {
    p.ok(SEND, json!({ "c": chat, "t": text }), Some(&who.access))
        .await["sendMessage"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// The assistant's stored reply to message `to`, once it is final (not the `…` of an answer under way).
async fn reply_to(p: &Platform, who: &Account, chat: &str, to: &str) -> String {
    eventually_within("the assistant's reply", Duration::from_secs(15), || async {
        let data = p
            .ok(
                "query($c: ID!) { chat(id: $c) { messages(last: 50) { edges { node { text author { isAssistant } replyTo { id } } } } } }",
                json!({ "c": chat }),
                Some(&who.access),
            )
            .await;
        data["chat"]["messages"]["edges"]
            .as_array()?
            .iter()
            .map(|e| &e["node"])
            .find(|m| m["author"]["isAssistant"] == true && m["replyTo"]["id"] == to)
            .and_then(|m| m["text"].as_str())
            .filter(|text| *text != "…")
            .map(str::to_string)
    })
    .await
}

/// Whether the assistant replied to `to` (checked after the time an answer takes).
async fn replied(p: &Platform, who: &Account, chat: &str, to: &str) -> bool {
    let data = p
        .ok(
            "query($c: ID!) { chat(id: $c) { messages(last: 50) { edges { node { author { isAssistant } replyTo { id } } } } } }",
            json!({ "c": chat }),
            Some(&who.access),
        )
        .await;
    data["chat"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .any(|e| e["node"]["author"]["isAssistant"] == true && e["node"]["replyTo"]["id"] == to)
}

/// Puts `who` on the PRO plan and waits until the assistant knows it (asking in `chat` until the answer is
/// not the plan's refusal).
async fn on_pro(p: &Platform, who: &Account, chat: &str) {
    p.ok(
        "mutation($k: String!) { subscribe(planId: \"pro-month\", paymentMethodId: \"pm_card_visa\", idempotencyKey: $k) { status } }",
        json!({ "k": format!("{}-pro", who.id) }),
        Some(&who.access),
    )
    .await;
    for _ in 0..50 {
        let asked = send(p, who, chat, "are you there?").await;
        if reply_to(p, who, chat, &asked).await != NOT_ENTITLED {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the assistant never saw the PRO plan");
}

/// The requests whose last message contains `text`.
fn asked_about(asked: &Asked, text: &str) -> Vec<Value> {
    asked
        .lock()
        .expect("lock")
        .iter()
        .filter(|r| {
            r["messages"]
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["content"].as_str())
                .is_some_and(|c| c.contains(text))
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_direct_answer_streams_into_one_message_that_is_stored_whole() {
    let (url, asked) = provider().await;
    let p = platform(&url, &[]).await;
    let bot = assistant(&p).await;
    let alice = p.register("alice").await;
    let chat = direct_with_assistant(&p, &alice, &bot).await;
    on_pro(&p, &alice, &chat).await;

    let mut ws = WsClient::connect(&p, Some(&alice.access)).await;
    ws.subscribe("e", EVENTS, json!({})).await;
    // (The stream is set up through the router and the subgraph before it carries anything.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let question = send(&p, &alice, &chat, "what is the answer?").await;
    let (mut typing, mut added, mut drafts, mut done) = (false, None, Vec::new(), None);
    while done.is_none() {
        let event = ws
            .next_for("e", Duration::from_secs(10))
            .await
            .expect("a live event");
        let event = &event["payload"]["data"]["chatEvents"];
        if event["user"]["nickname"] == "assistant" && event["kind"] == "TYPING" {
            typing |= event["typing"] == true;
        }
        if event["message"]["author"]["nickname"] != "assistant" {
            continue;
        }
        let text = event["message"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match event["kind"].as_str() {
            Some("MESSAGE_ADDED") => added = Some(event["message"]["id"].clone()),
            Some("MESSAGE_EDITED") if text == ANSWER => done = Some(event["message"]["id"].clone()),
            Some("MESSAGE_EDITED") => drafts.push(text),
            _ => {}
        }
    }
    assert!(typing, "the assistant was typing while it waited");
    assert_eq!(added, done, "one message, written as it grew");
    assert!(!drafts.is_empty(), "subscribers saw it write");
    for draft in &drafts {
        assert!(
            ANSWER.starts_with(draft.as_str()) && draft != ANSWER,
            "{draft:?} is part of the answer"
        );
    }
    assert_eq!(reply_to(&p, &alice, &chat, &question).await, ANSWER);

    // It was asked with the configured model and prompt, then this chat's messages, oldest first.
    let request = &asked_about(&asked, "what is the answer?")[0];
    assert_eq!(request["model"], "test-model");
    assert_eq!(request["stream"], true);
    let messages = request["messages"].as_array().expect("messages");
    assert_eq!(messages[0], json!({ "role": "system", "content": SYSTEM }));
    assert_eq!(
        messages.last().expect("last"),
        &json!({ "role": "user", "content": "alice: what is the answer?" })
    );
    assert!(messages
        .iter()
        .any(|m| m["role"] == "assistant" && m["content"] == ANSWER));
}

#[tokio::test]
async fn in_a_group_it_answers_only_when_mentioned_and_reads_only_what_it_may() {
    let (url, asked) = provider().await;
    let p = platform(&url, &[]).await;
    let bot = assistant(&p).await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let direct = direct_with_assistant(&p, &alice, &bot).await;
    on_pro(&p, &alice, &direct).await;
    send(&p, &alice, &direct, "a secret of the direct chat").await;

    let group = p
        .ok(
            "mutation($m: [ID!]!) { createGroupChat(title: \"Team\", memberIds: $m) { id } }",
            json!({ "m": [bob.id] }),
            Some(&alice.access),
        )
        .await["createGroupChat"]["id"]
        .as_str()
        .expect("group")
        .to_string();
    send(&p, &alice, &group, "said before the assistant came").await;
    p.ok(
        "mutation($c: ID!, $u: ID!) { addChatMember(chatId: $c, userId: $u) { id } }",
        json!({ "c": group, "u": bot }),
        Some(&alice.access),
    )
    .await;
    let chatter = send(&p, &bob, &group, "hi all").await;
    let question = send(&p, &alice, &group, "@assistant what did we say?").await;
    assert_eq!(reply_to(&p, &alice, &group, &question).await, ANSWER);
    assert!(
        !replied(&p, &alice, &group, &chatter).await,
        "not mentioned: silent"
    );
    // Replying to the assistant's message is asking it too.
    let answer_id = {
        let data = p
            .ok(
                "query($c: ID!) { chat(id: $c) { messages(last: 10) { edges { node { id author { isAssistant } } } } } }",
                json!({ "c": group }),
                Some(&alice.access),
            )
            .await;
        data["chat"]["messages"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .rev()
            .find(|e| e["node"]["author"]["isAssistant"] == true)
            .and_then(|e| e["node"]["id"].as_str())
            .expect("the answer")
            .to_string()
    };
    let follow_up = p
        .ok(
            "mutation($c: ID!, $r: ID!) { sendMessage(chatId: $c, input: { text: \"and then?\", replyToId: $r }) { id } }",
            json!({ "c": group, "r": answer_id }),
            Some(&alice.access),
        )
        .await["sendMessage"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(reply_to(&p, &alice, &group, &follow_up).await, ANSWER);

    let request = &asked_about(&asked, "what did we say?")[0];
    let said: Vec<&str> = request["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(
        said,
        [SYSTEM, "bob: hi all", "alice: @assistant what did we say?"],
        "only this chat, only since it joined"
    );
}

#[tokio::test]
async fn a_slow_or_broken_provider_ends_with_an_error_message_not_half_an_answer() {
    let (url, _) = provider().await;
    let p = platform(&url, &[]).await;
    let bot = assistant(&p).await;
    let carol = p.register("carol").await;
    let chat = direct_with_assistant(&p, &carol, &bot).await;
    on_pro(&p, &carol, &chat).await;
    let slow = send(&p, &carol, &chat, "answer slow please").await;
    assert_eq!(reply_to(&p, &carol, &chat, &slow).await, TIMED_OUT);
    let broken = send(&p, &carol, &chat, "this one is broken").await;
    assert_eq!(reply_to(&p, &carol, &chat, &broken).await, FAILED);
    // Nothing of the cut-off answer was kept.
    let data = p
        .ok(
            "query($c: ID!) { chat(id: $c) { messages(last: 50) { edges { node { text } } } } }",
            json!({ "c": chat }),
            Some(&carol.access),
        )
        .await;
    let texts: Vec<&str> = data["chat"]["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["text"].as_str())
        .collect();
    assert!(!texts.contains(&"The "), "{texts:?}");
}

#[tokio::test]
async fn without_the_plan_it_says_so_and_its_rate_limit_holds() {
    let (url, asked) = provider().await;
    let p = platform(&url, &[("assistant_per_minute", 3.into())]).await;
    let bot = assistant(&p).await;
    let dan = p.register("dan").await;
    let chat = direct_with_assistant(&p, &dan, &bot).await;
    let free = send(&p, &dan, &chat, "free question").await;
    assert_eq!(reply_to(&p, &dan, &chat, &free).await, NOT_ENTITLED);
    assert!(asked_about(&asked, "free question").is_empty());

    // On PRO: the probe and two more are answered in the minute, the fourth is not.
    on_pro(&p, &dan, &chat).await;
    for n in 2..=3 {
        let q = send(&p, &dan, &chat, &format!("question {n}")).await;
        assert_eq!(reply_to(&p, &dan, &chat, &q).await, ANSWER);
    }
    let over = send(&p, &dan, &chat, "question 4").await;
    assert_eq!(reply_to(&p, &dan, &chat, &over).await, RATE_LIMITED);
    assert!(asked_about(&asked, "question 4").is_empty());
}

/// Each answer costs what the provider counted (12 + 6 tokens here): past the daily budget it says so.
/// Analytics counts the users the assistant answered.
#[tokio::test]
async fn the_daily_token_budget_holds() {
    let (url, asked) = provider().await;
    let p = platform(&url, &[("assistant_daily_tokens", 30.into())]).await;
    let bot = assistant(&p).await;
    let eve = p.register("eve").await;
    let chat = direct_with_assistant(&p, &eve, &bot).await;
    // The probe's answer: 18 tokens of 30.
    on_pro(&p, &eve, &chat).await;
    let second = send(&p, &eve, &chat, "one more").await;
    assert_eq!(reply_to(&p, &eve, &chat, &second).await, ANSWER);
    let third = send(&p, &eve, &chat, "and another").await;
    assert_eq!(reply_to(&p, &eve, &chat, &third).await, BUDGET_SPENT);
    assert!(asked_about(&asked, "and another").is_empty());

    // Analytics counts who used the assistant: of those who registered, eve alone.
    let admin = p.register_admin().await;
    let now = chrono::Utc::now();
    let range = json!({
        "f": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "t": (now + chrono::Duration::hours(1)).to_rfc3339(),
    });
    support::eventually("analytics counts the assistant's answers", || async {
        let data = p
            .ok(
                "query($f: DateTime!, $t: DateTime!) { funnel(steps: [\"UserRegistered\", \"AssistantAnswered\"], from: $f, to: $t) { name users } }",
                range.clone(),
                Some(&admin.access),
            )
            .await;
        (data["funnel"][1]["users"] == 1).then_some(())
    })
    .await;
}
