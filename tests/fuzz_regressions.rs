//! The fuzz target's inputs, replayed through a running platform (real subgraphs this time): its seeds and
//! every input that once broke the router (`fuzz/regressions/`). Each answer keeps the router's contract
//! (`parley_router::fuzzing::check`: no 5xx, a GraphQL response whose errors carry client codes), and the
//! router keeps serving.

use parley_harness as support;

use std::path::{Path, PathBuf};

use parley_router::fuzzing::{check, request_from, Request};
use serde_json::json;
use support::Platform;

fn inputs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        // Dot files (`.gitkeep`) are not inputs.
        .filter(|path| {
            path.is_file()
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn fuzz_inputs_get_coded_answers_and_the_router_keeps_serving() {
    let p = Platform::start().await;
    let seeds = inputs("fuzz/seeds/router_request");
    assert!(seeds.len() >= 10, "the seed corpus is missing");
    for path in seeds
        .into_iter()
        .chain(inputs("fuzz/regressions/router_request"))
    {
        let data = std::fs::read(&path).expect("input");
        let request = match request_from(&data) {
            Request::Post(body) => p
                .http
                .post(p.graphql_url())
                .header("content-type", "application/json")
                .body(body),
            Request::Get(query) => p.http.get(format!("{}?query={query}", p.graphql_url())),
        };
        let response = request
            .header("accept", "application/json")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: no answer: {e}", path.display()));
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body");
        if let Err(problem) = check(status, &body) {
            panic!("{}: {problem}", path.display());
        }
        p.ok("{ __typename }", json!({}), None).await;
    }
}

/// The fuzz target's first finding: the engine's parser formatted a syntax error after the query it quotes
/// was freed, so the message carried other bytes of the router's memory. Each message must quote its own
/// query's offending token.
#[tokio::test]
async fn syntax_errors_quote_the_query_not_the_routers_memory() {
    let p = Platform::start().await;
    for i in 0..20 {
        let token = format!("bad{i}x");
        let (status, body) = p
            .gql(&format!("query {{ me {{ id }} }} {token}"), json!({}), None)
            .await;
        assert_eq!(
            (status, support::codes(&body)),
            (200, vec!["GRAPHQL_PARSE_FAILED".to_string()]),
            "{body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("`{token}[Name]`")), "{message}");
    }
}
