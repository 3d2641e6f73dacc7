//! The search subgraph schema: one query, `search`. Hits are references (`User`, `Post`, `Comment`,
//! `Message`) the router completes from their owners, whose own rules apply again there.

mod types;

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, Schema, ID};
use parley_kit::audience::Viewer;
use parley_kit::auth::identity;
use parley_kit::error::coded;
use parley_kit::ids::parse_id;
use parley_kit::pagination::{decode_cursor, encode_cursor};
use parley_kit::{ApiResult, ErrorCode, ResultExt};
use sea_orm::DatabaseConnection;

use crate::access::Access;
use crate::documents::Kind;
use crate::error::{invalid, SearchError};
use crate::index::Shelf;
use crate::search::{self, Filter, Found, Sort, MAX_COUNT};
pub use types::{
    SearchConnection, SearchFilter, SearchHighlight, SearchHit, SearchKind, SearchNode, SearchSort,
    SearchTotals,
};

/// Hits on a page by default, and at most (more is capped, not refused).
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 50;
/// Tags one filter may require.
pub const MAX_TAGS: usize = 10;
/// Kinds one filter may name (there are four).
pub const MAX_KINDS: usize = 4;
/// The longest topic name a filter may give.
const MAX_TOPIC: usize = 64;

pub type SearchSchema =
    Schema<Query, async_graphql::EmptyMutation, async_graphql::EmptySubscription>;

pub fn builder() -> async_graphql::SchemaBuilder<
    Query,
    async_graphql::EmptyMutation,
    async_graphql::EmptySubscription,
> {
    Schema::build(
        Query,
        async_graphql::EmptyMutation,
        async_graphql::EmptySubscription,
    )
    .enable_federation()
}

pub fn build(db: DatabaseConnection, shelf: Arc<Shelf>) -> SearchSchema {
    builder().data(db).data(shelf).finish()
}

pub struct Query;

#[Object]
impl Query {
    /// Users, posts, comments and messages of your chats matching `query`: every word must match, with
    /// typos forgiven (one from 5 letters, two from 9), the last word also as the start of a longer one,
    /// `"a phrase"` word for word, `-word` excluded. Only what you could read directly is found.
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: String,
        filter: Option<SearchFilter>,
        #[graphql(default_with = "Some(SearchSort::Relevance)")] sort: Option<SearchSort>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<SearchConnection> {
        let parsed = crate::query::parse(&query).gql()?;
        let filter = filter.map(to_filter).transpose().gql()?.unwrap_or_default();
        let limit = match first {
            None => DEFAULT_PAGE,
            Some(n) if n < 0 => {
                return Err(coded(ErrorCode::BadUserInput, "first must not be negative"))
            }
            Some(n) => (n as usize).min(MAX_PAGE),
        };
        let offset = match after {
            None => 0,
            Some(cursor) => offset_of(&cursor)?,
        };
        let db = ctx.data::<DatabaseConnection>()?;
        let shelf = ctx.data::<Arc<Shelf>>()?.clone();
        let access = Access::of(db, &Viewer::of(identity(ctx))).await.gql()?;
        let sort = match sort.unwrap_or(SearchSort::Relevance) {
            SearchSort::Relevance => Sort::Relevance,
            SearchSort::New => Sort::New,
            SearchSort::Top => Sort::Top,
        };
        // tantivy works synchronously: off the async workers.
        let found = tokio::task::spawn_blocking(move || {
            let generation = shelf.current();
            search::run(&generation, &parsed, &filter, &access, sort, offset, limit)
        })
        .await
        .map_err(|e| coded(ErrorCode::Internal, format!("search failed: {e}")))?
        .gql()?;
        Ok(connection(found, offset))
    }
}

fn connection(found: Found, offset: usize) -> SearchConnection {
    let mut connection = Connection::with_additional_fields(
        offset > 0,
        found.more,
        SearchTotals {
            total_count: found.total as i32,
            total_count_exact: found.exact,
        },
    );
    for (n, hit) in found.hits.into_iter().enumerate() {
        let cursor = encode_cursor(&["o", &(offset + n + 1).to_string()]);
        connection
            .edges
            .push(Edge::new(cursor, SearchHit::from(hit)));
    }
    connection
}

/// Where the page after `cursor` starts.
fn offset_of(cursor: &str) -> ApiResult<usize> {
    let parts = decode_cursor(cursor)?;
    match parts.as_slice() {
        [tag, n] if tag == "o" => match n.parse::<usize>() {
            Ok(n) if n < MAX_COUNT => Ok(n),
            Ok(_) => Err(coded(
                ErrorCode::BadUserInput,
                format!("search pages end at {MAX_COUNT} hits"),
            )),
            Err(_) => Err(coded(ErrorCode::BadUserInput, "invalid cursor")),
        },
        _ => Err(coded(ErrorCode::BadUserInput, "invalid cursor")),
    }
}

fn to_filter(input: SearchFilter) -> Result<Filter, SearchError> {
    let kinds = input.kinds.unwrap_or_default();
    if kinds.len() > MAX_KINDS {
        return Err(invalid(format!(
            "filter.kinds takes at most {MAX_KINDS} kinds"
        )));
    }
    let tags = input.tags.unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!(
            "filter.tags takes at most {MAX_TAGS} tags"
        )));
    }
    if tags.iter().any(|t| t.chars().count() > MAX_TOPIC) {
        return Err(invalid(format!("a tag is at most {MAX_TOPIC} characters")));
    }
    if input
        .topic
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TOPIC)
    {
        return Err(invalid(format!(
            "filter.topic is at most {MAX_TOPIC} characters"
        )));
    }
    if let (Some(from), Some(to)) = (input.from, input.to) {
        if from >= to {
            return Err(invalid("filter.from must be before filter.to"));
        }
    }
    let id = |id: Option<ID>| -> Result<_, SearchError> {
        id.map(|id| parse_id(&id).map_err(|e| invalid(e.message)))
            .transpose()
    };
    let mut kinds: Vec<Kind> = kinds.into_iter().map(Kind::from).collect();
    kinds.sort_by_key(|k| k.name());
    kinds.dedup();
    Ok(Filter {
        kinds,
        author: id(input.author_id)?,
        topic: input.topic,
        tags,
        chat: id(input.chat_id)?,
        from: input.from,
        to: input.to,
    })
}
