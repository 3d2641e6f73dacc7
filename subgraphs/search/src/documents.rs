//! The documents the index is built from, kept in the store: written by the projection from events, each
//! change numbered by one clock so the index can tail them in order ([`crate::index`]).
//!
//! The clock is one row bumped with `UPDATE … RETURNING` inside the writing transaction: its row lock makes
//! concurrent writers commit in the order of their numbers, so a reader that saw change `n` has seen every
//! change below it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
    Statement,
};
use uuid::Uuid;

use crate::store::document;

/// What a document is; its name is stored and indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    User,
    Post,
    Comment,
    Message,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::User, Kind::Post, Kind::Comment, Kind::Message];

    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Post => "post",
            Kind::Comment => "comment",
            Kind::Message => "message",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// What the title and body fields are called in highlights for this kind.
    pub fn field_names(self) -> (&'static str, &'static str) {
        match self {
            Kind::User => ("nickname", "about"),
            _ => ("title", "body"),
        }
    }
}

/// A document as an event describes it.
#[derive(Debug, Clone)]
pub struct Doc {
    pub id: Uuid,
    pub kind: Kind,
    pub author_id: Uuid,
    pub post_id: Option<Uuid>,
    pub post_author_id: Option<Uuid>,
    pub chat_id: Option<Uuid>,
    pub topic: Option<String>,
    pub tags: Vec<String>,
    pub title: String,
    pub body: String,
    pub score: i64,
    pub created_at: DateTime<Utc>,
}

/// The next change number (locks the clock until the transaction ends).
pub async fn tick(txn: &DatabaseTransaction) -> Result<i64, DbErr> {
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(Statement::from_string(
            backend,
            "UPDATE search_clock SET change = change + 1 WHERE id = 1 RETURNING change",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("search_clock".into()))?;
    row.try_get_by_index::<i64>(0)
}

/// The last change number handed out.
pub async fn last_change<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT change FROM search_clock WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("search_clock".into()))?;
    row.try_get_by_index::<i64>(0)
}

/// Writes `doc` as it is now (alive again if it was deleted: an edit of a live thing).
pub async fn put(txn: &DatabaseTransaction, doc: Doc) -> Result<(), DbErr> {
    let change = tick(txn).await?;
    let tags = serde_json::to_string(&doc.tags).unwrap_or_else(|_| "[]".into());
    document::Entity::insert(document::ActiveModel {
        id: Set(doc.id),
        kind: Set(doc.kind.name().into()),
        author_id: Set(doc.author_id),
        post_id: Set(doc.post_id),
        post_author_id: Set(doc.post_author_id),
        chat_id: Set(doc.chat_id),
        topic: Set(doc.topic),
        tags: Set(tags),
        title: Set(doc.title),
        body: Set(doc.body),
        score: Set(doc.score),
        created_at: Set(doc.created_at),
        deleted: Set(false),
        change: Set(change),
    })
    .on_conflict(
        OnConflict::column(document::Column::Id)
            .update_columns([
                document::Column::Topic,
                document::Column::Tags,
                document::Column::Title,
                document::Column::Body,
                document::Column::Score,
                document::Column::Deleted,
                document::Column::Change,
            ])
            .to_owned(),
    )
    .exec(txn)
    .await?;
    Ok(())
}

/// A document's score moved (a vote); nothing if it is not known.
pub async fn rescore(txn: &DatabaseTransaction, id: Uuid, score: i64) -> Result<(), DbErr> {
    touch(
        txn,
        document::Column::Id.eq(id),
        Some((document::Column::Score, Expr::value(score))),
    )
    .await
}

/// Tombstones the documents `condition` selects.
pub async fn delete_where(
    txn: &DatabaseTransaction,
    condition: sea_orm::sea_query::SimpleExpr,
) -> Result<(), DbErr> {
    touch(
        txn,
        condition,
        Some((document::Column::Deleted, Expr::value(true))),
    )
    .await
}

/// Gives the documents `condition` selects a new change number, so the index writes them again (their
/// visibility moved: an author went private or public).
pub async fn reindex_where(
    txn: &DatabaseTransaction,
    condition: sea_orm::sea_query::SimpleExpr,
) -> Result<(), DbErr> {
    touch(txn, condition, None).await
}

async fn touch(
    txn: &DatabaseTransaction,
    condition: sea_orm::sea_query::SimpleExpr,
    set: Option<(document::Column, sea_orm::sea_query::SimpleExpr)>,
) -> Result<(), DbErr> {
    let change = tick(txn).await?;
    let mut update = document::Entity::update_many()
        .col_expr(document::Column::Change, Expr::value(change))
        .filter(condition);
    if let Some((column, value)) = set {
        update = update.col_expr(column, value);
    }
    update.exec(txn).await?;
    Ok(())
}

/// The topic of a known post (a comment is filed under its post's topic), and whether the post is deleted.
pub async fn post_of<C: ConnectionTrait>(
    db: &C,
    post_id: Uuid,
) -> Result<Option<(Option<String>, bool)>, DbErr> {
    Ok(document::Entity::find_by_id(post_id)
        .one(db)
        .await?
        .map(|post| (post.topic, post.deleted)))
}
