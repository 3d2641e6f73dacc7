//! Relay connections over keyset (cursor) pagination.
//!
//! A cursor is the sort key of the last row seen, base64url-encoded so clients treat it as opaque. Queries
//! ask for `first + 1` rows after the cursor; the extra row only tells whether there is a next page.

use async_graphql::connection::{Connection, Edge};
use async_graphql::OutputType;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use crate::error::coded;
use crate::ErrorCode;

/// Default and largest page sizes.
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// The longest cursor accepted (bytes).
pub const MAX_CURSOR: usize = 512;

/// Validated `first`/`after` arguments.
#[derive(Debug, Clone)]
pub struct Page {
    /// Rows wanted on this page.
    pub first: usize,
    /// Decoded sort key of the last row of the previous page.
    pub after: Option<Vec<String>>,
}

impl Page {
    /// Validates Relay arguments: `first` in 0..=MAX_PAGE, `after` a cursor this API issued.
    pub fn new(first: Option<i32>, after: Option<String>) -> async_graphql::Result<Self> {
        Self::sized("first", first, after)
    }

    fn sized(name: &str, size: Option<i32>, cursor: Option<String>) -> async_graphql::Result<Self> {
        let first = match size {
            None => DEFAULT_PAGE,
            Some(n) if (0..=MAX_PAGE as i32).contains(&n) => n as usize,
            Some(_) => {
                return Err(coded(
                    ErrorCode::BadUserInput,
                    format!("{name} must be between 0 and {MAX_PAGE}"),
                ))
            }
        };
        let after = cursor.map(|c| decode_cursor(&c)).transpose()?;
        Ok(Self { first, after })
    }

    /// Rows to fetch: one more than the page, to learn whether a next page exists.
    pub fn limit(&self) -> u64 {
        self.first as u64 + 1
    }
}

/// Relay arguments of a list that pages both ways: forward with `first`/`after`, backward with
/// `last`/`before` (then [`Page::first`] is `last` and [`Page::after`] the `before` cursor).
#[derive(Debug, Clone)]
pub enum Paging {
    Forward(Page),
    Backward(Page),
}

impl Paging {
    /// Validates the four arguments; asking both ways at once is `BAD_USER_INPUT`. Forward unless `last`
    /// or `before` is given.
    pub fn new(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Self> {
        let forward = first.is_some() || after.is_some();
        let backward = last.is_some() || before.is_some();
        match (forward, backward) {
            (true, true) => Err(coded(
                ErrorCode::BadUserInput,
                "page forward (first/after) or backward (last/before), not both",
            )),
            (false, true) => Ok(Self::Backward(Page::sized("last", last, before)?)),
            _ => Ok(Self::Forward(Page::new(first, after)?)),
        }
    }
}

/// Builds a backward page from up to `page.limit()` rows read newest first (the extra row tells whether
/// there is an earlier page); the edges run oldest first, as Relay wants.
pub fn backward_connection<R, N: OutputType>(
    page: &Page,
    mut rows: Vec<R>,
    key: impl Fn(&R) -> Vec<String>,
    node: impl Fn(R) -> N,
) -> Connection<String, N> {
    let has_previous = rows.len() > page.first;
    rows.truncate(page.first);
    rows.reverse();
    let mut conn = Connection::new(has_previous, page.after.is_some());
    conn.edges.extend(edges(rows, key, node));
    conn
}

/// Encodes a sort key (one or more parts) as an opaque cursor.
pub fn encode_cursor(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("\u{1f}"))
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is `BAD_USER_INPUT`.
pub fn decode_cursor(cursor: &str) -> async_graphql::Result<Vec<String>> {
    // Every cursor Parley makes is far shorter; a longer one is not decoded at all.
    if cursor.len() > MAX_CURSOR {
        return Err(coded(ErrorCode::BadUserInput, "invalid cursor"));
    }
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .map(|text| text.split('\u{1f}').map(str::to_string).collect())
        .ok_or_else(|| coded(ErrorCode::BadUserInput, "invalid cursor"))
}

/// Builds a connection from up to `page.limit()` rows, in order; `key` gives each row's sort key.
pub fn connection<R, N: OutputType>(
    page: &Page,
    mut rows: Vec<R>,
    key: impl Fn(&R) -> Vec<String>,
    node: impl Fn(R) -> N,
) -> Connection<String, N> {
    let has_next = rows.len() > page.first;
    rows.truncate(page.first);
    let mut conn = Connection::new(page.after.is_some(), has_next);
    conn.edges.extend(edges(rows, key, node));
    conn
}

/// Each row as an edge whose cursor is its sort key.
fn edges<R, N: OutputType>(
    rows: Vec<R>,
    key: impl Fn(&R) -> Vec<String>,
    node: impl Fn(R) -> N,
) -> impl Iterator<Item = Edge<String, N, async_graphql::connection::EmptyFields>> {
    rows.into_iter().map(move |row| {
        let parts = key(&row);
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        Edge::new(encode_cursor(&refs), node(row))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let c = encode_cursor(&["alice", "0190-id"]);
        assert_eq!(decode_cursor(&c).expect("valid"), vec!["alice", "0190-id"]);
        assert!(decode_cursor("%%%").is_err());
    }

    #[test]
    fn page_bounds() {
        assert_eq!(Page::new(None, None).expect("ok").first, DEFAULT_PAGE);
        assert!(Page::new(Some(-1), None).is_err());
        assert!(Page::new(Some(101), None).is_err());
        assert_eq!(Page::new(Some(5), None).expect("ok").limit(), 6);
    }

    #[test]
    fn paging_goes_one_way_at_a_time() {
        let cursor = || Some(encode_cursor(&["7"]));
        assert!(matches!(
            Paging::new(None, None, None, None),
            Ok(Paging::Forward(Page {
                first: DEFAULT_PAGE,
                after: None
            }))
        ));
        assert!(matches!(
            Paging::new(None, None, Some(3), cursor()),
            Ok(Paging::Backward(Page {
                first: 3,
                after: Some(_)
            }))
        ));
        assert!(Paging::new(Some(1), None, None, cursor()).is_err());
        assert!(Paging::new(None, None, Some(101), None).is_err());
    }

    #[test]
    fn a_backward_page_runs_oldest_first() {
        let page = Page::new(Some(2), Some(encode_cursor(&["9"]))).expect("page");
        // Read newest first, one extra: 8, 7 and the extra 6.
        let conn = backward_connection(&page, vec![8, 7, 6], |n| vec![n.to_string()], |n| n);
        let nodes: Vec<i32> = conn.edges.iter().map(|e| e.node).collect();
        assert_eq!(nodes, [7, 8]);
        assert!(conn.has_previous_page, "6 is on an earlier page");
        assert!(conn.has_next_page, "9 and after are on a later one");
        assert_eq!(decode_cursor(&conn.edges[0].cursor).expect("cursor"), ["7"]);
    }
}

/// The type of a rank column, to read it back from a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RankType {
    Int,
    Float,
}

/// Orders `select` by (`rank` desc, `id` desc) — or `id` desc alone — and continues after the cursor
/// `after` (made by [`sort_key`] from the same columns). Every ranked list in Parley is one of these walks.
pub fn keyset_desc<E: sea_orm::EntityTrait>(
    select: sea_orm::Select<E>,
    rank: Option<(E::Column, RankType)>,
    id: E::Column,
    after: Option<&Vec<String>>,
) -> async_graphql::Result<sea_orm::Select<E>> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, ExprTrait, QueryFilter, QueryOrder};
    let bad = || coded(ErrorCode::BadUserInput, "invalid cursor");
    let mut select = select;
    if let Some(after) = after {
        let last = after
            .last()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or_else(bad)?;
        select = match rank {
            None => select.filter(id.lt(last)),
            Some((col, kind)) => {
                let raw = after.first().filter(|_| after.len() == 2).ok_or_else(bad)?;
                let value = match kind {
                    RankType::Int => sea_orm::Value::from(raw.parse::<i32>().map_err(|_| bad())?),
                    RankType::Float => sea_orm::Value::from(raw.parse::<f64>().map_err(|_| bad())?),
                };
                // A row-value comparison, which SQLite and PostgreSQL both answer with one index range.
                select.filter(
                    Expr::tuple([Expr::col(col), Expr::col(id)])
                        .lt(Expr::tuple([Expr::val(value), Expr::val(last)])),
                )
            }
        };
    }
    if let Some((col, _)) = rank {
        select = select.order_by_desc(col);
    }
    Ok(select.order_by_desc(id))
}

/// The cursor parts of a row for [`keyset_desc`]: its rank (if the sort has one) and its id.
pub fn sort_key(rank: Option<String>, id: uuid::Uuid) -> Vec<String> {
    rank.into_iter()
        .chain(std::iter::once(id.to_string()))
        .collect()
}
