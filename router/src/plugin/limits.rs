//! `on_query_plan`, second: an operation selecting more than `max_root_fields` root fields, or estimated to
//! cost more than `max_cost` ([`crate::cost`], with the field types of the loaded supergraph, which
//! `on_supergraph_reload` swaps in), is refused with `QUERY_TOO_COMPLEX`. (The engine enforces depth, aliases,
//! directives and tokens itself.)

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hive_router::executor::introspection::schema::SchemaMetadata;
use hive_router::executor::response::graphql_error::GraphQLError;
use hive_router::query_planner::ast::operation::OperationDefinition;
use hive_router::query_planner::ast::selection_item::SelectionItem;
use hive_router::query_planner::ast::selection_set::SelectionSet;
use parley_protocol::ErrorCode;

use super::errors::refusal;

pub struct Limits {
    pub max_root_fields: usize,
    pub max_cost: u64,
    /// The loaded supergraph's field types (`None` until one is loaded).
    schema: RwLock<Option<Arc<SchemaMetadata>>>,
}

impl Limits {
    pub fn new(max_root_fields: usize, max_cost: u64) -> Self {
        Self {
            max_root_fields,
            max_cost,
            schema: RwLock::new(None),
        }
    }

    /// Keeps a newly loaded supergraph's field types.
    pub fn set_schema(&self, schema: Arc<SchemaMetadata>) {
        *self.schema.write().unwrap_or_else(|p| p.into_inner()) = Some(schema);
    }

    /// `QUERY_TOO_COMPLEX` for an operation over a limit (the cost is skipped until a supergraph was
    /// loaded; a poisoned lock still holds the last schema).
    pub fn check(
        &self,
        operation: &OperationDefinition,
        variables: &HashMap<String, i64>,
    ) -> Option<GraphQLError> {
        let selected = root_fields(&operation.selection_set);
        if selected > self.max_root_fields {
            return Some(refusal(
                format!(
                    "the operation selects {selected} root fields; at most {} are allowed",
                    self.max_root_fields
                ),
                ErrorCode::QueryTooComplex,
                "MAX_ROOT_FIELDS_EXCEEDED",
            ));
        }
        let schema = self
            .schema
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let cost = crate::cost::estimate(
            &schema,
            operation.operation_kind.clone(),
            &operation.selection_set,
            variables,
        );
        (cost > self.max_cost).then(|| {
            refusal(
                format!(
                    "the operation's estimated cost is {cost}; at most {} is allowed",
                    self.max_cost
                ),
                ErrorCode::QueryTooComplex,
                "COST_ESTIMATED_TOO_EXPENSIVE",
            )
        })
    }
}

/// The fields an operation selects at its root (inline fragments looked into).
pub fn root_fields(selections: &SelectionSet) -> usize {
    selections
        .items
        .iter()
        .map(|item| match item {
            SelectionItem::InlineFragment(fragment) => root_fields(&fragment.selections),
            SelectionItem::Field(_) | SelectionItem::FragmentSpread(_) => 1,
        })
        .sum()
}
