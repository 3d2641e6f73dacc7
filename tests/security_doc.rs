//! `docs/security.md` names the authorization rule of every operation: its table must list each root field of
//! the supergraph the router serves, and nothing the schema does not have.

use parley_harness as support;

use std::collections::BTreeSet;

use serde_json::json;
use support::Platform;

/// The operations named in the "Authorization by operation" table (each `` `name` `` in its first column).
fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/security.md"))
        .expect("docs/security.md");
    let table = doc
        .split("## Authorization by operation")
        .nth(1)
        .expect("the section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    table
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|row| row.split(" | ").next())
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn every_operation_has_an_authorization_rule() {
    let p = Platform::start().await;
    let data = p
        .ok(
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }",
            json!({}),
            None,
        )
        .await;
    let schema = &data["__schema"];
    let operations: BTreeSet<String> = ["queryType", "mutationType", "subscriptionType"]
        .iter()
        .flat_map(|root| {
            schema[root]["fields"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .filter(|name| !name.starts_with('_'))
        .collect();
    let documented = documented();
    let missing: Vec<_> = operations.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&operations).collect();
    assert!(
        missing.is_empty(),
        "operations without a rule in docs/security.md: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "docs/security.md names operations the schema does not have: {stale:?}"
    );
}
