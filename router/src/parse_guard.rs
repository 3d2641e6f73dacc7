//! A guard in front of the engine's parser. The parser (graphql-tools 0.5.12) keeps a syntax error's
//! tokens as text borrowed from the query and transmuted to `'static`; the engine formats the error after
//! the query is gone, so a client sent `{ quer }` got bytes of freed memory in the message (found by the fuzz
//! target, `fuzz/`). The guard parses each query the engine has not yet been seen to accept, and answers a
//! syntax error itself, formatted while the query is still alive. Queries known to parse (a bounded set of
//! keyed hashes) cost one hash; limit errors (tokens, recursion) carry static messages and go on to the
//! engine, which maps them as before.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use hive_router::query_planner::utils::parsing::safe_parse_operation_with_token_limit;

/// Queries remembered as parsing; the set starts over when full.
const KNOWN_MAX: usize = 10_000;

pub struct ParseGuard {
    /// Keyed per process, so no one can make an unparsable query collide with a remembered one.
    keys: RandomState,
    known: Mutex<HashSet<u64>>,
    /// The engine's token limit (`limits.max_tokens`), so the guard never parses more than the engine would.
    max_tokens: usize,
}

impl ParseGuard {
    pub fn new(max_tokens: usize) -> Self {
        Self {
            keys: RandomState::new(),
            known: Mutex::new(HashSet::new()),
            max_tokens,
        }
    }

    /// `Err(message)` for a query with a syntax error; `Ok` for one that parses or that the engine refuses
    /// with a limit.
    pub fn check(&self, query: &str) -> Result<(), String> {
        let key = self.keys.hash_one(query);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.contains(&key) {
            return Ok(());
        }
        drop(known);
        match safe_parse_operation_with_token_limit(query, self.max_tokens) {
            Ok(_) => {
                known = self.known.lock().unwrap_or_else(|p| p.into_inner());
                if known.len() >= KNOWN_MAX {
                    known.clear();
                }
                known.insert(key);
                Ok(())
            }
            Err(err) => {
                // Formatted here, while `query` (which the error borrows from) is alive.
                let message = err.to_string();
                if message.contains("Token limit exceeded")
                    || message.contains("Recursion limit exceeded")
                {
                    return Ok(());
                }
                Err(format!("Failed to parse GraphQL operation: {message}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_quote_the_query_and_good_queries_are_remembered() {
        let guard = ParseGuard::new(5000);
        let message = guard.check("{ quer! Feed }").expect_err("a syntax error");
        assert!(message.contains("Unexpected `!"), "{message}");
        assert_eq!(guard.check("{ me { id } }"), Ok(()));
        assert_eq!(guard.check("{ me { id } }"), Ok(()));
        assert_eq!(guard.known.lock().expect("lock").len(), 1);
        // Limits stay the engine's to answer.
        let many = format!("{{ {} }}", "a ".repeat(6000));
        assert_eq!(guard.check(&many), Ok(()));
    }
}
