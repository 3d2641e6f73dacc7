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
        let first = match first {
            None => DEFAULT_PAGE,
            Some(n) if (0..=MAX_PAGE as i32).contains(&n) => n as usize,
            Some(_) => {
                return Err(coded(
                    ErrorCode::BadUserInput,
                    format!("first must be between 0 and {MAX_PAGE}"),
                ))
            }
        };
        let after = after.map(|c| decode_cursor(&c)).transpose()?;
        Ok(Self { first, after })
    }

    /// Rows to fetch: one more than the page, to learn whether a next page exists.
    pub fn limit(&self) -> u64 {
        self.first as u64 + 1
    }
}

/// Encodes a sort key (one or more parts) as an opaque cursor.
pub fn encode_cursor(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("\u{1f}"))
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is `BAD_USER_INPUT`.
pub fn decode_cursor(cursor: &str) -> async_graphql::Result<Vec<String>> {
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
    conn.edges.extend(rows.into_iter().map(|row| {
        let parts = key(&row);
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        Edge::new(encode_cursor(&refs), node(row))
    }));
    conn
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
}
