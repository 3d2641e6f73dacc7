//! Gateway behaviour: partial results when a subgraph is down, the offline GraphiQL page, health.

use parley_harness as support;

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
    assert!(!html.contains("https://"), "no CDN in the page");
    // The script and the stylesheet the page loads are served by the router itself.
    let assets: Vec<&str> = html
        .split('"')
        .filter(|s| s.starts_with("/graphiql/assets/"))
        .collect();
    assert!(assets.len() >= 2, "{html}");
    for asset in assets {
        let response = p
            .http
            .get(format!("{}{asset}", p.router_url))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            !response.bytes().await.expect("bytes").is_empty(),
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

/// Automatic persisted queries: hash alone → PERSISTED_QUERY_NOT_FOUND; query + hash → registered and run;
/// hash alone again (POST and GET) → run; a hash that does not match its query → BAD_REQUEST.
#[tokio::test]
async fn automatic_persisted_queries() {
    let p = Platform::start().await;
    let query = "{ __typename }";
    // sha256("{ __typename }")
    let hash = "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b";
    let ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let post = |body: serde_json::Value| {
        let request = p.http.post(p.graphql_url()).json(&body);
        async move {
            let response = request.send().await.expect("router");
            let status = response.status().as_u16();
            (
                status,
                response.json::<serde_json::Value>().await.expect("json"),
            )
        }
    };

    let (status, body) = post(json!({ "extensions": ext })).await;
    assert_eq!(
        (status, codes(&body)),
        (200, vec!["PERSISTED_QUERY_NOT_FOUND".to_string()]),
        "{body}"
    );
    let (status, body) = post(json!({ "query": query, "extensions": ext })).await;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (200, &json!("Query")),
        "{body}"
    );
    let (status, body) = post(json!({ "extensions": ext })).await;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (200, &json!("Query")),
        "{body}"
    );

    let url = format!(
        "{}?extensions={}",
        p.graphql_url(),
        urlencode(&ext.to_string())
    );
    let response = p.http.get(url).send().await.expect("router");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["data"]["__typename"], "Query", "GET: {body}");

    let (_, body) = post(json!({ "query": "{ me { id } }", "extensions": ext })).await;
    assert_eq!(codes(&body), ["BAD_REQUEST"], "{body}");

    // A query that does not validate is not remembered, so junk cannot fill the cache.
    let junk = "{ nope }";
    let junk_hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(junk.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let junk_ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": junk_hash } });
    let (_, body) = post(json!({ "query": junk, "extensions": junk_ext })).await;
    assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"], "{body}");
    let (_, body) = post(json!({ "extensions": junk_ext })).await;
    assert_eq!(codes(&body), ["PERSISTED_QUERY_NOT_FOUND"], "{body}");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Allow-list mode: only the manifest's documents run, by id; any other query is refused.
#[tokio::test]
async fn persisted_documents_allow_list() {
    let dir = parley_kit::testing::temp_dir("allow-list");
    let manifest = dir.join("documents.json");
    std::fs::write(&manifest, r#"{ "typename-1": "{ __typename }" }"#).expect("manifest");
    let manifest = manifest.to_str().expect("utf-8 path");
    let p =
        Platform::start_full(support::Store::Sqlite, &["--persisted-documents", manifest]).await;
    let response = p
        .http
        .post(p.graphql_url())
        .json(&json!({ "documentId": "typename-1" }))
        .send()
        .await
        .expect("router");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    let (status, body) = p.gql("{ me { id } }", json!({}), None).await;
    assert!(
        body["data"].is_null() && !codes(&body).is_empty(),
        "{status}: {body}"
    );
    let (_, body) = p.gql("query { __typename }", json!({}), None).await;
    assert!(
        !codes(&body).is_empty(),
        "a full query outside the list is refused: {body}"
    );
}

/// Every response names its request: the client's `x-request-id` when it sent a sane one, else a new id.
#[tokio::test]
async fn request_ids_are_returned() {
    let p = Platform::start().await;
    let send = |id: Option<&str>| {
        let mut request = p
            .http
            .post(p.graphql_url())
            .json(&json!({ "query": "{ __typename }" }));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        async move {
            let response = request.send().await.expect("router");
            response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        }
    };
    assert_eq!(send(Some("client-42")).await.as_deref(), Some("client-42"));
    let fresh = send(None).await.expect("an id");
    assert!(uuid::Uuid::parse_str(&fresh).is_ok(), "{fresh}");
    assert_ne!(
        send(None).await.expect("an id"),
        fresh,
        "one id per request"
    );
    let replaced = send(Some("bad id with spaces")).await.expect("an id");
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
}

/// A subgraph that accepts connections but never answers costs the client the subgraph timeout, not more:
/// the other subgraphs' fields come back, the hanging one's with SUBGRAPH_UNAVAILABLE.
#[tokio::test]
async fn a_hanging_subgraph_costs_the_timeout_and_returns_partial_data() {
    // Accepts and holds every connection, never writes a byte.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hang_addr = hang.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hang.accept().await {
            held.push(socket);
        }
    });
    let dir = parley_kit::testing::temp_dir("timeout");
    let extra = dir.join("router.yaml");
    std::fs::write(
        &extra,
        // Only on the hanging subgraph: a busy machine can take longer than that to hash a password.
        "traffic_shaping:\n  subgraphs:\n    social:\n      request_timeout: 1s\n",
    )
    .expect("yaml");
    let social = format!("social=http://{hang_addr}/graphql");
    let p = Platform::start_full(
        support::Store::Sqlite,
        &[
            "--config",
            extra.to_str().expect("utf-8"),
            "--subgraph-url",
            &social,
        ],
    )
    .await;
    let alice = p.register("alice").await;
    let started = std::time::Instant::now();
    let (status, body) = p
        .gql(
            "{ profile: me { nickname } social: me { nickname followerCount } }",
            json!({}),
            Some(&alice.access),
        )
        .await;
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert_eq!(status, 200, "{body}");
    // followerCount is non-null, so the hanging subgraph nulls its parent; the other root field stands.
    assert_eq!(body["data"]["profile"]["nickname"], "alice", "{body}");
    assert_eq!(body["data"]["social"], serde_json::Value::Null, "{body}");
    assert_eq!(codes(&body), ["SUBGRAPH_UNAVAILABLE"], "{body}");
}

/// `/media/…` on the router is the media subgraph's: bodies larger than a GraphQL request may be go through
/// as streams both ways, with the headers a download needs, and nothing but GET, HEAD and PUT. (A stand-in
/// media server answers a second router here; `tests/media.rs` drives the real one.)
#[tokio::test]
async fn media_paths_are_forwarded_as_streams() {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, put};
    const BIG: usize = 5_000_000;
    let media = axum::Router::new()
        .route(
            "/media/uploads/{id}",
            put(|headers: HeaderMap, body: Bytes| async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                format!("{} bytes of {kind}", body.len())
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
        .route(
            "/media/files/{id}/{variant}",
            get(|headers: HeaderMap| async move {
                let ranged = headers.contains_key("range");
                let status = if ranged {
                    StatusCode::PARTIAL_CONTENT
                } else {
                    StatusCode::OK
                };
                (
                    status,
                    [
                        ("content-type", "image/png"),
                        ("content-disposition", "inline; filename*=UTF-8''a.png"),
                        ("x-internal", "not for clients"),
                    ],
                    vec![7u8; if ranged { 10 } else { BIG }],
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let media_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, media).await });

    let p = Platform::start().await;
    let config = p.data_dir.join("media.yaml");
    std::fs::write(
        &config,
        format!("plugins: {{parley: {{config: {{media_url: {media_url:?}}}}}}}"),
    )
    .expect("config");
    let router = p
        .start_router_with(&[], &["--config", &config.display().to_string()])
        .await;
    let http = reqwest::Client::new();

    // An upload larger than the GraphQL body limit (2 MB) goes through whole.
    let put = http
        .put(format!("{}/media/uploads/abc?expires=1&sig=x", router.url))
        .header("content-type", "application/octet-stream")
        .body(vec![1u8; 3_000_000])
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    assert_eq!(
        put.text().await.expect("text"),
        "3000000 bytes of application/octet-stream"
    );
    let whole = http
        .get(format!(
            "{}/media/files/abc/original?expires=1&sig=x",
            router.url
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "image/png");
    assert_eq!(
        whole.headers()["content-disposition"],
        "inline; filename*=UTF-8''a.png"
    );
    assert!(
        whole.headers().get("x-internal").is_none(),
        "only the allow-listed headers"
    );
    assert_eq!(whole.bytes().await.expect("body").len(), BIG);
    let part = http
        .get(format!(
            "{}/media/files/abc/original?expires=1&sig=x",
            router.url
        ))
        .header("range", "bytes=0-9")
        .send()
        .await
        .expect("get");
    assert_eq!(part.status(), 206);
    let post = http
        .post(format!("{}/media/uploads/abc", router.url))
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 405);
    // The platform's own router forwards to its media subgraph, which refuses a link it did not sign.
    let unsigned = http
        .get(format!(
            "{}/media/files/01890000-0000-7000-8000-000000000000/original?expires=9999999999&sig=AAAA",
            p.router_url
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(unsigned.status(), 403);
}
