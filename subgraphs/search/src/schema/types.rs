//! The GraphQL types of search (DESIGN §6), and the references to the entities hits point at.

use async_graphql::connection::{Connection, ConnectionNameType, DefaultEdgeName, EmptyFields};
use async_graphql::{Enum, InputObject, OutputType, SimpleObject, Union, ID};
use chrono::{DateTime, Utc};
use parley_kit::refs::{CommentRef, MessageRef, PostRef, UserRef};

use crate::documents::Kind;
use crate::search::Hit;

/// What a hit is.
#[derive(Union, Clone)]
pub enum SearchNode {
    User(UserRef),
    Post(PostRef),
    Comment(CommentRef),
    Message(MessageRef),
}

/// What to search.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SearchKind {
    User,
    Post,
    Comment,
    /// Messages of the chats you are a member of.
    Message,
}

impl From<SearchKind> for Kind {
    fn from(kind: SearchKind) -> Kind {
        match kind {
            SearchKind::User => Kind::User,
            SearchKind::Post => Kind::Post,
            SearchKind::Comment => Kind::Comment,
            SearchKind::Message => Kind::Message,
        }
    }
}

/// The order of hits.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SearchSort {
    /// Best match first (BM25, exact words above completions above typos).
    Relevance,
    /// Newest first.
    New,
    /// Highest score (votes) first.
    Top,
}

/// Narrows a search; every given part must hold.
#[derive(InputObject, Clone, Default)]
pub struct SearchFilter {
    /// Only these kinds (at most 4).
    pub kinds: Option<Vec<SearchKind>>,
    /// Only what this user wrote (a user: only this user).
    pub author_id: Option<ID>,
    /// Only posts and comments in this topic (its name).
    pub topic: Option<String>,
    /// Only posts with every one of these tags (at most 10).
    pub tags: Option<Vec<String>>,
    /// Only messages of this chat (yours).
    pub chat_id: Option<ID>,
    /// Written at or after.
    pub from: Option<DateTime<Utc>>,
    /// Written before.
    pub to: Option<DateTime<Utc>>,
}

/// A matched field: the matched words in `<mark>…</mark>`, the rest HTML-escaped.
#[derive(SimpleObject, Clone)]
pub struct SearchHighlight {
    /// `title` or `body` (a user's: `nickname` or `about`).
    pub field: String,
    pub snippet: String,
}

/// One hit.
#[derive(SimpleObject, Clone)]
pub struct SearchHit {
    /// What matched, completed by its owner — null in the moment between the owner hiding it (a deletion,
    /// an account gone private, a block) and the index learning of it, rather than failing the page.
    pub node: Option<SearchNode>,
    /// How well it matched (BM25).
    pub score: f64,
    pub highlights: Vec<SearchHighlight>,
}

impl From<Hit> for SearchHit {
    fn from(hit: Hit) -> SearchHit {
        let id = hit.id;
        SearchHit {
            node: Some(match hit.kind {
                Kind::User => SearchNode::User(UserRef::new(id)),
                Kind::Post => SearchNode::Post(PostRef::new(id)),
                Kind::Comment => SearchNode::Comment(CommentRef::new(id)),
                Kind::Message => SearchNode::Message(MessageRef::new(id)),
            }),
            score: f64::from(hit.score),
            highlights: hit
                .highlights
                .into_iter()
                .map(|(field, snippet)| SearchHighlight { field, snippet })
                .collect(),
        }
    }
}

/// The connection's counts.
#[derive(SimpleObject, Clone)]
pub struct SearchTotals {
    /// Hits in all: exact up to 1,000; past that 1,000, and `totalCountExact` false.
    pub total_count: i32,
    /// Whether `totalCount` is exact (false: a lower bound).
    pub total_count_exact: bool,
}

/// Names the connection `SearchConnection` (its edges stay `SearchHitEdge`).
pub struct SearchConnectionName;

impl ConnectionNameType for SearchConnectionName {
    fn type_name<T: OutputType>() -> String {
        "SearchConnection".into()
    }
}

pub type SearchConnection =
    Connection<String, SearchHit, SearchTotals, EmptyFields, SearchConnectionName, DefaultEdgeName>;
