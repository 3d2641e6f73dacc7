//! A subgraph's internal endpoints answer only the platform's own processes: `GET /events` (every published
//! event: chat texts, blocks) needs the router key the subgraphs share, whoever else can reach the port.

use parley_harness as support;

use support::Platform;

#[tokio::test]
async fn the_event_log_needs_the_router_key() {
    let p = Platform::start().await;
    p.register("alice").await; // something in users' log
    let http = reqwest::Client::new();
    for subgraph in &p.subgraphs {
        let url = format!("{}/events?after=0", subgraph.url);
        let anonymous = http.get(&url).send().await.expect("subgraph");
        assert_eq!(anonymous.status(), 403, "{} without a key", subgraph.name);
        let wrong = http
            .get(&url)
            .header("x-parley-router-key", "not-the-key")
            .send()
            .await
            .expect("subgraph");
        assert_eq!(wrong.status(), 403, "{} with a wrong key", subgraph.name);
        let keyed = http
            .get(&url)
            .header("x-parley-router-key", &p.router_key)
            .send()
            .await
            .expect("subgraph");
        assert_eq!(keyed.status(), 200, "{} with the key", subgraph.name);
    }
}

/// The live front's token (it reads as staff) and a post's and a chat's live audiences are for the router
/// alone.
#[tokio::test]
async fn the_live_fronts_endpoints_need_the_router_key() {
    let p = Platform::start().await;
    let http = reqwest::Client::new();
    let viewers = serde_json::json!([{ "user": "01900000-0000-7000-8000-000000000001",
                                        "session": "01900000-0000-7000-8000-000000000002" }]);
    let nothing = "01900000-0000-7000-8000-000000000000";
    for (subgraph, path, audience) in [
        ("users", "/internal/live-token", serde_json::json!({})),
        (
            "posts",
            "/internal/live-audience",
            serde_json::json!({ "questions": [{ "postId": nothing, "viewers": viewers }] }),
        ),
        (
            "chat",
            "/internal/live-audience",
            serde_json::json!({ "questions": [{ "chatId": nothing, "viewers": viewers }] }),
        ),
    ] {
        let url = format!(
            "{}{path}",
            p.subgraph_url(subgraph).trim_end_matches("/graphql")
        );
        for key in [None, Some("not-the-key")] {
            let mut request = http.post(&url).json(&audience);
            if let Some(key) = key {
                request = request.header("x-parley-router-key", key);
            }
            let status = request.send().await.expect("subgraph").status();
            assert_eq!(status, 403, "{path} with {key:?}");
        }
        let answer: serde_json::Value = http
            .post(&url)
            .header("x-parley-router-key", &p.router_key)
            .json(&audience)
            .send()
            .await
            .expect("subgraph")
            .json()
            .await
            .expect("json");
        if subgraph == "users" {
            assert!(answer["token"].is_string(), "{answer}");
        } else {
            // No such post, or not a member of such a chat: the viewer's stream ends.
            assert_eq!(answer["answers"], serde_json::json!([["end"]]), "{answer}");
        }
    }
}
