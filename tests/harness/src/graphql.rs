//! A GraphQL client of the router: POST with or without a token, expect success, read error codes.

use serde_json::{json, Value};

use crate::platform::Platform;

/// A client of one router (for a further router next to the platform's own).
pub struct Client {
    pub url: String,
    pub(crate) http: reqwest::Client,
}

impl Client {
    /// POSTs a GraphQL request; returns the HTTP status and the JSON body.
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("router reachable");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Platform {
    /// POSTs a GraphQL request; returns the HTTP status and the JSON body.
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(self.graphql_url()).json(&json!({
            "query": query,
            "variables": variables,
        }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("router reachable");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Like [`Self::gql`] but requires a response without errors; returns `data`.
    pub async fn ok(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let (status, body) = self.gql(query, variables, token).await;
        assert!(
            status == 200 && body.get("errors").is_none(),
            "expected success, got {status}: {body:#}"
        );
        body["data"].clone()
    }
}

/// The `extensions.code` of each error in a response.
pub fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["extensions"]["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
