//! The tantivy index: its schema and analyzer, its generations on disk, and the tail that keeps it current.
//!
//! The index is derived data, built from the store's documents ([`crate::documents`]). It lives in
//! `<index_dir>/v<VERSION>-<generation>/`; `<index_dir>/CURRENT` names the generation in use. Each commit
//! carries the last change it contains (the commit payload), so after a restart the [`Tail`] goes on from
//! there. A missing, unreadable or other-version index is rebuilt ([`build`]) into a new generation while the
//! old one (when it opens) keeps answering; `parley search reindex` does the same on demand, and the serving
//! instance picks the new generation up from `CURRENT`.
//!
//! Visibility is indexed per document as `gate` terms: `public`, or the ids of the private accounts whose
//! followers alone may see it (a post's author; a comment's author and its post's author). Which private
//! accounts there are is read at indexing time, and a privacy change gives the author's documents a new
//! change number, so they are indexed again ([`crate::projection`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STORED,
    STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use crate::documents::{last_change, Kind};
use crate::error::Result;
use crate::store::document;
use parley_kit::audience::private_account;

/// The schema's version: a change to fields or analysis bumps it, and the index is rebuilt.
pub const VERSION: u32 = 1;
/// The analyzer of the text fields (and of queries).
pub const ANALYZER: &str = "parley";
/// Words longer than this are not indexed (nor searched).
pub const LONGEST_WORD: usize = 40;
/// Documents written per commit while tailing (each commit is one fsync and one reader reload).
const TAIL_BATCH: u64 = 2_000;
/// Rows read per page while building.
const BUILD_PAGE: u64 = 10_000;
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

/// The index's fields.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub id: Field,
    pub kind: Field,
    pub author: Field,
    pub post_author: Field,
    pub post: Field,
    pub chat: Field,
    pub topic: Field,
    pub tags: Field,
    pub gate: Field,
    /// Microseconds since the epoch.
    pub created: Field,
    pub score: Field,
    pub title: Field,
    pub body: Field,
}

impl Fields {
    /// The text fields a query searches, each with its weight.
    pub fn texts(&self) -> [(Field, f32); 2] {
        [(self.title, 2.0), (self.body, 1.0)]
    }
}

pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let number = NumericOptions::default().set_fast().set_indexed();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        author: b.add_text_field("author", STRING),
        post_author: b.add_text_field("post_author", STRING),
        post: b.add_text_field("post", STRING),
        chat: b.add_text_field("chat", STRING),
        topic: b.add_text_field("topic", STRING),
        tags: b.add_text_field("tags", STRING),
        gate: b.add_text_field("gate", STRING | STORED),
        created: b.add_i64_field("created", number.clone()),
        score: b.add_i64_field("score", number),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text),
    };
    (b.build(), fields)
}

/// Words as they are indexed: split on what is not a letter or digit, lowercased, accents folded.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(LONGEST_WORD + 1))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The terms `text` analyzes into.
pub fn words(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// One generation of the index, open for reading and writing.
pub struct Generation {
    pub name: String,
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    writer: Mutex<IndexWriter>,
}

impl Generation {
    fn create(dir: &Path, name: &str) -> Result<Generation> {
        let path = dir.join(name);
        std::fs::create_dir_all(&path)?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(&path, schema)?;
        Self::ready(index, fields, name)
    }

    fn open(dir: &Path, name: &str) -> Result<Generation> {
        let index = Index::open_in_dir(dir.join(name))?;
        let (schema, fields) = schema();
        if index.schema() != schema {
            return Err(tantivy::TantivyError::SchemaError("another schema".into()).into());
        }
        Self::ready(index, fields, name)
    }

    fn ready(index: Index, fields: Fields, name: &str) -> Result<Generation> {
        index.tokenizers().register(ANALYZER, analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer(WRITER_MEMORY)?;
        Ok(Generation {
            name: name.to_string(),
            index,
            reader,
            fields,
            writer: Mutex::new(writer),
        })
    }

    /// The last change this generation holds (its last commit's payload).
    pub fn change(&self) -> Result<i64> {
        Ok(self
            .index
            .load_metas()?
            .payload
            .and_then(|p| p.parse().ok())
            .unwrap_or(0))
    }

    /// Writes the documents changed after what it holds, in batches; returns how many.
    pub async fn catch_up(&self, db: &DatabaseConnection) -> Result<usize> {
        let mut writer = self.writer.lock().await;
        let mut done = 0;
        loop {
            let after = self.change()?;
            let rows = document::Entity::find()
                .filter(document::Column::Change.gt(after))
                .order_by_asc(document::Column::Change)
                .limit(TAIL_BATCH)
                .all(db)
                .await?;
            let Some(last) = rows.last().map(|r| r.change) else {
                return Ok(done);
            };
            // A batch ends at a change boundary: one change can touch many rows (a privacy change).
            let rows = if rows.len() as u64 == TAIL_BATCH {
                let mut rows = rows;
                let cut = rows.iter().filter(|r| r.change == last).count();
                if cut == rows.len() {
                    // One change wider than a batch: take all of it.
                    document::Entity::find()
                        .filter(document::Column::Change.eq(last))
                        .all(db)
                        .await?
                } else {
                    rows.truncate(rows.len() - cut);
                    rows
                }
            } else {
                rows
            };
            let last = rows.last().map_or(last, |r| r.change);
            let private = private_among(db, &rows).await?;
            for row in &rows {
                writer.delete_term(Term::from_field_text(self.fields.id, &row.id.to_string()));
                if !row.deleted {
                    writer.add_document(self.document(row, &private))?;
                }
            }
            let mut commit = writer.prepare_commit()?;
            commit.set_payload(&last.to_string());
            commit.commit()?;
            self.reader.reload()?;
            done += rows.len();
        }
    }

    fn document(&self, row: &document::Model, private: &HashSet<Uuid>) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = doc!(
            f.id => row.id.to_string(),
            f.kind => row.kind.clone(),
            f.author => row.author_id.to_string(),
            f.created => row.created_at.timestamp_micros(),
            f.score => row.score,
            f.title => row.title.clone(),
            f.body => row.body.clone(),
        );
        if let Some(post) = row.post_id {
            doc.add_text(f.post, post.to_string());
        }
        if let Some(author) = row.post_author_id {
            doc.add_text(f.post_author, author.to_string());
        }
        if let Some(chat) = row.chat_id {
            doc.add_text(f.chat, chat.to_string());
        }
        if let Some(topic) = &row.topic {
            doc.add_text(f.topic, topic);
        }
        for tag in serde_json::from_str::<Vec<String>>(&row.tags).unwrap_or_default() {
            doc.add_text(f.tags, tag);
        }
        let mut gates: Vec<Uuid> = Vec::new();
        if Kind::parse(&row.kind) != Some(Kind::User) {
            for author in [Some(row.author_id), row.post_author_id]
                .into_iter()
                .flatten()
            {
                if private.contains(&author) && !gates.contains(&author) {
                    gates.push(author);
                }
            }
        }
        if gates.is_empty() {
            doc.add_text(f.gate, PUBLIC);
        }
        for gate in gates {
            doc.add_text(f.gate, gate.to_string());
        }
        doc
    }
}

/// The `gate` term of what everyone may see.
pub const PUBLIC: &str = "public";

/// Which of the rows' authors (and posts' authors) are private now.
async fn private_among(db: &DatabaseConnection, rows: &[document::Model]) -> Result<HashSet<Uuid>> {
    let mut authors: Vec<Uuid> = rows
        .iter()
        .flat_map(|r| [Some(r.author_id), r.post_author_id])
        .flatten()
        .collect();
    authors.sort_unstable();
    authors.dedup();
    let mut private = HashSet::new();
    for chunk in authors.chunks(500) {
        private.extend(
            private_account::Entity::find()
                .filter(private_account::Column::UserId.is_in(chunk.iter().copied()))
                .all(db)
                .await?
                .into_iter()
                .map(|p| p.user_id),
        );
    }
    Ok(private)
}

/// The generation in use, swapped whole when a rebuilt one is ready.
pub struct Shelf {
    pub dir: PathBuf,
    current: RwLock<Arc<Generation>>,
}

impl Shelf {
    /// Opens the generation `CURRENT` names; when there is none, it does not open with this version's
    /// schema, or it holds changes the store has not made, builds one from the store first.
    pub async fn open(dir: PathBuf, db: &DatabaseConnection) -> Result<Arc<Shelf>> {
        std::fs::create_dir_all(&dir)?;
        let opened = current_name(&dir).and_then(|name| Generation::open(&dir, &name).ok());
        // An index ahead of the store belongs to another store (one reset or replaced): rebuilt too.
        let last = last_change(db).await?;
        let generation = match opened {
            Some(generation) if generation.change()? <= last => generation,
            _ => build(&dir, db).await?,
        };
        remove_others(&dir, &generation.name);
        Ok(Arc::new(Shelf {
            dir,
            current: RwLock::new(Arc::new(generation)),
        }))
    }

    pub fn current(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Switches to the generation `CURRENT` names if it is another (a reindex made it).
    fn follow(&self) -> Result<bool> {
        let Some(name) = current_name(&self.dir) else {
            return Ok(false);
        };
        if name == self.current().name {
            return Ok(false);
        }
        let next = Generation::open(&self.dir, &name)?;
        let old = std::mem::replace(
            &mut *self
                .current
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            Arc::new(next),
        );
        tracing::info!(from = %old.name, to = %name, "search index generation switched");
        remove_others(&self.dir, &name);
        Ok(true)
    }
}

/// Builds a new generation from every live document in the store, makes it `CURRENT` and returns it. The
/// documents changed while it was built have later change numbers: the tail writes them next.
pub async fn build(dir: &Path, db: &DatabaseConnection) -> Result<Generation> {
    let name = format!("v{VERSION}-{}", Uuid::now_v7().simple());
    let generation = Generation::create(dir, &name)?;
    let upto = last_change(db).await?;
    let started = std::time::Instant::now();
    let mut count = 0usize;
    {
        let mut writer = generation.writer.lock().await;
        let mut after: Option<Uuid> = None;
        loop {
            let mut query = document::Entity::find()
                .filter(document::Column::Deleted.eq(false))
                .filter(document::Column::Change.lte(upto))
                .order_by_asc(document::Column::Id)
                .limit(BUILD_PAGE);
            if let Some(after) = after {
                query = query.filter(document::Column::Id.gt(after));
            }
            let rows = query.all(db).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            let private = private_among(db, &rows).await?;
            for row in &rows {
                writer.add_document(generation.document(row, &private))?;
            }
            count += rows.len();
        }
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&upto.to_string());
        commit.commit()?;
    }
    generation.reader.reload()?;
    std::fs::write(dir.join("CURRENT.tmp"), &name)?;
    std::fs::rename(dir.join("CURRENT.tmp"), dir.join("CURRENT"))?;
    tracing::info!(generation = %name, documents = count, elapsed_ms = started.elapsed().as_millis() as u64, "search index built");
    Ok(generation)
}

fn current_name(dir: &Path) -> Option<String> {
    let name = std::fs::read_to_string(dir.join("CURRENT")).ok()?;
    let name = name.trim().to_string();
    name.starts_with(&format!("v{VERSION}-")).then_some(name)
}

/// Deletes the generations other than `keep` (a reader still holding one keeps its open files).
fn remove_others(dir: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('v') && name != keep && entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Keeps this instance's index current: woken by its own projection's commits, and polling the store for
/// changes another instance applied; follows `CURRENT` to a generation a reindex made.
pub struct Tail {
    pub shelf: Arc<Shelf>,
    pub db: DatabaseConnection,
    pub wake: Arc<Notify>,
    pub poll: Duration,
}

impl Tail {
    pub async fn run(self) {
        loop {
            if let Err(e) = self.shelf.follow() {
                tracing::warn!(error = %e, "search index: the new generation did not open");
            }
            let generation = self.shelf.current();
            match generation.catch_up(&self.db).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(documents = n, "search index caught up"),
                Err(e) => tracing::warn!(error = %e, "search index: catching up failed; retrying"),
            }
            let _ = tokio::time::timeout(self.poll, self.wake.notified()).await;
        }
    }
}
