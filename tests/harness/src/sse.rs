//! GraphQL over server-sent events through the router (`POST /graphql` with `Accept: text/event-stream`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::platform::Platform;

/// Opens a GraphQL-over-SSE subscription through the router; returns the response to read events from.
pub async fn sse_subscribe(
    p: &Platform,
    query: &str,
    variables: Value,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = p
        .http
        .post(p.graphql_url())
        .header("accept", "text/event-stream")
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("router");
    assert_eq!(response.status(), 200);
    response
}

/// The next `data:` payload of an SSE response, within `wait`.
pub async fn sse_next(
    response: &mut reqwest::Response,
    buffer: &mut String,
    wait: Duration,
) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let data: String = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            if !data.is_empty() {
                return serde_json::from_str(&data).ok();
            }
            continue;
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .ok()?
            .ok()??;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}
