//! Seeds the users, social, posts, feed and chat stores with a large, consistent graph, written directly with bulk
//! inserts (the event flow is not what this measures):
//!
//! - `--users` accounts (password `bench password 1`; `user0`…`userN`), each known to social;
//! - 50 topics; `--posts` posts spread over the last 30 days by random authors, 70% in a topic;
//! - `--comments` comments on those posts, half of them replies (threads several levels deep);
//! - `--votes` votes, 80% on posts and 20% on comments, 70% up; every post's and comment's totals and
//!   stored ranks match its votes;
//! - `--chat-groups` group chats of `--chat-size` consecutive users (and every user known to chat);
//! - the first `--readers` users each follow `--follows` random authors: follows in social and feed, and
//!   those authors' posts in the readers' timelines.
//!
//! SQLite (default): files `<data-dir>/<subgraph>.db`, as `parley up --data-dir` expects. PostgreSQL:
//! `--postgres postgres://user@host:port` creates (or recreates) databases `parley_<subgraph>`.
//!
//! `cargo run --release -p parley-bench --bin seed -- --data-dir target/bench --posts 1000000`

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use argon2::password_hash::{rand_core::OsRng as HashRng, PasswordHasher, SaltString};
use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use parley_kit::rank;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, TransactionTrait, Value};
use sea_orm_migration::MigratorTrait;
use uuid::{NoContext, Timestamp, Uuid};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/bench/data")]
    data_dir: PathBuf,
    /// Base URL of a PostgreSQL server; seeds databases `parley_<subgraph>` there instead of SQLite files.
    #[arg(long)]
    postgres: Option<String>,
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    #[arg(long, default_value_t = 1_000_000)]
    posts: usize,
    #[arg(long, default_value_t = 2_000_000)]
    comments: usize,
    #[arg(long, default_value_t = 5_000_000)]
    votes: usize,
    #[arg(long, default_value_t = 100)]
    readers: usize,
    #[arg(long, default_value_t = 100)]
    follows: usize,
    /// Group chats to seed in the chat store (members are consecutive users, the first one admin).
    #[arg(long, default_value_t = 0)]
    chat_groups: usize,
    #[arg(long, default_value_t = 10)]
    chat_size: usize,
}

const BATCH: usize = 1000;
const TOPICS: usize = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let users_db = open::<migration_users::Migrator>(&args, "users").await?;
    let social_db = open::<migration_social::Migrator>(&args, "social").await?;
    let posts_db = open::<migration_posts::Migrator>(&args, "posts").await?;
    let feed_db = open::<migration_feed::Migrator>(&args, "feed").await?;
    let chat_db = open::<migration_chat::Migrator>(&args, "chat").await?;
    let mut rng = StdRng::seed_from_u64(7);

    let users = seed_users(&users_db, &social_db, args.users).await?;
    println!(
        "users: {} in {:.1}s",
        users.len(),
        started.elapsed().as_secs_f64()
    );

    seed_chats(&chat_db, &users, args.chat_groups, args.chat_size).await?;

    let topics = seed_topics(&posts_db, &users).await?;
    let readers: Vec<Uuid> = users.iter().take(args.readers).copied().collect();
    let mut follows: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for reader in &readers {
        let mut chosen = HashSet::new();
        while chosen.len() < args.follows.min(users.len() - 1) {
            let author = users[rng.gen_range(0..users.len())];
            if author != *reader {
                chosen.insert(author);
            }
        }
        follows.insert(*reader, chosen.into_iter().collect());
    }
    let followed: HashSet<Uuid> = follows.values().flatten().copied().collect();
    seed_follows(&social_db, &feed_db, &follows).await?;

    let plan = Plan {
        posts: args.posts,
        comments_per_post: args.comments as f64 / args.posts.max(1) as f64,
        post_votes_per_post: args.votes as f64 * 0.8 / args.posts.max(1) as f64,
        comment_votes_per_comment: args.votes as f64 * 0.2 / args.comments.max(1) as f64,
    };
    let mut timeline_sources: HashMap<Uuid, Vec<FeedRow>> = HashMap::new();
    let mut totals = (0usize, 0usize, 0usize);
    let mut done = 0;
    while done < plan.posts {
        let n = BATCH.min(plan.posts - done);
        let batch = generate_batch(&mut rng, &plan, &users, &topics, n);
        totals.0 += batch.posts.len();
        totals.1 += batch.comments.len();
        totals.2 += batch.votes.len();
        for p in &batch.posts {
            if followed.contains(&p.author) {
                timeline_sources
                    .entry(p.author)
                    .or_default()
                    .push(p.feed_row());
            }
        }
        write_batch(&posts_db, &feed_db, &batch).await?;
        done += n;
        if done % 100_000 == 0 || done == plan.posts {
            println!(
                "posts: {done} comments: {} votes: {} ({:.1}s)",
                totals.1,
                totals.2,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let rows = seed_timelines(&feed_db, &follows, &timeline_sources).await?;
    println!(
        "done: {} users, {} posts, {} comments, {} votes, {} timeline rows in {:.1}s",
        users.len(),
        totals.0,
        totals.1,
        totals.2,
        rows,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Opens (recreating) one subgraph's store and runs its migrations.
async fn open<M: MigratorTrait>(args: &Args, name: &str) -> anyhow::Result<DatabaseConnection> {
    let url = match &args.postgres {
        Some(base) => {
            let base = base.trim_end_matches('/');
            let admin = Database::connect(format!("{base}/postgres")).await?;
            let db = format!("parley_{name}");
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                .await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{db}\""))
                .await?;
            format!("{base}/{db}")
        }
        None => {
            std::fs::create_dir_all(&args.data_dir)?;
            let file = args.data_dir.join(format!("{name}.db"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
            format!("sqlite://{}?mode=rwc", file.display())
        }
    };
    let db = Database::connect(&url).await.with_context(|| url.clone())?;
    if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;")
            .await?;
    }
    M::up(&db, None).await?;
    Ok(db)
}

/// Inserts `rows` (each a list of values for `columns`) into `table`, in chunks.
async fn insert<C: ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
) -> anyhow::Result<()> {
    let per = (30_000 / columns.len()).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut stmt = Query::insert();
        stmt.into_table(Alias::new(table))
            .columns(columns.iter().map(|c| Alias::new(*c)));
        for row in rows.by_ref().take(per) {
            stmt.values_panic(row.into_iter().map(Expr::val));
        }
        db.execute(&stmt).await?;
    }
    Ok(())
}

fn v7_at(at: DateTime<Utc>, rng: &mut StdRng) -> Uuid {
    let ts = Timestamp::from_unix(
        NoContext,
        at.timestamp() as u64,
        at.timestamp_subsec_nanos(),
    );
    let mut bytes = *Uuid::new_v7(ts).as_bytes();
    // new_v7 fills the random bits from the OS; mix in our own so the seed is cheap and repeatable enough.
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes[15] = rng.gen();
    Uuid::from_bytes(bytes)
}

async fn seed_users(
    users_db: &DatabaseConnection,
    social_db: &DatabaseConnection,
    n: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let salt = SaltString::generate(&mut HashRng);
    let hash = argon2::Argon2::default()
        .hash_password(b"bench password 1", &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let now = Utc::now();
    let mut ids = Vec::with_capacity(n);
    let mut rng = StdRng::seed_from_u64(1);
    let mut user_rows = Vec::new();
    let mut account_rows = Vec::new();
    for i in 0..n {
        let created = now - Duration::days(60) + Duration::milliseconds(i as i64);
        let id = v7_at(created, &mut rng);
        ids.push(id);
        let nick = format!("user{i}");
        user_rows.push(vec![
            id.into(),
            format!("{nick}@bench.local").into(),
            nick.clone().into(),
            nick.clone().into(),
            format!("User {i}").into(),
            format!("user {i}").into(),
            hash.clone().into(),
            Value::String(None),
            Value::String(None),
            Value::String(None),
            "user".into(),
            true.into(),
            created.into(),
            created.into(),
            Value::ChronoDateTimeUtc(None),
        ]);
        account_rows.push(vec![id.into(), false.into(), created.into()]);
    }
    let txn = users_db.begin().await?;
    insert(
        &txn,
        "users",
        &[
            "id",
            "email",
            "nickname",
            "nickname_key",
            "name",
            "name_key",
            "password_hash",
            "bio",
            "avatar_url",
            "status",
            "role",
            "email_verified",
            "created_at",
            "updated_at",
            "last_seen_at",
        ],
        user_rows,
    )
    .await?;
    txn.commit().await?;
    let txn = social_db.begin().await?;
    insert(
        &txn,
        "accounts",
        &["user_id", "is_private", "registered_at"],
        account_rows,
    )
    .await?;
    txn.commit().await?;
    Ok(ids)
}

/// Every user known to chat, with their card (nickname `user{i}` as in users); `groups` group chats of `size` consecutive users (wrapping around).
async fn seed_chats(
    db: &DatabaseConnection,
    users: &[Uuid],
    groups: usize,
    size: usize,
) -> anyhow::Result<()> {
    let txn = db.begin().await?;
    let known = users
        .iter()
        .enumerate()
        .map(|(i, u)| vec![(*u).into(), format!("user{i}").into(), Value::String(None)])
        .collect();
    insert(
        &txn,
        "known_users",
        &["user_id", "nickname", "avatar_url"],
        known,
    )
    .await?;
    let now = Utc::now();
    let mut rng = StdRng::seed_from_u64(3);
    let (mut chats, mut members) = (Vec::new(), Vec::new());
    for g in 0..groups {
        let id = v7_at(now, &mut rng);
        let admin = users[(g * size) % users.len()];
        chats.push(vec![
            id.into(),
            "GROUP".into(),
            format!("Group {g}").into(),
            Value::String(None),
            admin.into(),
            0i64.into(),
            now.timestamp_micros().into(),
            now.into(),
        ]);
        for m in 0..size.min(users.len()) {
            let user = users[(g * size + m) % users.len()];
            members.push(vec![
                id.into(),
                user.into(),
                if m == 0 { "ADMIN" } else { "MEMBER" }.into(),
                now.into(),
                0i64.into(),
                Value::ChronoDateTimeUtc(None),
                "ALL".into(),
                0i64.into(),
                0i64.into(),
            ]);
        }
    }
    let chat_columns = [
        "id",
        "kind",
        "title",
        "direct_key",
        "creator_id",
        "last_seq",
        "activity",
        "created_at",
    ];
    insert(&txn, "chats", &chat_columns, chats).await?;
    let member_columns = [
        "chat_id",
        "user_id",
        "role",
        "joined_at",
        "joined_seq",
        "muted_until",
        "notification_level",
        "delivered_seq",
        "read_seq",
    ];
    insert(&txn, "chat_members", &member_columns, members).await?;
    txn.commit().await?;
    if groups > 0 {
        println!("chat: {groups} groups of {size}");
    }
    Ok(())
}

async fn seed_topics(db: &DatabaseConnection, users: &[Uuid]) -> anyhow::Result<Vec<Uuid>> {
    let now = Utc::now();
    let mut rng = StdRng::seed_from_u64(2);
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for i in 0..TOPICS {
        let id = v7_at(now - Duration::days(90), &mut rng);
        ids.push(id);
        rows.push(vec![
            id.into(),
            format!("topic-{i}").into(),
            format!("Topic {i}").into(),
            Value::String(None),
            users[i % users.len()].into(),
            0i32.into(),
            now.into(),
        ]);
    }
    insert(
        db,
        "topics",
        &[
            "id",
            "name",
            "title",
            "description",
            "creator_id",
            "subscriber_count",
            "created_at",
        ],
        rows,
    )
    .await?;
    Ok(ids)
}

async fn seed_follows(
    social_db: &DatabaseConnection,
    feed_db: &DatabaseConnection,
    follows: &HashMap<Uuid, Vec<Uuid>>,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut rng = StdRng::seed_from_u64(3);
    let mut social_rows = Vec::new();
    let mut feed_rows = Vec::new();
    for (reader, authors) in follows {
        for author in authors {
            social_rows.push(vec![
                v7_at(now, &mut rng).into(),
                (*reader).into(),
                (*author).into(),
                "accepted".into(),
                now.into(),
                now.into(),
            ]);
            feed_rows.push(vec![(*reader).into(), (*author).into()]);
        }
    }
    insert(
        social_db,
        "follows",
        &[
            "id",
            "follower_id",
            "followee_id",
            "status",
            "created_at",
            "accepted_at",
        ],
        social_rows,
    )
    .await?;
    insert(
        feed_db,
        "follows",
        &["follower_id", "followee_id"],
        feed_rows,
    )
    .await?;
    Ok(())
}

struct Plan {
    posts: usize,
    comments_per_post: f64,
    post_votes_per_post: f64,
    comment_votes_per_comment: f64,
}

struct GenPost {
    id: Uuid,
    author: Uuid,
    topic: Option<Uuid>,
    created: DateTime<Utc>,
    up: i32,
    down: i32,
    comments: i32,
}

#[derive(Clone)]
struct FeedRow {
    post: Uuid,
    topic: Option<Uuid>,
    score: i32,
    hot: f64,
    controversy: f64,
}

impl GenPost {
    fn feed_row(&self) -> FeedRow {
        let score = self.up - self.down;
        FeedRow {
            post: self.id,
            topic: self.topic,
            score,
            hot: rank::hot(i64::from(score), self.created, Utc::now()),
            controversy: rank::controversy(i64::from(self.up), i64::from(self.down)),
        }
    }
}

struct GenComment {
    id: Uuid,
    post: Uuid,
    parent: Option<usize>,
    author: Uuid,
    path: String,
    depth: i32,
    created: DateTime<Utc>,
    up: i32,
    down: i32,
    replies: i32,
}

struct Batch {
    posts: Vec<GenPost>,
    comments: Vec<GenComment>,
    /// (user, target, kind, value, created)
    votes: Vec<(Uuid, Uuid, &'static str, i16, DateTime<Utc>)>,
}

/// A count with mean `mean` (integer part always, fraction by chance).
fn count(rng: &mut StdRng, mean: f64) -> usize {
    let whole = mean.floor();
    whole as usize + usize::from(rng.gen_bool((mean - whole).clamp(0.0, 1.0)))
}

fn generate_batch(
    rng: &mut StdRng,
    plan: &Plan,
    users: &[Uuid],
    topics: &[Uuid],
    n: usize,
) -> Batch {
    let now = Utc::now();
    let mut batch = Batch {
        posts: Vec::with_capacity(n),
        comments: Vec::new(),
        votes: Vec::new(),
    };
    for _ in 0..n {
        let created = now - Duration::seconds(rng.gen_range(60..30 * 24 * 3600));
        let post = GenPost {
            id: v7_at(created, rng),
            author: users[rng.gen_range(0..users.len())],
            topic: rng
                .gen_bool(0.7)
                .then(|| topics[rng.gen_range(0..topics.len())]),
            created,
            up: 0,
            down: 0,
            comments: 0,
        };
        batch.posts.push(post);
    }
    for pi in 0..batch.posts.len() {
        let (post_id, post_created) = (batch.posts[pi].id, batch.posts[pi].created);
        let first_comment = batch.comments.len();
        for _ in 0..count(rng, plan.comments_per_post) {
            let created = post_created + Duration::seconds(rng.gen_range(1..3600));
            let id = v7_at(created, rng);
            let here = batch.comments.len();
            let parent = (here > first_comment && rng.gen_bool(0.5))
                .then(|| rng.gen_range(first_comment..here));
            let (path, depth) = match parent {
                Some(p) => (
                    format!("{}/{}", batch.comments[p].path, id.simple()),
                    batch.comments[p].depth + 1,
                ),
                None => (id.simple().to_string(), 0),
            };
            if let Some(p) = parent {
                batch.comments[p].replies += 1;
            }
            batch.comments.push(GenComment {
                id,
                post: post_id,
                parent,
                author: users[rng.gen_range(0..users.len())],
                path,
                depth,
                created,
                up: 0,
                down: 0,
                replies: 0,
            });
            batch.posts[pi].comments += 1;
        }
        let mut voters = HashSet::new();
        for _ in 0..count(rng, plan.post_votes_per_post) {
            let user = users[rng.gen_range(0..users.len())];
            if !voters.insert(user) {
                continue;
            }
            let value: i16 = if rng.gen_bool(0.7) { 1 } else { -1 };
            if value == 1 {
                batch.posts[pi].up += 1
            } else {
                batch.posts[pi].down += 1
            }
            batch
                .votes
                .push((user, post_id, "post", value, post_created));
        }
    }
    for ci in 0..batch.comments.len() {
        let mut voters = HashSet::new();
        for _ in 0..count(rng, plan.comment_votes_per_comment) {
            let user = users[rng.gen_range(0..users.len())];
            if !voters.insert(user) {
                continue;
            }
            let value: i16 = if rng.gen_bool(0.7) { 1 } else { -1 };
            if value == 1 {
                batch.comments[ci].up += 1
            } else {
                batch.comments[ci].down += 1
            }
            let c = &batch.comments[ci];
            batch.votes.push((user, c.id, "comment", value, c.created));
        }
    }
    batch
}

async fn write_batch(
    posts_db: &DatabaseConnection,
    feed_db: &DatabaseConnection,
    batch: &Batch,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let txn = posts_db.begin().await?;
    let post_rows = batch
        .posts
        .iter()
        .map(|p| {
            let f = p.feed_row();
            vec![
                p.id.into(),
                p.author.into(),
                p.topic.into(),
                format!("Post {}", p.id.simple()).into(),
                "A **seeded** post body.".into(),
                "[]".into(),
                f.score.into(),
                p.up.into(),
                p.down.into(),
                p.comments.into(),
                f.hot.into(),
                f.controversy.into(),
                p.created.into(),
                p.created.into(),
                Value::ChronoDateTimeUtc(None),
                Value::Uuid(None),
                Value::String(None),
            ]
        })
        .collect();
    insert(
        &txn,
        "posts",
        &[
            "id",
            "author_id",
            "topic_id",
            "title",
            "body",
            "tags",
            "score",
            "upvotes",
            "downvotes",
            "comment_count",
            "hot_rank",
            "controversy_rank",
            "created_at",
            "updated_at",
            "deleted_at",
            "deleted_by",
            "delete_reason",
        ],
        post_rows,
    )
    .await?;
    let comment_rows = batch
        .comments
        .iter()
        .map(|c| {
            let score = c.up - c.down;
            vec![
                c.id.into(),
                c.post.into(),
                c.parent.map(|p| batch.comments[p].id).into(),
                c.author.into(),
                "A seeded comment.".into(),
                c.path.clone().into(),
                c.depth.into(),
                score.into(),
                c.up.into(),
                c.down.into(),
                c.replies.into(),
                rank::hot(i64::from(score), c.created, now).into(),
                c.created.into(),
                c.created.into(),
                Value::ChronoDateTimeUtc(None),
            ]
        })
        .collect();
    insert(
        &txn,
        "comments",
        &[
            "id",
            "post_id",
            "parent_id",
            "author_id",
            "body",
            "path",
            "depth",
            "score",
            "upvotes",
            "downvotes",
            "reply_count",
            "hot_rank",
            "created_at",
            "updated_at",
            "deleted_at",
        ],
        comment_rows,
    )
    .await?;
    let vote_rows = batch
        .votes
        .iter()
        .map(|(user, target, kind, value, at)| {
            vec![
                (*user).into(),
                (*target).into(),
                (*kind).into(),
                (*value).into(),
                (*at).into(),
                (*at).into(),
            ]
        })
        .collect();
    insert(
        &txn,
        "votes",
        &[
            "user_id",
            "target_id",
            "target_kind",
            "value",
            "created_at",
            "updated_at",
        ],
        vote_rows,
    )
    .await?;
    txn.commit().await?;

    let txn = feed_db.begin().await?;
    let feed_rows = batch
        .posts
        .iter()
        .map(|p| {
            let f = p.feed_row();
            vec![
                p.id.into(),
                p.author.into(),
                p.topic.into(),
                p.created.into(),
                f.score.into(),
                f.hot.into(),
                f.controversy.into(),
            ]
        })
        .collect();
    insert(
        &txn,
        "feed_posts",
        &[
            "post_id",
            "author_id",
            "topic_id",
            "created_at",
            "score",
            "hot_rank",
            "controversy_rank",
        ],
        feed_rows,
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

async fn seed_timelines(
    feed_db: &DatabaseConnection,
    follows: &HashMap<Uuid, Vec<Uuid>>,
    sources: &HashMap<Uuid, Vec<FeedRow>>,
) -> anyhow::Result<usize> {
    let mut rows = Vec::new();
    for (reader, authors) in follows {
        for author in authors {
            for f in sources.get(author).into_iter().flatten() {
                rows.push(vec![
                    (*reader).into(),
                    f.post.into(),
                    (*author).into(),
                    f.topic.into(),
                    f.score.into(),
                    f.hot.into(),
                    f.controversy.into(),
                ]);
            }
        }
    }
    let n = rows.len();
    let txn = feed_db.begin().await?;
    insert(
        &txn,
        "timeline",
        &[
            "user_id",
            "post_id",
            "author_id",
            "topic_id",
            "score",
            "hot_rank",
            "controversy_rank",
        ],
        rows,
    )
    .await?;
    txn.commit().await?;
    Ok(n)
}
