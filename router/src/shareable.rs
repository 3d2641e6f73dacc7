//! Which subscriptions may share one upstream ([`crate::sharing`]): those whose every event is the same for
//! every viewer allowed to see it. One root field among [`ROOTS`] — `commentAdded(postId)`,
//! `postScoreChanged(postId)`, `messageAdded(chatId)` — selecting only fields on the allow-list below (what
//! anyone who may see the object sees alike: no `myVote`, `isFollowedByMe`, `readBy`, `clientMessageId`, …),
//! with inline fragments at most and no directives. A field not listed makes the subscription per-viewer, so
//! a new field is safe until someone lists it.
//!
//! [`classify`] answers with the [`SharedKey`] every such subscription of the same object shares (the
//! minified document, the operation name, the object's id), or `None`: the engine runs it as today.

use graphql_tools::parser::query::{
    self, Definition, Document, OperationDefinition, Selection, SelectionSet, TypeCondition,
};
use graphql_tools::parser::{minify_query_document, parse_query_with_token_limit, query::Value};
use hive_router::graphql_tools;

/// Shareable root fields: (name, the id argument, the type it returns).
pub const ROOTS: &[(&str, &str, &str)] = &[
    ("commentAdded", "postId", "Comment"),
    ("postScoreChanged", "postId", "Post"),
    ("messageAdded", "chatId", "Message"),
];

/// A field, and the type it returns when that is an object.
type Field = (&'static str, Option<&'static str>);

/// Fields of each type whose value does not depend on who reads it.
const FIELDS: &[(&str, &[Field])] = &[
    (
        "Comment",
        &[
            ("id", None),
            ("body", None),
            ("deleted", None),
            ("author", Some("User")),
            ("post", Some("Post")),
            ("parent", Some("Comment")),
            ("replyCount", None),
            ("depth", None),
            ("score", None),
            ("upvotes", None),
            ("downvotes", None),
            ("createdAt", None),
            ("updatedAt", None),
        ],
    ),
    (
        "Post",
        &[
            ("id", None),
            ("title", None),
            ("body", None),
            ("author", Some("User")),
            ("tags", None),
            ("score", None),
            ("upvotes", None),
            ("downvotes", None),
            ("commentCount", None),
            ("hotRank", None),
            ("createdAt", None),
            ("updatedAt", None),
        ],
    ),
    (
        "Message",
        &[
            ("id", None),
            ("chatId", None),
            ("seq", None),
            ("author", Some("User")),
            ("kind", None),
            ("text", None),
            ("subject", Some("User")),
            ("replyTo", Some("Message")),
            ("createdAt", None),
            ("editedAt", None),
            ("deletedAt", None),
        ],
    ),
    (
        "User",
        &[
            ("id", None),
            ("nickname", None),
            ("name", None),
            ("avatarUrl", None),
        ],
    ),
];

/// The field the front adds to a chat's stream: the members each message is for, so it judges small chats'
/// messages without asking chat (`Message.liveAudience`, the live front's alone; taken out of the frame
/// its viewers get, [`crate::plugin`]'s live front).
pub const AUDIENCE: &str = "liveAudience";

/// Tokens read at most: a shareable subscription is small.
const TOKEN_LIMIT: usize = 2_000;
/// Nesting followed at most (a comment's parent's parent's …).
const MAX_DEPTH: usize = 8;

/// What every viewer of one shared stream has in common.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SharedKey {
    /// The root field (`commentAdded`, …).
    pub field: &'static str,
    /// The post or chat id the stream is about.
    pub object_id: String,
    /// The operation as it is sent upstream, minified.
    pub document: String,
    pub operation_name: Option<String>,
    /// Whether signed-in viewers may share it too (each event then judged per viewer by the owning
    /// subgraph): its root not aliased, a comment's `id` selected (what the judgement names), and no
    /// `parent` anywhere (another comment, whose author some viewers may not see). A chat's message is
    /// judged by its chat alone (members see all of it).
    pub signed_in: bool,
}

/// The key `query` (with `operation_name` and `variables`) shares, if it is shareable.
pub fn classify(
    query: &str,
    operation_name: Option<&str>,
    variables: &serde_json::Value,
) -> Option<SharedKey> {
    let document: Document<'_, String> = parse_query_with_token_limit(query, TOKEN_LIMIT).ok()?;
    let mut operations = document.definitions.iter().filter_map(|d| match d {
        Definition::Operation(operation) => Some(operation),
        Definition::Fragment(_) => None,
    });
    let operation = match operation_name {
        Some(wanted) => operations.find(|o| name_of(o) == Some(wanted))?,
        None => {
            let only = operations.next()?;
            operations.next().is_none().then_some(only)?
        }
    };
    let OperationDefinition::Subscription(subscription) = operation else {
        return None;
    };
    // Fragment definitions are not followed: a document with any is per-viewer.
    if document.definitions.len() != 1 || !subscription.directives.is_empty() {
        return None;
    }
    let [Selection::Field(root)] = subscription.selection_set.items.as_slice() else {
        return None;
    };
    let &(field, argument, type_name) = ROOTS.iter().find(|(name, ..)| *name == root.name)?;
    if !root.directives.is_empty() || root.arguments.len() != 1 || root.arguments[0].0 != argument {
        return None;
    }
    let object_id = match &root.arguments[0].1 {
        Value::String(id) => id.clone(),
        Value::Variable(name) => variables.get(name)?.as_str()?.to_string(),
        _ => return None,
    };
    if !viewer_independent(&root.selection_set, type_name, 0) {
        return None;
    }
    let signed_in = root.alias.is_none()
        && (field != "commentAdded" || selects_id(&root.selection_set))
        && !mentions(&root.selection_set, "parent");
    let listed = field == "messageAdded";
    if listed && answers_as(&root.selection_set, AUDIENCE) {
        return None;
    }
    let operation_name = name_of(operation).map(str::to_string);
    let mut document = document;
    if listed {
        ask_for_audience(&mut document);
    }
    Some(SharedKey {
        field,
        object_id,
        document: minify_query_document(&document),
        operation_name,
        signed_in,
    })
}

/// Adds [`AUDIENCE`] last to the root field of `document` (one subscription of one root field, as
/// [`classify`] found it).
fn ask_for_audience(document: &mut Document<'_, String>) {
    let Some(Definition::Operation(OperationDefinition::Subscription(subscription))) =
        document.definitions.first_mut()
    else {
        return;
    };
    let Some(Selection::Field(root)) = subscription.selection_set.items.first_mut() else {
        return;
    };
    root.selection_set
        .items
        .push(Selection::Field(query::Field {
            position: root.position,
            alias: None,
            name: AUDIENCE.to_string(),
            arguments: Vec::new(),
            directives: Vec::new(),
            selection_set: SelectionSet {
                span: (root.position, root.position),
                items: Vec::new(),
            },
        }));
}

/// Whether something in `selection`, at any depth, answers under the name `name`.
fn answers_as(selection: &SelectionSet<'_, String>, name: &str) -> bool {
    selection.items.iter().any(|item| match item {
        Selection::Field(field) => {
            field.alias.as_ref().unwrap_or(&field.name) == name
                || answers_as(&field.selection_set, name)
        }
        Selection::InlineFragment(fragment) => answers_as(&fragment.selection_set, name),
        Selection::FragmentSpread(_) => true,
    })
}

fn name_of<'d>(operation: &'d OperationDefinition<'_, String>) -> Option<&'d str> {
    match operation {
        OperationDefinition::Subscription(s) => s.name.as_deref(),
        OperationDefinition::Query(q) => q.name.as_deref(),
        OperationDefinition::Mutation(m) => m.name.as_deref(),
        OperationDefinition::SelectionSet(_) => None,
    }
}

/// Whether `selection` selects `id` under its own name.
fn selects_id(selection: &SelectionSet<'_, String>) -> bool {
    selection.items.iter().any(|item| {
        matches!(item, Selection::Field(field) if field.name == "id" && field.alias.is_none())
    })
}

/// Whether a field named `name` is selected anywhere in `selection`.
fn mentions(selection: &SelectionSet<'_, String>, name: &str) -> bool {
    selection.items.iter().any(|item| match item {
        Selection::Field(field) => field.name == name || mentions(&field.selection_set, name),
        Selection::InlineFragment(fragment) => mentions(&fragment.selection_set, name),
        Selection::FragmentSpread(_) => true,
    })
}

/// Whether every field selected on `type_name` is on the allow-list (recursively).
fn viewer_independent(selection: &SelectionSet<'_, String>, type_name: &str, depth: usize) -> bool {
    if depth > MAX_DEPTH || selection.items.is_empty() {
        return false;
    }
    let Some((_, fields)) = FIELDS.iter().find(|(name, _)| *name == type_name) else {
        return false;
    };
    selection.items.iter().all(|item| match item {
        Selection::Field(field) => {
            if !field.directives.is_empty() || !field.arguments.is_empty() {
                return false;
            }
            if field.name == "__typename" {
                return field.selection_set.items.is_empty();
            }
            match fields.iter().find(|(name, _)| *name == field.name) {
                Some((_, None)) => field.selection_set.items.is_empty(),
                Some((_, Some(object))) => {
                    viewer_independent(&field.selection_set, object, depth + 1)
                }
                None => false,
            }
        }
        Selection::InlineFragment(fragment) => {
            fragment.directives.is_empty()
                && fragment
                    .type_condition
                    .as_ref()
                    .is_none_or(|TypeCondition::On(on)| on == type_name)
                && viewer_independent(&fragment.selection_set, type_name, depth + 1)
        }
        Selection::FragmentSpread(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(query: &str, variables: serde_json::Value) -> Option<SharedKey> {
        classify(query, None, &variables)
    }

    #[test]
    fn a_viewer_independent_comment_stream_is_shared_by_post() {
        let query = "subscription Live($p: ID!) { commentAdded(postId: $p) { id body author { nickname } } }";
        let a = key(query, json!({"p": "post-1"})).expect("shareable");
        assert_eq!((a.field, a.object_id.as_str()), ("commentAdded", "post-1"));
        assert_eq!(a.operation_name.as_deref(), Some("Live"));
        // Spacing does not matter; another post is another stream.
        let spaced = query.replace(' ', "  ");
        assert_eq!(key(&spaced, json!({"p": "post-1"})), Some(a.clone()));
        assert_ne!(key(query, json!({"p": "post-2"})), Some(a));
        let literal =
            r#"subscription { messageAdded(chatId: "c") { seq text author { id avatarUrl } } }"#;
        assert_eq!(key(literal, json!({})).expect("shareable").object_id, "c");
    }

    #[test]
    fn anything_a_viewer_sees_differently_is_not_shared() {
        for query in [
            // Per-viewer fields.
            "subscription { commentAdded(postId: \"p\") { id myVote } }",
            "subscription { postScoreChanged(postId: \"p\") { score author { isFollowedByMe } } }",
            "subscription { messageAdded(chatId: \"c\") { id readBy { id } } }",
            "subscription { messageAdded(chatId: \"c\") { id clientMessageId } }",
            // Not on the list, or not a shared root.
            "subscription { chatEvents { kind } }",
            "subscription { notificationAdded { id } }",
            "subscription { commentAdded(postId: \"p\") { id body } notificationAdded { id } }",
            "query { post(id: \"p\") { id } }",
            // Directives, fragments, arguments on fields.
            "subscription { commentAdded(postId: \"p\") { id @include(if: true) } }",
            "subscription { commentAdded(postId: \"p\") { ...F } } fragment F on Comment { id }",
            "subscription { postScoreChanged(postId: \"p\") { comments(first: 5) { edges { node { id } } } } }",
            "subscription { commentAdded(postId: \"p\") { ... on Post { id } } }",
            // No selection, or not parseable.
            "subscription { commentAdded(postId: \"p\") { author } }",
            "subscription { commentAdded(postId: ",
        ] {
            assert_eq!(key(query, json!({})), None, "{query}");
        }
        // A variable that is missing or not a string.
        let query = "subscription($p: ID!) { commentAdded(postId: $p) { id } }";
        assert_eq!(key(query, json!({})), None);
        assert_eq!(key(query, json!({"p": 7})), None);
    }

    #[test]
    fn signed_in_viewers_share_only_what_can_be_judged_per_event() {
        let signed_in = |query: &str| key(query, json!({})).expect("shareable").signed_in;
        assert!(signed_in(
            "subscription { commentAdded(postId: \"p\") { id body author { nickname } } }"
        ));
        assert!(signed_in(
            "subscription { postScoreChanged(postId: \"p\") { score } }"
        ));
        assert!(signed_in(
            "subscription { messageAdded(chatId: \"c\") { seq text replyTo { text } } }"
        ));
        for query in [
            // The comment is named by its id, unaliased, on an unaliased root.
            "subscription { commentAdded(postId: \"p\") { body } }",
            "subscription { commentAdded(postId: \"p\") { key: id body } }",
            "subscription { c: commentAdded(postId: \"p\") { id } }",
            // A parent comment is judged by its own author.
            "subscription { commentAdded(postId: \"p\") { id parent { id body } } }",
            "subscription { m: messageAdded(chatId: \"c\") { id text } }",
        ] {
            assert!(!signed_in(query), "{query}");
        }
    }

    #[test]
    fn a_chats_stream_asks_for_its_audience_last() {
        let chat = key(
            "subscription($c: ID!) { messageAdded(chatId: $c) { text author { nickname } } }",
            json!({ "c": "c1" }),
        )
        .expect("shareable");
        assert!(
            chat.document.ends_with("author{nickname}liveAudience}}"),
            "{}",
            chat.document
        );
        let post = key(
            "subscription { commentAdded(postId: \"p\") { id body } }",
            json!({}),
        )
        .expect("shareable");
        assert!(!post.document.contains(AUDIENCE), "{}", post.document);
        // Something of the client's answering under that name: not shared (the front could not tell them
        // apart).
        for query in [
            "subscription { messageAdded(chatId: \"c\") { liveAudience: text } }",
            "subscription { messageAdded(chatId: \"c\") { author { liveAudience: nickname } } }",
            "subscription { messageAdded(chatId: \"c\") { text liveAudience } }",
        ] {
            assert_eq!(key(query, json!({})), None, "{query}");
        }
    }

    #[test]
    fn the_operation_is_chosen_by_name() {
        let query = "subscription A { commentAdded(postId: \"p\") { id } } query B { me { id } }";
        assert_eq!(classify(query, Some("B"), &json!({})), None);
        assert_eq!(
            classify(query, None, &json!({})),
            None,
            "two operations, no name"
        );
        // Another operation in the document is per-viewer work riding along: not shared either.
        assert_eq!(classify(query, Some("A"), &json!({})), None);
        let alone = "subscription A { commentAdded(postId: \"p\") { id __typename } }";
        assert!(classify(alone, Some("A"), &json!({})).is_some());
    }
}
