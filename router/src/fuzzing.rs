//! What the fuzz target (`fuzz/`) sends the router and what every answer must be, shared with the
//! regression tests that replay its inputs (`tests/fuzz_regressions.rs`).
//!
//! - [`request_from`]: fuzzer bytes → a request. The first byte picks the shape: a raw JSON body, a GraphQL
//!   document in a well-formed body (so the input reaches the parser and planner instead of dying in JSON),
//!   a document with variables after its first newline, or a GET query string.
//! - [`check`]: no 5xx, and a GraphQL response whose errors each carry a code from [`CLIENT_CODES`].

use serde_json::{json, Value};

pub use crate::plugin::CLIENT_CODES;

/// A request built from fuzzer input.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `POST /graphql` with this body as `application/json`.
    Post(Vec<u8>),
    /// `GET /graphql?query=` with this (already percent-encoded) value.
    Get(String),
}

/// Fuzzer bytes → a request (see the module doc for the shapes).
pub fn request_from(data: &[u8]) -> Request {
    let Some((&shape, rest)) = data.split_first() else {
        return Request::Post(Vec::new());
    };
    let text = || String::from_utf8_lossy(rest).into_owned();
    match shape % 4 {
        0 => Request::Post(rest.to_vec()),
        1 => Request::Post(json!({ "query": text() }).to_string().into_bytes()),
        2 => {
            let text = text();
            let (query, variables) = text.split_once('\n').unwrap_or((&text, ""));
            let variables = serde_json::from_str::<Value>(variables)
                .unwrap_or_else(|_| Value::String(variables.to_string()));
            Request::Post(
                json!({ "query": query, "variables": variables })
                    .to_string()
                    .into_bytes(),
            )
        }
        _ => Request::Get(percent_encode(&text())),
    }
}

/// What every answer to a GraphQL request must be; says what is wrong otherwise.
pub fn check(status: u16, body: &[u8]) -> Result<(), String> {
    let text = || String::from_utf8_lossy(body).into_owned();
    if status >= 500 {
        return Err(format!("HTTP {status}: {}", text()));
    }
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON ({e}): {}", text()))?;
    if body.get("data").is_none() && body.get("errors").is_none() {
        return Err(format!("neither data nor errors: {body}"));
    }
    for error in body["errors"].as_array().into_iter().flatten() {
        let code = error["extensions"]["code"].as_str().unwrap_or_default();
        if !error["message"].is_string() || !CLIENT_CODES.contains(&code) {
            return Err(format!("an error without a client code: {error}"));
        }
    }
    Ok(())
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_picks_the_shape() {
        assert_eq!(request_from(b""), Request::Post(Vec::new()));
        assert_eq!(request_from(b"\x00{}"), Request::Post(b"{}".to_vec()));
        assert_eq!(
            request_from(b"\x01{ me { id } }"),
            Request::Post(br#"{"query":"{ me { id } }"}"#.to_vec())
        );
        assert_eq!(
            request_from(b"\x02query($n: Int) { f(n: $n) }\n{\"n\": 1}"),
            Request::Post(
                br#"{"query":"query($n: Int) { f(n: $n) }","variables":{"n":1}}"#.to_vec()
            )
        );
        assert_eq!(
            request_from(b"\x03{ a }"),
            Request::Get("%7B%20a%20%7D".into())
        );
    }

    #[test]
    fn answers_need_a_client_code_on_every_error() {
        assert!(check(200, br#"{"data":{"a":1}}"#).is_ok());
        assert!(check(
            400,
            br#"{"errors":[{"message":"m","extensions":{"code":"BAD_REQUEST"}}]}"#
        )
        .is_ok());
        assert!(check(500, br#"{"data":null}"#).is_err());
        assert!(check(200, b"<html>").is_err());
        assert!(check(200, br#"{"errors":[{"message":"m"}]}"#).is_err());
        assert!(check(
            200,
            br#"{"errors":[{"message":"m","extensions":{"code":"PLANNER_PANIC"}}]}"#
        )
        .is_err());
    }
}
