//! `on_graphql_params`, after APQ: the request's variables, looked at once before any work. A list longer
//! than [`MAX_LIST_ITEMS`] anywhere in them is refused with `BAD_USER_INPUT` (no operation takes more;
//! each subgraph checks its own tighter limits first thing, but should never be handed 100,000 items to
//! parse). The integer variables are kept in the request's context as [`IntVariables`], so the cost
//! estimate can read `first: $n`.

use std::collections::HashMap;

use hive_router::executor::response::graphql_error::GraphQLError;
use hive_router::sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};
use parley_protocol::ErrorCode;

use super::errors::refusal;

/// The longest list any input may hold (the largest list the schema takes is 200 initial group members).
pub const MAX_LIST_ITEMS: usize = 1_000;

/// The request's top-level integer variables, by name.
#[derive(Debug, Default)]
pub struct IntVariables(pub HashMap<String, i64>);

/// `BAD_USER_INPUT` for a list over [`MAX_LIST_ITEMS`] anywhere in `variables`; else the integer variables.
pub fn check(variables: &HashMap<String, Value>) -> Result<IntVariables, Box<GraphQLError>> {
    let mut ints = IntVariables::default();
    for (name, value) in variables {
        if let Some(longest) = oversized_list(value) {
            return Err(Box::new(refusal(
                format!(
                    "${name} holds a list of {longest} items; at most {MAX_LIST_ITEMS} are allowed"
                ),
                ErrorCode::BadUserInput,
                "INPUT_LIST_TOO_LONG",
            )));
        }
        if let Some(n) = value.as_i64() {
            ints.0.insert(name.clone(), n);
        }
    }
    Ok(ints)
}

/// The length of the first list over the limit, looking through objects and lists (the body limit bounds
/// the walk).
fn oversized_list(value: &Value) -> Option<usize> {
    if let Some(items) = value.as_array() {
        if items.len() > MAX_LIST_ITEMS {
            return Some(items.len());
        }
        return items.iter().find_map(oversized_list);
    }
    value
        .as_object()
        .and_then(|fields| fields.iter().find_map(|(_, v)| oversized_list(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_router::sonic_rs;

    fn vars(json: &str) -> HashMap<String, Value> {
        sonic_rs::from_str(json).expect("json")
    }

    #[test]
    fn long_lists_anywhere_are_refused_and_ints_are_kept() {
        let ok = check(&vars(
            r#"{"n": 25, "input": {"tags": ["a", "b"]}, "s": "x"}"#,
        ))
        .expect("ok");
        assert_eq!(ok.0.get("n"), Some(&25));
        assert_eq!(ok.0.len(), 1);
        let nested = format!(
            r#"{{"input": {{"tags": [{}]}}}}"#,
            vec!["\"t\""; MAX_LIST_ITEMS + 1].join(",")
        );
        let error = check(&vars(&nested)).expect_err("too long");
        assert_eq!(error.extensions.code.as_deref(), Some("BAD_USER_INPUT"));
        let exact = format!(r#"{{"m": [{}]}}"#, vec!["1"; MAX_LIST_ITEMS].join(","));
        assert!(check(&vars(&exact)).is_ok());
    }
}
