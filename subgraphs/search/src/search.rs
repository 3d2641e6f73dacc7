//! Running a search: the parsed query ([`crate::query`]) turned into a tantivy query over the current
//! generation, intersected with the caller's reach ([`crate::access`]) and the filters, sorted, paged,
//! counted and highlighted.
//!
//! Typo tolerance and search-as-you-type are done here, not by a tantivy query: each free word is
//! expanded against the term dictionaries into the indexed words within its typo budget (and, for the word
//! being typed, the words it starts), at most [`MAX_EXPANSIONS`] of them, the closest and most common
//! first, each weighted by how close it is. Knowing the words lets the snippets mark what matched.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use chrono::{DateTime, Utc};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, Searcher, SegmentReader, TantivyDocument, Term};
use uuid::Uuid;

use crate::access::Access;
use crate::documents::Kind;
use crate::error::Result;
use crate::index::{analyzer, Fields, Generation};
use crate::query::{Parsed, Word};

/// Indexed words one free word may stand for.
pub const MAX_EXPANSIONS: usize = 24;
/// Hits counted exactly; past it the count is a lower bound, and no page starts past it.
pub const MAX_COUNT: usize = 1_000;
/// The longest snippet (characters).
const SNIPPET_CHARS: usize = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Relevance,
    New,
    Top,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kinds: Vec<Kind>,
    pub author: Option<Uuid>,
    pub topic: Option<String>,
    pub tags: Vec<String>,
    pub chat: Option<Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub id: Uuid,
    pub kind: Kind,
    pub score: f32,
    /// (field, snippet with `<mark>`s, the rest HTML-escaped).
    pub highlights: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// Exact up to [`MAX_COUNT`]; then [`MAX_COUNT`] and `exact` false.
    pub total: usize,
    pub exact: bool,
    /// More hits after this page (within [`MAX_COUNT`]).
    pub more: bool,
}

/// Searches `generation` for `parsed` within `access`, the page `offset..offset+limit`.
pub fn run(
    generation: &Generation,
    parsed: &Parsed,
    filter: &Filter,
    access: &Access,
    sort: Sort,
    offset: usize,
    limit: usize,
) -> Result<Found> {
    if parsed.is_empty() || offset >= MAX_COUNT {
        return Ok(Found {
            exact: true,
            ..Found::default()
        });
    }
    let f = &generation.fields;
    let searcher = generation.reader.searcher();
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, access.query(f))];
    // The words each text field matched, for its snippets.
    let mut marked: HashMap<Field, BTreeMap<String, f32>> = HashMap::new();
    for word in &parsed.words {
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, weight) in f.texts() {
            for (text, closeness) in expand(&searcher, field, word)? {
                marked
                    .entry(field)
                    .or_default()
                    .insert(text.clone(), closeness);
                alternatives.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(
                        Box::new(TermQuery::new(
                            Term::from_field_text(field, &text),
                            IndexRecordOption::WithFreqs,
                        )),
                        weight * closeness,
                    )),
                ));
            }
        }
        if alternatives.is_empty() {
            // A word nothing stands for: no document has every word.
            return Ok(Found {
                exact: true,
                ..Found::default()
            });
        }
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(alternatives))));
    }
    for phrase in &parsed.phrases {
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, weight) in f.texts() {
            let terms: Vec<Term> = phrase
                .iter()
                .map(|w| Term::from_field_text(field, w))
                .collect();
            for w in phrase {
                marked.entry(field).or_default().insert(w.clone(), 1.0);
            }
            let query: Box<dyn Query> = if terms.len() == 1 {
                Box::new(TermQuery::new(
                    terms[0].clone(),
                    IndexRecordOption::WithFreqs,
                ))
            } else {
                Box::new(PhraseQuery::new(terms))
            };
            alternatives.push((Occur::Should, Box::new(BoostQuery::new(query, weight))));
        }
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(alternatives))));
    }
    for word in &parsed.excluded {
        for (field, _) in f.texts() {
            clauses.push((
                Occur::MustNot,
                Box::new(TermQuery::new(
                    Term::from_field_text(field, word),
                    IndexRecordOption::Basic,
                )),
            ));
        }
    }
    clauses.extend(filters(f, filter));
    let query = BooleanQuery::new(clauses);

    // One more than the page tells whether another follows.
    let wanted = (limit + 1).min(MAX_COUNT - offset);
    let top = TopDocs::with_limit(wanted.max(1)).and_offset(offset);
    let (ranked, count): (Vec<(f32, DocAddress)>, usize) = match sort {
        Sort::Relevance => searcher.search(&query, &(top.order_by_score(), Count))?,
        Sort::New | Sort::Top => {
            let column = if sort == Sort::New {
                "created"
            } else {
                "score"
            };
            let (docs, count) = searcher.search(
                &query,
                &(
                    top.tweak_score(move |segment: &SegmentReader| {
                        let values = segment.fast_fields().i64(column).ok();
                        move |doc, relevance| {
                            let value = values.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
                            (value, relevance)
                        }
                    }),
                    Count,
                ),
            )?;
            (
                docs.into_iter()
                    .map(|((_, relevance), address)| (relevance, address))
                    .collect(),
                count,
            )
        }
    };
    let more = ranked.len() > limit && offset + limit < MAX_COUNT;
    let generators: Vec<(Field, SnippetGenerator)> = f
        .texts()
        .into_iter()
        .map(|(field, _)| {
            let mut generator = SnippetGenerator::new(
                marked.remove(&field).unwrap_or_default(),
                analyzer(),
                field,
                SNIPPET_CHARS,
            );
            generator.set_max_num_chars(SNIPPET_CHARS);
            (field, generator)
        })
        .collect();
    let mut hits = Vec::with_capacity(limit);
    for (score, address) in ranked.into_iter().take(limit) {
        let doc: TantivyDocument = searcher.doc(address)?;
        let gates: Vec<String> = doc
            .get_all(f.gate)
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if !access.passes(&gates) {
            continue;
        }
        let (Some(id), Some(kind)) = (
            doc.get_first(f.id)
                .and_then(|v| v.as_str())
                .and_then(|s| Uuid::parse_str(s).ok()),
            doc.get_first(f.kind)
                .and_then(|v| v.as_str())
                .and_then(Kind::parse),
        ) else {
            continue;
        };
        let (title_name, body_name) = kind.field_names();
        let mut highlights = Vec::new();
        for (field, generator) in &generators {
            let Some(text) = doc.get_first(*field).and_then(|v| v.as_str()) else {
                continue;
            };
            let mut snippet = generator.snippet(text);
            if snippet.is_empty() {
                continue;
            }
            snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
            let name = if *field == f.title {
                title_name
            } else {
                body_name
            };
            highlights.push((name.to_string(), snippet.to_html()));
        }
        hits.push(Hit {
            id,
            kind,
            score,
            highlights,
        });
    }
    Ok(Found {
        hits,
        total: count.min(MAX_COUNT),
        exact: count <= MAX_COUNT,
        more,
    })
}

/// The filter's clauses.
fn filters(f: &Fields, filter: &Filter) -> Vec<(Occur, Box<dyn Query>)> {
    let term = |field, text: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, text),
            IndexRecordOption::Basic,
        ))
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if !filter.kinds.is_empty() {
        clauses.push((
            Occur::Must,
            Box::new(TermSetQuery::new(
                filter
                    .kinds
                    .iter()
                    .map(|k| Term::from_field_text(f.kind, k.name())),
            )),
        ));
    }
    if let Some(author) = filter.author {
        clauses.push((Occur::Must, term(f.author, &author.to_string())));
    }
    if let Some(topic) = &filter.topic {
        clauses.push((Occur::Must, term(f.topic, &topic.to_lowercase())));
    }
    for tag in &filter.tags {
        clauses.push((Occur::Must, term(f.tags, &tag.to_lowercase())));
    }
    if let Some(chat) = filter.chat {
        clauses.push((Occur::Must, term(f.chat, &chat.to_string())));
    }
    if filter.from.is_some() || filter.to.is_some() {
        let bound = |at: Option<DateTime<Utc>>, inclusive: bool| match at {
            Some(at) if inclusive => {
                Bound::Included(Term::from_field_i64(f.created, at.timestamp_micros()))
            }
            Some(at) => Bound::Excluded(Term::from_field_i64(f.created, at.timestamp_micros())),
            None => Bound::Unbounded,
        };
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                bound(filter.from, true),
                bound(filter.to, false),
            )),
        ));
    }
    clauses
}

/// The indexed words of `field` that `word` stands for, with how close each is (1 exact, less for a
/// completion or a typo).
fn expand(searcher: &Searcher, field: Field, word: &Word) -> Result<Vec<(String, f32)>> {
    let mut found: HashMap<String, u64> = HashMap::new();
    let exact = Term::from_field_text(field, &word.text);
    if searcher.doc_freq(&exact)? > 0 {
        found.insert(word.text.clone(), u64::MAX);
    }
    if word.typos > 0 || word.prefix {
        let fuzzy = if word.prefix {
            FuzzyTermQuery::new_prefix(exact.clone(), word.typos, true)
        } else {
            FuzzyTermQuery::new(exact.clone(), word.typos, true)
        };
        'segments: for segment in searcher.segment_readers() {
            let index = segment.inverted_index(field)?;
            let mut stream = index.terms().search(fuzzy.automaton()?).into_stream()?;
            while stream.advance() {
                let Ok(text) = std::str::from_utf8(stream.key()) else {
                    continue;
                };
                if !found.contains_key(text) {
                    found.insert(text.to_string(), 0);
                }
                // Enough candidates to choose the most common from.
                if found.len() >= MAX_EXPANSIONS * 8 {
                    break 'segments;
                }
            }
        }
    }
    let mut ranked: Vec<(String, f32, u64)> = Vec::with_capacity(found.len());
    for (text, freq) in found {
        let closeness = closeness(&word.text, &text, word.prefix);
        let freq = if freq == u64::MAX {
            freq
        } else {
            searcher.doc_freq(&Term::from_field_text(field, &text))?
        };
        ranked.push((text, closeness, freq));
    }
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)));
    ranked.truncate(MAX_EXPANSIONS);
    Ok(ranked.into_iter().map(|(t, c, _)| (t, c)).collect())
}

/// How good a match `indexed` is for `typed`: 1 for the word itself, 0.8 for a word it starts, then less
/// per typo.
fn closeness(typed: &str, indexed: &str, prefix: bool) -> f32 {
    if typed == indexed {
        return 1.0;
    }
    if prefix && indexed.starts_with(typed) {
        return 0.8;
    }
    let typed: Vec<char> = typed.chars().collect();
    let indexed: Vec<char> = indexed.chars().collect();
    // A completion with a typo compares with the indexed word's start.
    let indexed = if prefix && indexed.len() > typed.len() {
        &indexed[..typed.len()]
    } else {
        &indexed[..]
    };
    match typos(&typed, indexed) {
        0 => 0.8,
        1 => 0.5,
        _ => 0.3,
    }
}

/// Edits between two words, a swap of neighbours counting one (optimal string alignment).
fn typos(a: &[char], b: &[char]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closeness_orders_exact_completion_typo() {
        assert_eq!(closeness("engine", "engine", false), 1.0);
        assert_eq!(closeness("mainten", "maintenance", true), 0.8);
        assert_eq!(closeness("engnie", "engine", false), 0.5);
        assert!(closeness("maintenence", "maintenance", false) < 0.8);
    }
}
