//! The bad-input table: one row per kind of bad request a client (or an attacker) can send the router, each
//! with the code and HTTP status it must get. After every row the router still answers a good query, and
//! after the whole table its memory is back near where it started.

use parley_harness as support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{codes, Platform, WsClient};

/// What a row sends.
enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
    Get(&'static str),
    /// A JSON body of this many bytes, announced in `content-length`; the router answers before reading it
    /// (and drops the connection), so it is sent over a raw socket that reads the answer first.
    Oversized(usize),
}

struct Row {
    name: &'static str,
    body: Body,
    token: Option<String>,
    status: u16,
    code: &'static str,
}

fn row(name: &'static str, body: Body, status: u16, code: &'static str) -> Row {
    Row {
        name,
        body,
        token: None,
        status,
        code,
    }
}

/// Posts → comments → replies, 25 each: a legitimate shape whose estimated cost (~33k) is two thirds of the max.
const NESTED_PAGES: &str = "posts(first: 25) { edges { node { id comments(first: 25) { edges { node { id replies(first: 25) { edges { node { id } } } } } } } } }";

/// A valid query about `depth` levels deep: posts → author → posts → … (4 levels a round).
fn deep_query(depth: usize) -> String {
    let rounds = depth / 4;
    format!(
        "{{ posts {{ edges {{ node {{ {}__typename{} }} }} }} }}",
        "author { posts { edges { node { ".repeat(rounds),
        " } } } }".repeat(rounds)
    )
}

/// Announces `len` bytes of body, sends the first 64 KiB, and reads the answer.
async fn send_oversized(p: &Platform, len: usize) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = p.router_url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    let _ = socket.write_all(&vec![b' '; 64 * 1024]).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .find("{")
        .and_then(|start| {
            serde_json::from_str(text[start..].trim_end_matches(['\r', '\n', '0'])).ok()
        })
        .unwrap_or(Value::Null);
    (status, body)
}

async fn send(p: &Platform, r: &Row) -> (u16, Value) {
    if let Body::Oversized(len) = r.body {
        return send_oversized(p, len).await;
    }
    let mut request = match &r.body {
        Body::Json(v) => p.http.post(p.graphql_url()).json(v),
        Body::Raw(content_type, bytes) => p
            .http
            .post(p.graphql_url())
            .header("content-type", *content_type)
            .body(bytes.clone()),
        Body::Get(query) => p.http.get(format!("{}?query={query}", p.graphql_url())),
        Body::Oversized(_) => unreachable!("sent above"),
    };
    if let Some(token) = &r.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("router answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn still_serving(p: &Platform, after: &str) {
    let (status, body) = p.gql("{ __typename }", json!({}), None).await;
    assert_eq!(
        (status, body["data"]["__typename"].as_str()),
        (200, Some("Query")),
        "after {after}: {body}"
    );
}

#[tokio::test]
async fn every_bad_input_gets_its_code_and_the_router_keeps_serving() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    still_serving(&p, "start").await;
    let baseline = p.router_rss_kib();

    let aliases = format!(
        "{{ {} }}",
        (0..10_000)
            .map(|i| format!("a{i}: __typename"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let huge_list: Vec<String> = (0..20_000).map(|i| format!("id-{i}")).collect();
    let mut tampered = alice.access.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");

    let rows = vec![
        row(
            "malformed JSON",
            Body::Raw("application/json", b"{\"query\":".to_vec()),
            400,
            "BAD_REQUEST",
        ),
        row(
            "empty body",
            Body::Raw("application/json", Vec::new()),
            400,
            "BAD_REQUEST",
        ),
        row(
            "wrong content type",
            Body::Raw("text/plain", br#"{"query":"{ __typename }"}"#.to_vec()),
            415,
            "BAD_REQUEST",
        ),
        row(
            "mutation over GET",
            Body::Get("mutation%7Blogout(refreshToken:%22x%22)%7D"),
            405,
            "BAD_REQUEST",
        ),
        row(
            "unknown operation name",
            Body::Json(json!({ "query": "query A { __typename }", "operationName": "B" })),
            400,
            "BAD_REQUEST",
        ),
        row(
            "syntax error",
            Body::Json(json!({ "query": "{ me { " })),
            200,
            "GRAPHQL_PARSE_FAILED",
        ),
        row(
            "unknown field",
            Body::Json(json!({ "query": "{ nope }" })),
            200,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        row(
            "wrong variable type",
            Body::Json(
                json!({ "query": "query($n: String!) { userByNickname(nickname: $n) { id } }", "variables": { "n": 5 } }),
            ),
            200,
            "BAD_USER_INPUT",
        ),
        row(
            "missing required variable",
            Body::Json(
                json!({ "query": "query($n: String!) { userByNickname(nickname: $n) { id } }" }),
            ),
            200,
            "BAD_USER_INPUT",
        ),
        row(
            "oversized body",
            Body::Oversized(3_000_000),
            413,
            "BAD_REQUEST",
        ),
        row(
            "1,000-deep query",
            Body::Json(json!({ "query": deep_query(1_000) })),
            200,
            "QUERY_TOO_COMPLEX",
        ),
        row(
            "20-deep query",
            Body::Json(json!({ "query": deep_query(24) })),
            200,
            "QUERY_TOO_COMPLEX",
        ),
        row(
            "21 root fields",
            Body::Json(json!({ "query": format!(
                "{{ {} }}",
                (0..21).map(|i| format!("f{i}: me {{ id }}")).collect::<Vec<_>>().join(" ")
            ) })),
            200,
            "QUERY_TOO_COMPLEX",
        ),
        row(
            "three nested pages, three times (estimated cost over the max)",
            Body::Json(json!({ "query": format!(
                "{{ {} }}",
                (0..3).map(|i| format!("p{i}: {NESTED_PAGES}")).collect::<Vec<_>>().join(" ")
            ) })),
            200,
            "QUERY_TOO_COMPLEX",
        ),
        row(
            "three nested pages of 100, the size given in a variable",
            Body::Json(json!({
                "query": "query($n: Int) { posts(first: $n) { edges { node { comments(first: $n) { edges { node { replies(first: $n) { edges { node { id } } } } } } } } } }",
                "variables": { "n": 100 },
            })),
            200,
            "QUERY_TOO_COMPLEX",
        ),
        row(
            "10,000 aliases",
            Body::Json(json!({ "query": aliases })),
            200,
            "QUERY_TOO_COMPLEX",
        ),
        Row {
            token: Some(alice.access.clone()),
            ..row(
                "huge list argument",
                Body::Json(json!({
                    "query": "mutation($m: [ID!]!) { createGroupChat(title: \"t\", memberIds: $m) { id } }",
                    "variables": { "m": huge_list },
                })),
                200,
                "BAD_USER_INPUT",
            )
        },
        row(
            "login with a 100 KB email (refused before it is stored or hashed)",
            Body::Json(json!({
                "query": "mutation($e: String!) { login(email: $e, password: \"x\") { accessToken } }",
                "variables": { "e": format!("{}@example.com", "a".repeat(100_000)) },
            })),
            200,
            "BAD_USER_INPUT",
        ),
        row(
            "login with a 100 KB password",
            Body::Json(json!({
                "query": "mutation($p: String!) { login(email: \"alice@example.com\", password: $p) { accessToken } }",
                "variables": { "p": "p".repeat(100_000) },
            })),
            200,
            "BAD_USER_INPUT",
        ),
        row(
            "refresh with a 100 KB token",
            Body::Json(json!({
                "query": "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
                "variables": { "t": "t".repeat(100_000) },
            })),
            200,
            "BAD_USER_INPUT",
        ),
        row(
            "a 100 KB cursor (refused before it is decoded)",
            Body::Json(json!({
                "query": "query($a: String) { posts(after: $a) { nodes { id } } }",
                "variables": { "a": "A".repeat(100_000) },
            })),
            200,
            "BAD_USER_INPUT",
        ),
        row(
            "a 100 KB tag filter",
            Body::Json(json!({
                "query": "query($t: String) { posts(tag: $t) { nodes { id } } }",
                "variables": { "t": "t".repeat(100_000) },
            })),
            200,
            "BAD_USER_INPUT",
        ),
        row(
            "invalid UTF-8",
            Body::Raw(
                "application/json",
                b"{\"query\":\"{ __typename \xff\xfe }\"}".to_vec(),
            ),
            400,
            "BAD_REQUEST",
        ),
        Row {
            token: Some("not-a-jwt".into()),
            ..row(
                "garbage token",
                Body::Json(json!({ "query": "{ __typename }" })),
                401,
                "UNAUTHENTICATED",
            )
        },
        Row {
            token: Some(tampered),
            ..row(
                "tampered token",
                Body::Json(json!({ "query": "{ me { id } }" })),
                401,
                "UNAUTHENTICATED",
            )
        },
        row(
            "no token where one is needed",
            Body::Json(
                json!({ "query": "mutation { setTyping(chatId: \"01890000-0000-7000-8000-000000000000\", typing: true) }" }),
            ),
            200,
            "UNAUTHENTICATED",
        ),
    ];
    for r in &rows {
        eprintln!("row: {}", r.name);
        let (status, body) = send(&p, r).await;
        assert_eq!(
            (status, codes(&body)),
            (r.status, vec![r.code.to_string()]),
            "{}: {body}",
            r.name
        );
        still_serving(&p, r.name).await;
    }
    // The limits leave legitimate shapes alone: one nested page of pages, twenty root fields.
    p.ok(&format!("{{ {NESTED_PAGES} }}"), json!({}), None)
        .await;
    // The estimate: per page of 25 (`first`), an edge and its node (1 each) over what the node selects —
    // posts 1 + 25 × (2 + comments 1 + 25 × (2 + replies 1 + 25 × 2)) = 33,201 — two such are over 50,000.
    let (_, body) = p
        .gql(
            &format!("{{ a: {NESTED_PAGES} b: {NESTED_PAGES} }}"),
            json!({}),
            None,
        )
        .await;
    let error = &body["errors"][0];
    assert_eq!(
        error["extensions"]["reason"], "COST_ESTIMATED_TOO_EXPENSIVE",
        "{body}"
    );
    assert!(
        error["message"].as_str().unwrap_or("").contains("66402"),
        "{body}"
    );
    let twenty: Vec<String> = (0..20)
        .map(|i| format!("f{i}: posts(first: 1) {{ edges {{ node {{ id }} }} }}"))
        .collect();
    p.ok(&format!("{{ {} }}", twenty.join(" ")), json!({}), None)
        .await;

    // WebSocket protocol abuse: each closes that connection with the protocol's code, nothing else.
    let mut ws = WsClient::open(&p).await;
    ws.send_raw(r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { chatEvents { kind } }"}}"#)
        .await;
    assert_eq!(
        ws.close_code(Duration::from_secs(10)).await,
        Some(4401),
        "subscribe before init"
    );
    let mut ws = WsClient::connect(&p, Some(&alice.access)).await;
    ws.send_raw(r#"{"type":"connection_init","payload":{}}"#)
        .await;
    assert_eq!(
        ws.close_code(Duration::from_secs(10)).await,
        Some(4429),
        "second connection_init"
    );
    let mut ws = WsClient::open(&p).await;
    ws.send_raw("this is not json").await;
    assert_eq!(
        ws.close_code(Duration::from_secs(10)).await,
        Some(4400),
        "garbage frame"
    );
    let mut ws = WsClient::open(&p).await;
    ws.send_raw(r#"{"type":"no_such_message"}"#).await;
    assert_eq!(
        ws.close_code(Duration::from_secs(10)).await,
        Some(4400),
        "unknown message type"
    );
    let mut ws = WsClient::open(&p).await;
    assert_eq!(
        ws.close_code(Duration::from_secs(30)).await,
        Some(4408),
        "no connection_init at all"
    );
    still_serving(&p, "websocket abuse").await;

    // The whole table again, twice: memory settles instead of growing with each bad request.
    for _ in 0..2 {
        for r in &rows {
            send(&p, r).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = p.router_rss_kib();
    assert!(
        after < baseline + 64 * 1024,
        "router RSS grew from {baseline} KiB to {after} KiB"
    );
    still_serving(&p, "the table three times").await;
}

/// The introspected type's list depth is all that matters here: `[X]`, `[X!]!` and so on.
fn is_list(ty: &Value) -> bool {
    match ty["kind"].as_str() {
        Some("LIST") => true,
        Some("NON_NULL") => is_list(&ty["ofType"]),
        _ => false,
    }
}

/// Every list input the schema takes: `Type.field(argument)` for arguments, `Input.field` for input fields.
async fn list_inputs(p: &Platform) -> Vec<String> {
    let ty = "type { kind ofType { kind ofType { kind ofType { kind } } } }";
    let data = p
        .ok(
            &format!(
                "{{ __schema {{ types {{ name kind fields {{ name args {{ name {ty} }} }} inputFields {{ name {ty} }} }} }} }}"
            ),
            json!({}),
            None,
        )
        .await;
    let mut found = Vec::new();
    for t in data["__schema"]["types"].as_array().expect("types") {
        let name = t["name"].as_str().unwrap_or_default();
        if name.starts_with("__") {
            continue;
        }
        for field in t["fields"].as_array().into_iter().flatten() {
            for arg in field["args"].as_array().into_iter().flatten() {
                if is_list(&arg["type"]) {
                    found.push(format!(
                        "{name}.{}({})",
                        field["name"].as_str().unwrap_or_default(),
                        arg["name"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
        for field in t["inputFields"].as_array().into_iter().flatten() {
            if is_list(&field["type"]) {
                found.push(format!(
                    "{name}.{}",
                    field["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    found.sort();
    found
}

/// Each list input with the operation that fills it from `$list`, and the most items its subgraph takes.
const LIST_INPUTS: &[(&str, &str, usize)] = &[
    (
        "CreatePostInput.attachmentIds",
        "mutation($list: [ID!]!) { createPost(input: {title: \"t\", body: \"b\", attachmentIds: $list}) { id } }",
        10,
    ),
    (
        "CreatePostInput.tags",
        "mutation($list: [String!]!) { createPost(input: {title: \"t\", body: \"b\", tags: $list}) { id } }",
        5,
    ),
    (
        "Mutation.createGroupChat(memberIds)",
        "mutation($list: [ID!]!) { createGroupChat(title: \"t\", memberIds: $list) { id } }",
        200,
    ),
    (
        "Mutation.markNotificationsRead(ids)",
        "mutation($list: [ID!]) { markNotificationsRead(ids: $list) }",
        100,
    ),
    (
        "Mutation.trackEvents(input)",
        "mutation($list: [TrackEventInput!]!) { trackEvents(input: $list) }",
        100,
    ),
    (
        "ReportExportInput.steps",
        "query($list: [String!]) { exportReport(input: {report: FUNNEL, from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\", steps: $list}) { url } }",
        10,
    ),
    (
        "Query.funnel(steps)",
        "query($list: [String!]!) { funnel(steps: $list, from: \"2026-01-01T00:00:00Z\", to: \"2026-01-02T00:00:00Z\") { name users } }",
        10,
    ),
    (
        "SearchFilter.kinds",
        "query($list: [SearchKind!]) { search(query: \"oil\", filter: {kinds: $list}) { totalCount } }",
        4,
    ),
    (
        "SearchFilter.tags",
        "query($list: [String!]) { search(query: \"oil\", filter: {tags: $list}) { totalCount } }",
        10,
    ),
    (
        "UpdatePostInput.attachmentIds",
        "mutation($list: [ID!]) { updatePost(id: \"01890000-0000-7000-8000-000000000000\", input: {attachmentIds: $list}) { id } }",
        10,
    ),
    (
        "UpdatePostInput.tags",
        "mutation($list: [String!]) { updatePost(id: \"01890000-0000-7000-8000-000000000000\", input: {tags: $list}) { id } }",
        5,
    ),
];

/// Every list input of the schema is bounded before work: one item over its subgraph's limit is
/// `BAD_USER_INPUT` from the subgraph, and 20,000 items (under the body limit) are refused by the router before any subgraph sees
/// them. A new list input without a row here fails the test.
#[tokio::test]
async fn every_list_input_is_bounded_before_work() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let mut listed: Vec<String> = LIST_INPUTS
        .iter()
        .map(|(at, _, _)| at.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        list_inputs(&p).await,
        listed,
        "a list input without a row in LIST_INPUTS"
    );
    for (at, operation, max) in LIST_INPUTS {
        for count in [max + 1, 20_000] {
            // Ids, or an enum's value where the list is of one.
            let list: Vec<Value> = (0..count)
                .map(|i| {
                    if operation.contains("[SearchKind!]") {
                        json!("POST")
                    } else if operation.contains("[TrackEventInput!]") {
                        json!({ "name": "screen_view" })
                    } else {
                        json!(format!("01890000-0000-7000-8000-{i:012}"))
                    }
                })
                .collect();
            let started = std::time::Instant::now();
            let (_, body) = p
                .gql(operation, json!({ "list": list }), Some(&alice.access))
                .await;
            assert_eq!(
                codes(&body),
                vec!["BAD_USER_INPUT"],
                "{at} with {count}: {body}"
            );
            let reason = body["errors"][0]["extensions"]["reason"].as_str();
            assert_eq!(
                reason == Some("INPUT_LIST_TOO_LONG"),
                count == 20_000,
                "{at} with {count}: who refused: {body}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{at} with {count}"
            );
        }
    }
    still_serving(&p, "oversize lists").await;
}
