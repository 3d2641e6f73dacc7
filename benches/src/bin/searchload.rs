//! Search figures (issue 20), in phases that print figures:
//!
//! 1. `build --dir D`: generates posts and comments (a fixed seed: every run the same rows) into the search
//!    subgraph's store in `D` (what its projection writes), builds the tantivy index from it (time, size,
//!    docs/s), and loads the same rows into PostgreSQL full-text search (a `tsvector` column, GIN index) and
//!    SQLite FTS5 for the side-by-side.
//! 2. `query --url … --dir D --postgres …`: the same queries — two words, a typo, a filtered one — through
//!    the router to the search subgraph (serving `D`), and straight to PostgreSQL (`ts_rank`) and SQLite
//!    FTS5 (`bm25`), each at a fixed concurrency for a fixed time: req/s, p50/p99, hits.
//! 3. `fresh --url …`: post created through the router → found by `search`, polled every 5 ms.
//!
//! `benches/search.sh` runs all three against a release `parley up`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use clap::{Parser, Subcommand};
use parley_bench::Samples;
use parley_kit::Domain;
use parley_search::store::document;
use parley_search::Search;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    phase: Phase,
}

#[derive(Subcommand)]
enum Phase {
    Build {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        posts: usize,
        #[arg(long, default_value_t = 2_000_000)]
        comments: usize,
        /// A PostgreSQL server (`postgres://user@host:port`) for the full-text baseline.
        #[arg(long)]
        postgres: Option<String>,
    },
    Query {
        #[arg(long, default_value = "http://127.0.0.1:4000/graphql")]
        url: String,
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    Fresh {
        #[arg(long, default_value = "http://127.0.0.1:4000/graphql")]
        url: String,
        #[arg(long, default_value_t = 100)]
        samples: usize,
    },
}

/// Words the queries use, ranked among the common ones (a few percent of documents each).
const CAR_WORDS: &[&str] = &[
    "engine",
    "oil",
    "brake",
    "tyre",
    "gearbox",
    "clutch",
    "coolant",
    "battery",
    "spark",
    "filter",
    "maintenance",
    "diesel",
    "petrol",
    "exhaust",
    "suspension",
    "steering",
    "radiator",
    "service",
    "mileage",
    "warranty",
];
const TOPICS: &[&str] = &[
    "cars", "bikes", "tools", "travel", "cooking", "music", "games", "news",
];
const BASELINE_DB: &str = "parley_searchload_fts";

/// The queries, each as the router gets it and as PostgreSQL and FTS5 get it.
struct Case {
    name: &'static str,
    query: &'static str,
    filter: Value,
    pg: &'static str,
    fts5: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "two words",
            query: "engine oil",
            filter: Value::Null,
            pg: "SELECT id FROM fts_docs WHERE tsv @@ q ORDER BY ts_rank(tsv, q) DESC LIMIT 20",
            fts5: "SELECT rowid FROM fts WHERE fts MATCH 'engine oil' ORDER BY rank LIMIT 20",
        },
        Case {
            name: "a typo",
            query: "engnie oil",
            filter: Value::Null,
            pg: "SELECT id FROM fts_docs WHERE tsv @@ q ORDER BY ts_rank(tsv, q) DESC LIMIT 20",
            fts5: "SELECT rowid FROM fts WHERE fts MATCH 'engnie oil' ORDER BY rank LIMIT 20",
        },
        Case {
            name: "filtered",
            query: "brake",
            filter: json!({ "kinds": ["POST"], "topic": "cars" }),
            pg: "SELECT id FROM fts_docs WHERE tsv @@ q AND kind = 'post' AND topic = 'cars' ORDER BY ts_rank(tsv, q) DESC LIMIT 20",
            fts5: "SELECT rowid FROM fts WHERE fts MATCH 'brake' AND kind = 'post' AND topic = 'cars' ORDER BY rank LIMIT 20",
        },
    ]
}

/// A fixed-seed generator of documents over a Zipf-like vocabulary.
struct Corpus {
    rng: StdRng,
    vocab: Vec<String>,
    authors: Vec<Uuid>,
}

impl Corpus {
    fn new() -> Corpus {
        let mut rng = StdRng::seed_from_u64(20);
        let syllables = [
            "ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "po", "gu", "ba", "fe", "zi",
            "no", "ra", "te", "mo", "li", "ku",
        ];
        let mut vocab: Vec<String> = Vec::with_capacity(20_000);
        while vocab.len() < 20_000 {
            if vocab.len() == 100 {
                vocab.extend(CAR_WORDS.iter().map(|w| w.to_string()));
            }
            let n = rng.gen_range(2..=4);
            let word: String = (0..n)
                .map(|_| syllables[rng.gen_range(0..syllables.len())])
                .collect();
            vocab.push(word);
        }
        let authors = (0..10_000).map(|_| Uuid::from_u128(rng.gen())).collect();
        Corpus {
            rng,
            vocab,
            authors,
        }
    }

    /// `n` words, word `i` about as likely as 1/i.
    fn words(&mut self, n: usize) -> String {
        let len = self.vocab.len() as f64;
        (0..n)
            .map(|_| {
                let u: f64 = self.rng.gen();
                let i = (len.powf(u) as usize)
                    .saturating_sub(1)
                    .min(self.vocab.len() - 1);
                self.vocab[i].as_str()
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `n`-th document: posts first, then comments on them.
    fn document(&mut self, n: usize, posts: usize, change: i64) -> document::Model {
        let author = self.authors[self.rng.gen_range(0..self.authors.len())];
        let created = Utc.timestamp_opt(1_735_689_600 + self.rng.gen_range(0..31_536_000), 0);
        let created_at = created.single().unwrap_or_else(Utc::now);
        let score = (self.rng.gen::<f64>().powi(4) * 1_000.0) as i64;
        if n < posts {
            let id = Uuid::from_u128(n as u128 + 1);
            let tags: Vec<&str> = (0..self.rng.gen_range(0..3))
                .map(|_| CAR_WORDS[self.rng.gen_range(0..CAR_WORDS.len())])
                .collect();
            document::Model {
                id,
                kind: "post".into(),
                author_id: author,
                post_id: Some(id),
                post_author_id: Some(author),
                chat_id: None,
                topic: Some(TOPICS[self.rng.gen_range(0..TOPICS.len())].into()),
                tags: serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()),
                title: self.words(6),
                body: self.words(40),
                score,
                created_at,
                deleted: false,
                change,
            }
        } else {
            let post = Uuid::from_u128(self.rng.gen_range(0..posts) as u128 + 1);
            document::Model {
                id: Uuid::from_u128(n as u128 + 1),
                kind: "comment".into(),
                author_id: author,
                post_id: Some(post),
                post_author_id: Some(author),
                chat_id: None,
                topic: None,
                tags: "[]".into(),
                title: String::new(),
                body: self.words(20),
                score,
                created_at,
                deleted: false,
                change,
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().phase {
        Phase::Build {
            dir,
            posts,
            comments,
            postgres,
        } => build(dir, posts, comments, postgres).await,
        Phase::Query {
            url,
            dir,
            postgres,
            concurrency,
            seconds,
        } => query(url, dir, postgres, concurrency, seconds).await,
        Phase::Fresh { url, samples } => fresh(url, samples).await,
    }
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn build(
    dir: std::path::PathBuf,
    posts: usize,
    comments: usize,
    postgres: Option<String>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&dir)?;
    let config = parley_kit::ServiceConfig {
        name: Search::NAME.into(),
        data_dir: dir.clone(),
        ..Default::default()
    };
    let db = parley_kit::store::connect::<parley_search::Migrator>(&config).await?;
    let fts5 = sea_orm::Database::connect(format!(
        "sqlite://{}?mode=rwc",
        dir.join("fts5.db").display()
    ))
    .await?;
    fts5.execute_unprepared(
        "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(title, body, kind UNINDEXED, topic UNINDEXED)",
    )
    .await?;
    let pg = match &postgres {
        Some(server) => Some(baseline_db(server).await?),
        None => None,
    };
    let total = posts + comments;
    let mut corpus = Corpus::new();
    let started = Instant::now();
    let (mut store_time, mut pg_time, mut fts5_time) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut n = 0;
    while n < total {
        let batch: Vec<document::Model> = (n..(n + 500).min(total))
            .map(|i| corpus.document(i, posts, i as i64 + 1))
            .collect();
        n += batch.len();
        let t = Instant::now();
        document::Entity::insert_many(batch.iter().map(|d| document::ActiveModel {
            id: Set(d.id),
            kind: Set(d.kind.clone()),
            author_id: Set(d.author_id),
            post_id: Set(d.post_id),
            post_author_id: Set(d.post_author_id),
            chat_id: Set(None),
            topic: Set(d.topic.clone()),
            tags: Set(d.tags.clone()),
            title: Set(d.title.clone()),
            body: Set(d.body.clone()),
            score: Set(d.score),
            created_at: Set(d.created_at),
            deleted: Set(false),
            change: Set(d.change),
        }))
        .exec(&db)
        .await?;
        store_time += t.elapsed();
        let rows = |with_id: bool| {
            batch
                .iter()
                .map(|d| {
                    let topic = d.topic.as_deref().map_or("NULL".to_string(), sql_text);
                    if with_id {
                        format!(
                            "('{}', '{}', {topic}, {}, {})",
                            d.id,
                            d.kind,
                            sql_text(&d.title),
                            sql_text(&d.body)
                        )
                    } else {
                        format!(
                            "({}, {}, '{}', {topic})",
                            sql_text(&d.title),
                            sql_text(&d.body),
                            d.kind
                        )
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        if let Some(pg) = &pg {
            let t = Instant::now();
            pg.execute_unprepared(&format!(
                "INSERT INTO fts_docs (id, kind, topic, title, body) VALUES {}",
                rows(true)
            ))
            .await?;
            pg_time += t.elapsed();
        }
        let t = Instant::now();
        fts5.execute_unprepared(&format!(
            "INSERT INTO fts (title, body, kind, topic) VALUES {}",
            rows(false)
        ))
        .await?;
        fts5_time += t.elapsed();
    }
    db.execute_unprepared(&format!(
        "UPDATE search_clock SET change = {total} WHERE id = 1"
    ))
    .await?;
    println!(
        "generated {posts} posts + {comments} comments in {:.1} s (search store {:.1} s)",
        started.elapsed().as_secs_f64(),
        store_time.as_secs_f64()
    );

    let index_dir = dir.join("search").join(Search::PORT.to_string());
    std::fs::create_dir_all(&index_dir)?;
    let t = Instant::now();
    let generation = parley_search::index::build(&index_dir, &db).await?;
    let took = t.elapsed().as_secs_f64();
    let docs = generation.reader.searcher().num_docs();
    println!(
        "tantivy index: {docs} documents in {took:.1} s ({:.0} docs/s), {:.0} MB on disk",
        docs as f64 / took,
        dir_mb(&index_dir)
    );
    if let Some(pg) = &pg {
        let t = Instant::now();
        pg.execute_unprepared("CREATE INDEX fts_docs_tsv ON fts_docs USING GIN (tsv)")
            .await?;
        pg.execute_unprepared("ANALYZE fts_docs").await?;
        let gin = t.elapsed().as_secs_f64();
        let size = pg
            .query_one_raw(Statement::from_string(
                pg.get_database_backend(),
                "SELECT pg_total_relation_size('fts_docs')::float8 / 1048576",
            ))
            .await?
            .and_then(|row| row.try_get_by_index::<f64>(0).ok())
            .unwrap_or(0.0);
        println!(
            "PostgreSQL FTS: rows (with the generated tsvector) {:.1} s + GIN index {gin:.1} s, {size:.0} MB table + indexes",
            pg_time.as_secs_f64()
        );
    }
    let t = Instant::now();
    fts5.execute_unprepared("INSERT INTO fts(fts) VALUES('optimize')")
        .await?;
    println!(
        "SQLite FTS5: rows {:.1} s + optimize {:.1} s, {:.0} MB",
        fts5_time.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        std::fs::metadata(dir.join("fts5.db")).map_or(0, |m| m.len()) as f64 / 1_048_576.0
    );
    Ok(())
}

/// A fresh baseline database on `server` with the table (its `tsvector` generated from title and body).
async fn baseline_db(server: &str) -> anyhow::Result<DatabaseConnection> {
    let base = server.trim_end_matches('/');
    let admin = sea_orm::Database::connect(format!("{base}/postgres")).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {BASELINE_DB}"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {BASELINE_DB}"))
        .await?;
    let pg = sea_orm::Database::connect(format!("{base}/{BASELINE_DB}")).await?;
    pg.execute_unprepared(
        "CREATE TABLE fts_docs (id uuid PRIMARY KEY, kind text NOT NULL, topic text, title text NOT NULL, \
         body text NOT NULL, tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', title || ' ' || body)) STORED)",
    )
    .await?;
    Ok(pg)
}

fn dir_mb(dir: &std::path::Path) -> f64 {
    fn walk(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(dir) as f64 / 1_048_576.0
}

/// Runs `one` from `concurrency` tasks for `seconds`; prints req/s and latencies.
async fn drive<F, Fut>(label: &str, concurrency: usize, seconds: u64, one: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<usize>> + Send,
{
    let one = Arc::new(one);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (one, stop) = (one.clone(), stop.clone());
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut hits = 0;
                let mut errors = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match one().await {
                        Ok(n) => {
                            samples.push(t.elapsed());
                            hits = n;
                        }
                        Err(_) => errors += 1,
                    }
                }
                (samples, hits, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Samples::default();
    let (mut hits, mut errors) = (0, 0);
    for task in tasks {
        if let Ok((samples, h, e)) = task.await {
            all.extend(samples);
            hits = h;
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  {label:<34} {:>7.0} req/s  {}  ({hits} hits on the first page, {errors} errors)",
        all.len() as f64 / elapsed,
        all.summary()
    );
}

async fn query(
    url: String,
    dir: std::path::PathBuf,
    postgres: Option<String>,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let pg = match &postgres {
        Some(server) => {
            let mut options = sea_orm::ConnectOptions::new(format!(
                "{}/{BASELINE_DB}",
                server.trim_end_matches('/')
            ));
            options
                .max_connections(concurrency as u32)
                .sqlx_logging(false);
            Some(sea_orm::Database::connect(options).await?)
        }
        None => None,
    };
    let mut options = sea_orm::ConnectOptions::new(format!(
        "sqlite://{}?mode=ro",
        dir.join("fts5.db").display()
    ));
    options
        .max_connections(concurrency as u32)
        .sqlx_logging(false);
    let fts5 = sea_orm::Database::connect(options).await?;
    println!("concurrency {concurrency}, {seconds} s per run");
    for case in cases() {
        println!("{} ({:?}):", case.name, case.query);
        let body = json!({
            "query": "query($q: String!, $f: SearchFilter) { search(query: $q, filter: $f, first: 20) { totalCount edges { node { score highlights { snippet } node { __typename } } } } }",
            "variables": { "q": case.query, "f": case.filter },
        });
        let (client, endpoint) = (http.clone(), url.clone());
        drive(
            "Parley search, through the router",
            concurrency,
            seconds,
            move || {
                let (client, endpoint, body) = (client.clone(), endpoint.clone(), body.clone());
                async move {
                    let response: Value = client
                        .post(&endpoint)
                        .json(&body)
                        .send()
                        .await?
                        .json()
                        .await?;
                    if response.get("errors").is_some() {
                        anyhow::bail!("{response}");
                    }
                    Ok(response["data"]["search"]["edges"]
                        .as_array()
                        .map_or(0, Vec::len))
                }
            },
        )
        .await;
        if let Some(pg) = &pg {
            let (pg, sql) = (
                pg.clone(),
                format!(
                    "{} ",
                    case.pg.replace(
                        "FROM fts_docs",
                        "FROM fts_docs, websearch_to_tsquery('english', $1) q"
                    )
                ),
            );
            let q = case.query.to_string();
            drive("PostgreSQL FTS, direct", concurrency, seconds, move || {
                let (pg, sql, q) = (pg.clone(), sql.clone(), q.clone());
                async move {
                    let rows = pg
                        .query_all_raw(Statement::from_sql_and_values(
                            pg.get_database_backend(),
                            &sql,
                            [q.into()],
                        ))
                        .await?;
                    Ok(rows.len())
                }
            })
            .await;
        }
        let (db, sql) = (fts5.clone(), case.fts5.to_string());
        drive("SQLite FTS5, direct", concurrency, seconds, move || {
            let (db, sql) = (db.clone(), sql.clone());
            async move {
                let rows = db
                    .query_all_raw(Statement::from_string(db.get_database_backend(), &sql))
                    .await?;
                Ok(rows.len())
            }
        })
        .await;
    }
    Ok(())
}

async fn fresh(url: String, samples: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let nick = format!(
        "fresh{}",
        Uuid::now_v7().simple().to_string().get(20..).unwrap_or("x")
    );
    let (token, _) = parley_bench::register(&http, &url, &nick).await?;
    let mut latency = Samples::default();
    for n in 0..samples {
        let word = format!(
            "zq{}x{n}",
            Uuid::now_v7().simple().to_string().get(24..).unwrap_or("y")
        );
        let t = Instant::now();
        parley_bench::gql(
            &http,
            &url,
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
            json!({ "i": { "title": word, "body": "fresh" } }),
            Some(&token),
        )
        .await?;
        let deadline = t + Duration::from_secs(10);
        loop {
            let found = parley_bench::gql(
                &http,
                &url,
                "query($q: String!) { search(query: $q) { totalCount } }",
                json!({ "q": format!("{word} ") }),
                Some(&token),
            )
            .await?;
            if found["search"]["totalCount"].as_i64() == Some(1) {
                latency.push(t.elapsed());
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("{word} not searchable after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    println!(
        "createPost → found by search, {} posts: {}",
        latency.len(),
        latency.summary()
    );
    Ok(())
}
