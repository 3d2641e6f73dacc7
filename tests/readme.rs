//! The README's examples and GraphiQL's default tab, run as a newcomer runs them: every operation in the
//! README's `graphql` blocks, in order, through the router, with the token from the register step and the
//! ids the earlier steps returned in place of `<topic id>`, `<post id>`, `<user id>` and `<chat id>`. Each
//! must answer without errors and with what the text promises.

use parley_harness as support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, Platform, WsClient};

/// The operations of the README's `graphql` blocks, in order (an operation may span lines).
fn readme_operations() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut operations = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_block = line == "```graphql";
            continue;
        }
        if !in_block || line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        let open = current.matches('{').count();
        if open > 0 && open == current.matches('}').count() {
            operations.push(std::mem::take(&mut current));
        }
    }
    assert!(current.is_empty(), "an unbalanced example: {current}");
    operations
}

/// The README's steps against a fresh platform.
struct Walk {
    platform: Platform,
    token: Option<String>,
    /// Placeholder (`<post id>`) → value.
    ids: HashMap<&'static str, String>,
    /// A subscription opened by the step before, checked after the next mutation.
    live: Option<WsClient>,
}

impl Walk {
    fn fill(&self, operation: &str) -> String {
        let mut filled = operation.to_string();
        for (placeholder, value) in &self.ids {
            filled = filled.replace(placeholder, value);
        }
        assert!(
            !filled.contains("<"),
            "no value yet for a placeholder in {filled}"
        );
        filled
    }

    async fn run(&mut self, operation: &str) {
        let query = self.fill(operation);
        if query.starts_with("subscription") {
            let mut ws = WsClient::connect(&self.platform, self.token.as_deref()).await;
            ws.subscribe("readme", &query, json!({})).await;
            // The router opens the upstream subscription after the ack: give it a moment before the write.
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.live = Some(ws);
            return;
        }
        let data = if query.contains("feed(") {
            // The feed is built from events: the post reaches it a moment after it is written.
            let (platform, token) = (&self.platform, self.token.clone());
            eventually("the post in the feed", || {
                let token = token.clone();
                let query = query.clone();
                async move {
                    let data = platform.ok(&query, json!({}), token.as_deref()).await;
                    let edges = data["feed"]["edges"].as_array()?;
                    (!edges.is_empty()).then_some(data)
                }
            })
            .await
        } else {
            self.platform
                .ok(&query, json!({}), self.token.as_deref())
                .await
        };
        self.learn(&data);
        self.check(&data);
        if let Some(mut ws) = self.live.take() {
            let message = ws.next_for("readme", Duration::from_secs(10)).await;
            let message = message.expect("the subscription's event after the mutation");
            assert!(message["payload"]["errors"].is_null(), "{message}");
            let comment = &message["payload"]["data"]["commentAdded"];
            assert_eq!(comment["body"], "5W-30", "{message}");
            assert_eq!(comment["author"]["nickname"], "ada", "{message}");
            ws.close().await;
        }
    }

    /// Keeps what later steps refer to.
    fn learn(&mut self, data: &Value) {
        if let Some(token) = data["register"]["accessToken"].as_str() {
            self.token = Some(token.to_string());
        }
        for (field, placeholder) in [
            ("createTopic", "<topic id>"),
            ("createPost", "<post id>"),
            ("createDirectChat", "<chat id>"),
        ] {
            if let Some(id) = data[field]["id"].as_str() {
                self.ids.insert(placeholder, id.to_string());
            }
        }
    }

    /// What the README's text says each answer shows.
    fn check(&self, data: &Value) {
        if !data["me"].is_null() {
            assert_eq!(data["me"]["nickname"], "ada", "{data}");
            assert_eq!(data["me"]["followerCount"], 0, "{data}");
        }
        if let Some(edges) = data["posts"]["edges"].as_array() {
            let post = &edges[0]["node"];
            assert_eq!(post["title"], "Oil?", "{data}");
            assert_eq!(post["commentCount"], 1, "{data}");
            assert_eq!(post["author"]["nickname"], "ada", "{data}");
        }
        if let Some(edges) = data["feed"]["edges"].as_array() {
            assert_eq!(edges[0]["node"]["title"], "Oil?", "{data}");
        }
        if let Some(edges) = data["chats"]["edges"].as_array() {
            assert_eq!(edges.len(), 1, "{data}");
            assert_eq!(edges[0]["node"]["lastMessage"]["text"], "hi", "{data}");
        }
        if !data["sendMessage"].is_null() {
            assert_eq!(data["sendMessage"]["seq"], 1, "{data}");
        }
    }
}

#[tokio::test]
async fn the_readme_examples_run_as_written() {
    let operations = readme_operations();
    assert!(operations.len() >= 10, "{operations:?}");
    let platform = Platform::start().await;
    // "Register `grace` the same way": her id is `<user id>`.
    let grace = platform.register("grace").await;
    let mut walk = Walk {
        platform,
        token: None,
        ids: HashMap::from([("<user id>", grace.id.clone())]),
        live: None,
    };
    for operation in &operations {
        walk.run(operation).await;
    }
    assert!(
        walk.live.is_none(),
        "a subscription with no mutation after it"
    );
}

/// The operations in GraphiQL's default tab (the file the router's build embeds in the page).
#[tokio::test]
async fn the_graphiql_default_tab_runs() {
    let platform = Platform::start().await;
    let document = parley_router::graphiql::DEFAULT_TAB.to_string();
    let run = |name: &'static str, token: Option<String>| {
        let (platform, document) = (&platform, document.clone());
        async move {
            let mut request = reqwest::Client::new()
                .post(platform.graphql_url())
                .json(&json!({ "query": document, "operationName": name }));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let body: Value = request
                .send()
                .await
                .expect("router")
                .json()
                .await
                .expect("json");
            assert!(body["errors"].is_null(), "{name}: {body}");
            body["data"].clone()
        }
    };
    let registered = run("Register", None).await;
    let token = registered["register"]["accessToken"]
        .as_str()
        .expect("token");
    let me = run("Me", Some(token.to_string())).await;
    assert_eq!(
        me["me"]["nickname"], registered["register"]["user"]["nickname"],
        "{me}"
    );
    let login = run("Login", None).await;
    assert!(login["login"]["accessToken"].is_string(), "{login}");
    let hot = run("Hot", Some(token.to_string())).await;
    assert!(hot["posts"]["edges"].is_array(), "{hot}");
    assert!(
        document.contains("subscription Live"),
        "the tab shows a subscription (run in Chromium by tests/web_client.rs)"
    );
}
