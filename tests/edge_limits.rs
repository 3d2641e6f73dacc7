//! The router's per-caller rate limits as a client meets them on the embedded default (no Redis): counted in
//! process, one per root field (aliases do not multiply a budget), by the address the router trusts (a
//! client's own `x-forwarded-for` is ignored unless it comes through a configured proxy), and still counted
//! when a configured Redis is down.

use parley_harness as support;

use serde_json::{json, Value};
use support::{codes, Platform};

/// Three mutation root fields a minute per caller; queries (which the harness uses to see a router is up)
/// are left alone.
const LIMITS: &str = "plugins: {parley: {config: {rate_limit: {window_secs: 600, mutation: 3}}}}";

/// Sends one anonymous mutation with `fields` aliased root fields, as if from `forwarded` (a client-written
/// `x-forwarded-for`); the codes of its errors.
async fn mutate(base: &str, fields: usize, forwarded: Option<&str>) -> Vec<String> {
    let selection: Vec<String> = (0..fields)
        .map(|i| format!("f{i}: requestPasswordReset(email: \"nobody{i}@example.com\")"))
        .collect();
    let mut request = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": format!("mutation {{ {} }}", selection.join(" ")) }));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let body: Value = request
        .send()
        .await
        .expect("router")
        .json()
        .await
        .expect("json");
    codes(&body)
}

/// Writes router config `yaml` to `name` in the platform's data directory; its path.
fn write_config(p: &Platform, name: &str, yaml: &str) -> String {
    let path = p.data_dir.join(name);
    std::fs::write(&path, yaml).expect("write config");
    path.display().to_string()
}

fn write_limits(p: &Platform) -> String {
    write_config(p, "limits.yaml", LIMITS)
}

#[tokio::test]
async fn limits_hold_without_redis_per_field_and_per_trusted_address() {
    let p = Platform::start().await;
    let limits = write_limits(&p);

    // In process, per root field: 2 + 1 fields pass, the fourth is refused — whatever address the client
    // writes in `x-forwarded-for`, since it does not come through a trusted proxy.
    let router = p.start_router_with(&[], &["--config", &limits]).await;
    assert!(mutate(&router.url, 2, None).await.is_empty());
    assert!(mutate(&router.url, 1, Some("198.51.100.1"))
        .await
        .is_empty());
    assert_eq!(
        mutate(&router.url, 1, Some("198.51.100.2")).await,
        ["RATE_LIMITED"]
    );
    // Aliases cannot buy more: four at once on a fresh budget is over three.
    let fresh = p.start_router_with(&[], &["--config", &limits]).await;
    assert_eq!(mutate(&fresh.url, 4, None).await, ["RATE_LIMITED"]);

    // Behind a trusted proxy (loopback here) each forwarded client has a budget of its own, and an address
    // a client wrote further left is not believed.
    let proxied = p
        .start_router_with(
            &[],
            &["--config", &limits, "--trusted-proxies", "127.0.0.1/32"],
        )
        .await;
    for _ in 0..3 {
        assert!(mutate(&proxied.url, 1, Some("203.0.113.7"))
            .await
            .is_empty());
    }
    assert_eq!(
        mutate(&proxied.url, 1, Some("6.6.6.6, 203.0.113.7")).await,
        ["RATE_LIMITED"],
        "a spoofed left-most entry is the same client"
    );
    assert!(mutate(&proxied.url, 1, Some("203.0.113.8"))
        .await
        .is_empty());

    // Redis configured but down: the limits are counted in process instead of turning off.
    let closed = format!("redis://127.0.0.1:{}", support::free_port());
    let no_redis = p
        .start_router_with(&[], &["--config", &limits, "--redis-url", &closed])
        .await;
    assert!(mutate(&no_redis.url, 3, None).await.is_empty());
    assert_eq!(mutate(&no_redis.url, 1, None).await, ["RATE_LIMITED"]);
}

/// A WebSocket handshake's HTTP status (101 when accepted).
async fn handshake_status(ws_url: &str) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error;
    let mut request = ws_url.into_client_request().expect("ws request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, response)) => {
            drop(socket);
            response.status().as_u16()
        }
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("handshake: {other}"),
    }
}

/// One address holds at most its share of long-lived connections (given back when they close), and one user
/// at most their share of open subscriptions in a subgraph, whatever connections they use.
#[tokio::test]
async fn long_lived_clients_are_capped_per_caller() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let caps = write_config(
        &p,
        "caps.yaml",
        "plugins: {parley: {config: {long_lived_clients: {per_address: 2}}}}",
    );
    let router = p.start_router_with(&[], &["--config", &caps]).await;
    let first = support::WsClient::connect_url(&router.ws_url(), None).await;
    let _second = support::WsClient::connect_url(&router.ws_url(), None).await;
    assert_eq!(handshake_status(&router.ws_url()).await, 429, "a third");
    // An SSE stream is a long-lived client of the same address.
    let sse = reqwest::Client::new()
        .post(format!("{}/graphql", router.url))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "subscription { commentAdded(postId: \"01890000-0000-7000-8000-000000000000\") { id } }" }))
        .send()
        .await
        .expect("router");
    assert_eq!(sse.status().as_u16(), 429, "a stream over the cap");
    first.close().await;
    support::eventually("the slot is given back", || async {
        let status = handshake_status(&router.ws_url()).await;
        (status == 101).then_some(())
    })
    .await;

    // Per user, in the subgraph: 100 open subscriptions, the 101st refused — on one connection or several.
    let post = support::create_post(&p, &alice, "Watched", None).await;
    let mut ws = support::WsClient::connect(&p, Some(&alice.access)).await;
    for i in 0..parley_kit::ws::MAX_SUBSCRIPTIONS_PER_USER {
        ws.subscribe(
            &i.to_string(),
            "subscription($p: ID!) { commentAdded(postId: $p) { id } }",
            json!({ "p": post }),
        )
        .await;
    }
    let mut other = support::WsClient::connect(&p, Some(&alice.access)).await;
    // The 100 reach the subgraph in their own time: a few tries, well within the subscription rate limit.
    let mut refused = false;
    for attempt in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let id = format!("over-{attempt}");
        other
            .subscribe(
                &id,
                "subscription($p: ID!) { commentAdded(postId: $p) { id } }",
                json!({ "p": post }),
            )
            .await;
        if let Some(answer) = other.next_for(&id, std::time::Duration::from_secs(2)).await {
            assert!(answer.to_string().contains("RATE_LIMITED"), "{answer}");
            refused = true;
            break;
        }
    }
    assert!(refused, "the 101st subscription was not refused");
}

/// Sends one operation over `ws` as `id` (`extensions` as given) and returns its error codes.
async fn ws_codes_of(
    ws: &mut support::WsClient,
    id: &str,
    query: &str,
    extensions: Value,
) -> Vec<String> {
    ws.subscribe_with(id, json!({ "query": query, "extensions": extensions }))
        .await;
    let answer = ws
        .next_for(id, std::time::Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no answer to {id}"));
    support::ws_codes(&answer)
}

/// Over a WebSocket, operations count against the connection's address — the one the router trusts, as
/// over HTTP — whatever `x-forwarded-for` the client writes where the engine reads a WebSocket's headers
/// (the `connection_init` payload, its `headers`, an operation's `extensions.headers`): in the router's
/// limits and in the subgraphs' (users' failed logins per address). Served by the engine (the live front's
/// WebSocket side off) and by the live front alike.
#[tokio::test]
async fn websocket_operations_count_against_the_connections_address() {
    let p = Platform::start().await;
    let limits = write_limits(&p);
    let spoofed = |n: u32| json!({ "headers": { "x-forwarded-for": format!("198.51.100.{n}") } });
    const RESET: &str = "mutation { requestPasswordReset(email: \"nobody@example.com\") }";
    for front in ["false", "true"] {
        let router = p
            .start_router_with(
                &[],
                &["--config", &limits, "--live-sharing-websocket", front],
            )
            .await;
        // Three mutation fields from this address over HTTP: its budget is spent.
        assert!(mutate(&router.url, 3, None).await.is_empty());
        let mut top = support::WsClient::connect_with(
            &router.ws_url(),
            json!({ "x-forwarded-for": "198.51.100.1" }),
        )
        .await;
        assert_eq!(
            ws_codes_of(&mut top, "a", RESET, json!({})).await,
            ["RATE_LIMITED"],
            "front {front}: an address in connection_init"
        );
        assert_eq!(
            ws_codes_of(&mut top, "b", RESET, spoofed(2)).await,
            ["RATE_LIMITED"],
            "front {front}: an address in the operation's headers"
        );
        let mut nested = support::WsClient::connect_with(&router.ws_url(), spoofed(3)).await;
        assert_eq!(
            ws_codes_of(&mut nested, "c", RESET, json!({})).await,
            ["RATE_LIMITED"],
            "front {front}: an address in connection_init's headers"
        );
    }

    // Users counts failed logins per address too (50 in its window): 25 failures over each kind of WebSocket,
    // each written as if from elsewhere, are this address's, so the next login over HTTP is refused.
    let roomy = write_config(
        &p,
        "roomy.yaml",
        "plugins: {parley: {config: {rate_limit: {window_secs: 600, mutation: 1000}}}}",
    );
    let login = |i: u32| {
        format!("mutation {{ login(email: \"nobody{i}@example.com\", password: \"wrong wrong 1\") {{ accessToken }} }}")
    };
    let mut router = None;
    for (n, front) in ["false", "true"].into_iter().enumerate() {
        let started = p
            .start_router_with(
                &[],
                &["--config", &roomy, "--live-sharing-websocket", front],
            )
            .await;
        let mut ws = support::WsClient::connect_with(&started.ws_url(), spoofed(4)).await;
        for i in 0..25 {
            let i = i + 25 * n as u32;
            assert_eq!(
                ws_codes_of(&mut ws, &format!("login-{i}"), &login(i), spoofed(10 + i)).await,
                ["UNAUTHENTICATED"],
                "front {front}: failed login {i}"
            );
        }
        router = Some(started);
    }
    let router = router.expect("a router");
    let (_, body) = Platform::client_of(&router.url)
        .gql(&login(999), json!({}), None)
        .await;
    assert_eq!(codes(&body), ["RATE_LIMITED"], "{body}");
}
