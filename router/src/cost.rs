//! The cost limit (demand control), Parley's own: an operation's estimated cost is the sum over its fields of
//! 1 for each field that returns an object, interface or union (0 for scalars and enums), times the list size
//! for each list level around it — every list counts as [`LIST_SIZE`] items, the page size clients ask for.
//! Over the max the operation is refused before any subgraph is asked.
//!
//! Why not the engine's demand control: it counts the same estimate, but also computes an "actual" cost after
//! every request for its metrics by walking the responses, with no switch to turn that off; on a deep
//! cross-subgraph query that walk cost the router ~10 % of its CPU (`benches/gateway.sh`). This estimate is a
//! walk over the operation with one map lookup per field.
//!
//! The schema's field types come from the engine's metadata of the loaded supergraph (kept by the plugin's
//! supergraph hook, swapped on reload).

use hive_router::executor::introspection::schema::{FieldNullability, SchemaMetadata};
use hive_router::query_planner::ast::selection_item::SelectionItem;
use hive_router::query_planner::ast::selection_set::SelectionSet;
use hive_router::query_planner::state::supergraph_state::OperationKind;

/// Items a list is assumed to hold.
pub const LIST_SIZE: u64 = 20;

/// The default max: three nested pages of posts → comments → replies (~17k) fit three times over.
pub const DEFAULT_MAX_COST: u64 = 50_000;

/// The estimated cost of an operation's `selections` (of kind `kind`) against `schema`.
pub fn estimate(
    schema: &SchemaMetadata,
    kind: Option<OperationKind>,
    selections: &SelectionSet,
) -> u64 {
    let root = match kind {
        None | Some(OperationKind::Query) => schema.query_type_name.as_deref(),
        Some(OperationKind::Mutation) => schema.mutation_type_name.as_deref(),
        Some(OperationKind::Subscription) => schema.subscription_type_name.as_deref(),
    };
    root.map_or(0, |root| selection_cost(schema, root, selections))
}

fn selection_cost(schema: &SchemaMetadata, parent: &str, selections: &SelectionSet) -> u64 {
    selections
        .items
        .iter()
        .map(|item| match item {
            SelectionItem::Field(field) => {
                let Some(info) = schema
                    .type_fields
                    .get(parent)
                    .and_then(|fields| fields.get(&field.name))
                else {
                    return 0; // `__typename` and introspection fields
                };
                let output = info.output_type_name.as_str();
                let own = u64::from(is_composite(schema, output));
                let below = selection_cost(schema, output, &field.selections);
                own.saturating_add(below)
                    .saturating_mul(LIST_SIZE.saturating_pow(list_depth(&info.nullability)))
            }
            SelectionItem::InlineFragment(fragment) => {
                let on = if fragment.type_condition.is_empty() {
                    parent
                } else {
                    fragment.type_condition.as_str()
                };
                selection_cost(schema, on, &fragment.selections)
            }
            // The normalized operation has its fragments inlined.
            SelectionItem::FragmentSpread(_) => 0,
        })
        .fold(0, u64::saturating_add)
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
