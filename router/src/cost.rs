//! The cost limit (demand control), Parley's own: an operation's estimated cost is the sum over its fields of
//! 1 for each field that returns an object, interface or union (0 for scalars and enums), times the list size
//! for each list level around it. A list counts as the page the client asked for: the `first` (or `last`)
//! argument of the field or of the connection around it (a literal or a variable, capped at [`MAX_PAGE`]),
//! else [`LIST_SIZE`] items, the default page. Over the max the operation is refused before any subgraph is
//! asked.
//!
//! Why not the engine's demand control: it counts the same estimate, but also computes an "actual" cost after
//! every request for its metrics by walking the responses, with no switch to turn that off; on a deep
//! cross-subgraph query that walk cost the router ~10 % of its CPU (`benches/gateway.sh`). This estimate is a
//! walk over the operation with one map lookup per field.
//!
//! The schema's field types come from the engine's metadata of the loaded supergraph (kept by the plugin's
//! supergraph hook, swapped on reload).

use hive_router::executor::introspection::schema::{FieldNullability, SchemaMetadata};
use std::collections::HashMap;

use hive_router::query_planner::ast::selection_item::SelectionItem;
use hive_router::query_planner::ast::selection_set::{FieldSelection, SelectionSet};
use hive_router::query_planner::ast::value::Value;
use hive_router::query_planner::state::supergraph_state::OperationKind;

/// Items a list is assumed to hold when no page size was asked for (the subgraphs' default page).
pub const LIST_SIZE: u64 = 20;

/// The largest page a subgraph serves; a larger `first` is refused there, so it counts as this.
pub const MAX_PAGE: u64 = 100;

/// The default max: three nested pages of posts → comments → replies (~17k) fit three times over.
pub const DEFAULT_MAX_COST: u64 = 50_000;

/// The estimated cost of an operation's `selections` (of kind `kind`) against `schema`; `variables` are
/// the request's integer variables (for `first: $n`).
pub fn estimate(
    schema: &SchemaMetadata,
    kind: Option<OperationKind>,
    selections: &SelectionSet,
    variables: &HashMap<String, i64>,
) -> u64 {
    let root = match kind {
        None | Some(OperationKind::Query) => schema.query_type_name.as_deref(),
        Some(OperationKind::Mutation) => schema.mutation_type_name.as_deref(),
        Some(OperationKind::Subscription) => schema.subscription_type_name.as_deref(),
    };
    let walk = Walk { schema, variables };
    root.map_or(0, |root| walk.cost(root, selections, None))
}

struct Walk<'a> {
    schema: &'a SchemaMetadata,
    variables: &'a HashMap<String, i64>,
}

impl Walk<'_> {
    /// The cost of `selections` on `parent`; `page` is the page size the field holding them asked for,
    /// which the lists directly inside (a connection's `edges` and `nodes`) hold.
    fn cost(&self, parent: &str, selections: &SelectionSet, page: Option<u64>) -> u64 {
        selections
            .items
            .iter()
            .map(|item| match item {
                SelectionItem::Field(field) => {
                    let Some(info) = self
                        .schema
                        .type_fields
                        .get(parent)
                        .and_then(|fields| fields.get(&field.name))
                    else {
                        return 0; // `__typename` and introspection fields
                    };
                    let output = info.output_type_name.as_str();
                    let own = u64::from(is_composite(self.schema, output));
                    let asked = self.page_size(field);
                    let below = self.cost(output, &field.selections, asked);
                    let items = asked.or(page).unwrap_or(LIST_SIZE);
                    own.saturating_add(below)
                        .saturating_mul(items.saturating_pow(list_depth(&info.nullability)))
                }
                SelectionItem::InlineFragment(fragment) => {
                    let on = if fragment.type_condition.is_empty() {
                        parent
                    } else {
                        fragment.type_condition.as_str()
                    };
                    self.cost(on, &fragment.selections, page)
                }
                // The normalized operation has its fragments inlined.
                SelectionItem::FragmentSpread(_) => 0,
            })
            .fold(0, u64::saturating_add)
    }

    /// The field's `first` or `last` (the larger if both), capped at [`MAX_PAGE`]; `None` when neither is
    /// given as a number.
    fn page_size(&self, field: &FieldSelection) -> Option<u64> {
        let arguments = field.arguments.as_ref()?;
        ["first", "last"]
            .iter()
            .filter_map(|name| match arguments.get_argument(name)? {
                Value::Int(n) => Some(*n),
                Value::Variable(var) => self.variables.get(var).copied(),
                _ => None,
            })
            .max()
            .map(|n| u64::try_from(n).unwrap_or(0).min(MAX_PAGE))
    }
}

fn is_composite(schema: &SchemaMetadata, type_name: &str) -> bool {
    schema.is_object_type(type_name)
        || schema.is_union_type(type_name)
        || schema.interface_types.contains(type_name)
}

fn list_depth(shape: &FieldNullability) -> u32 {
    match shape {
        FieldNullability::Leaf { .. } => 0,
        FieldNullability::List { item, .. } => 1 + list_depth(item),
    }
}
