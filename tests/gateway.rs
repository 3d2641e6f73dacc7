//! Gateway behaviour: partial results when a subgraph is down, the offline GraphiQL page, health.

mod support;

use serde_json::json;
use support::{codes, eventually, Platform};

#[tokio::test]
async fn a_stopped_subgraph_gives_partial_data_with_a_path() {
    let mut p = Platform::start().await;
    let alice = p.register("alice").await;
    // Wait until social knows alice, so the joined query works before we stop it.
    let q = "query($id: ID!) { user(id: $id) { nickname followerCount } }";
    eventually("join to work", || async {
        let (_, body) = p.gql(q, json!({ "id": alice.id }), None).await;
        (body["data"]["user"]["followerCount"] == 0).then_some(())
    })
    .await;

    p.stop_subgraph("social").await;

    // Touching only users still answers fully.
    let only_users = p
        .ok(
            "query($id: ID!) { user(id: $id) { nickname } }",
            json!({ "id": alice.id }),
            None,
        )
        .await;
    assert_eq!(only_users["user"]["nickname"], "alice");

    // Touching both: users' data plus an error with a path for social's part. (`followerCount` is non-null,
    // so the user it belongs to is nulled; the other root field keeps its data.)
    let both = "query($id: ID!) { profile: user(id: $id) { nickname } social: user(id: $id) { nickname followerCount } }";
    let (status, body) = p.gql(both, json!({ "id": alice.id }), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["profile"]["nickname"], "alice", "{body}");
    assert_eq!(body["data"]["social"], serde_json::Value::Null, "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert!(!errors.is_empty());
    assert!(
        errors.iter().any(|e| e["path"][0] == "social"),
        "an error carries a path: {body}"
    );
    assert!(
        codes(&body).iter().any(|c| c == "SUBGRAPH_UNAVAILABLE"),
        "{body}"
    );
}

#[tokio::test]
async fn graphiql_is_served_offline() {
    let p = Platform::start().await;
    let page = p
        .http
        .get(format!("{}/", p.router_url))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("graphiql.min.js"));
    assert!(!html.contains("https://"), "no CDN in the page");
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphql-ws.min.js",
    ] {
        let response = p
            .http
            .get(format!("{}/graphiql/{asset}", p.router_url))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.bytes().await.expect("bytes").len() > 1000,
            "{asset}"
        );
    }
    let health = p
        .http
        .get(format!("{}/health", p.router_url))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
}
