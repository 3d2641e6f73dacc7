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

fn write_limits(p: &Platform) -> String {
    let path = p.data_dir.join("limits.yaml");
    std::fs::write(&path, LIMITS).expect("write limits");
    path.display().to_string()
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
