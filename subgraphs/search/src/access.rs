//! What a caller may find, decided at query time from the store as it is now (DESIGN §4), as a tantivy
//! query every search is intersected with, so pages stay whole and counts honest:
//!
//! - users, posts and comments: not across a block either way (a comment's post's author included); a
//!   document gated by private accounts only for those accounts themselves, their approved followers and
//!   staff ([`crate::index`] indexes the gates);
//! - messages: only in the chats the caller is a member of now (chat's rule: whoever left or was removed
//!   reads nothing of the chat);
//! - deleted things are not in the index at all.
//!
//! A comment gated twice (a private author on another private author's post) needs both followed: the one
//! case a term query cannot say, checked on the hit itself ([`Access::passes`]).

use parley_kit::audience::{follow, Viewer};
use parley_kit::blocks::block;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;
use uuid::Uuid;

use crate::documents::Kind;
use crate::error::Result;
use crate::index::{Fields, PUBLIC};
use crate::store::chat_member;

/// The caller's reach.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub staff: bool,
    /// Users either side of a block with the caller.
    pub blocked: Vec<Uuid>,
    /// The private accounts whose gated documents the caller passes: themself and whom they follow.
    pub followed: Vec<Uuid>,
    /// The chats the caller is a member of.
    pub chats: Vec<Uuid>,
}

impl Access {
    pub async fn of(db: &DatabaseConnection, viewer: &Viewer) -> Result<Access> {
        let Some(me) = viewer.id else {
            return Ok(Access {
                staff: viewer.staff,
                ..Access::default()
            });
        };
        let mut blocked: Vec<Uuid> = block::Entity::find()
            .select_only()
            .column(block::Column::BlockedId)
            .filter(block::Column::BlockerId.eq(me))
            .into_tuple()
            .all(db)
            .await?;
        let blockers: Vec<Uuid> = block::Entity::find()
            .select_only()
            .column(block::Column::BlockerId)
            .filter(block::Column::BlockedId.eq(me))
            .into_tuple()
            .all(db)
            .await?;
        blocked.extend(blockers);
        let mut followed: Vec<Uuid> = follow::Entity::find()
            .select_only()
            .column(follow::Column::FolloweeId)
            .filter(follow::Column::FollowerId.eq(me))
            .into_tuple()
            .all(db)
            .await?;
        followed.push(me);
        let chats: Vec<Uuid> = chat_member::Entity::find()
            .select_only()
            .column(chat_member::Column::ChatId)
            .filter(chat_member::Column::UserId.eq(me))
            .into_tuple()
            .all(db)
            .await?;
        Ok(Access {
            staff: viewer.staff,
            blocked,
            followed,
            chats,
        })
    }

    /// The documents the caller may find.
    pub fn query(&self, f: &Fields) -> Box<dyn Query> {
        let ids = |field, ids: &[Uuid]| -> Box<dyn Query> {
            Box::new(TermSetQuery::new(
                ids.iter()
                    .map(|id| Term::from_field_text(field, &id.to_string())),
            ))
        };
        let kinds = |kinds: &[Kind]| -> Box<dyn Query> {
            Box::new(TermSetQuery::new(
                kinds
                    .iter()
                    .map(|k| Term::from_field_text(f.kind, k.name())),
            ))
        };
        // Users, posts and comments.
        let mut content: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, kinds(&[Kind::User, Kind::Post, Kind::Comment]))];
        if !self.staff {
            let mut gates: Vec<(Occur, Box<dyn Query>)> = vec![(
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.gate, PUBLIC),
                    IndexRecordOption::Basic,
                )),
            )];
            if !self.followed.is_empty() {
                gates.push((Occur::Should, ids(f.gate, &self.followed)));
            }
            content.push((Occur::Must, Box::new(BooleanQuery::new(gates))));
        }
        if !self.blocked.is_empty() {
            content.push((Occur::MustNot, ids(f.author, &self.blocked)));
            content.push((Occur::MustNot, ids(f.post_author, &self.blocked)));
        }
        let mut reach: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Should, Box::new(BooleanQuery::new(content)))];
        // Messages of the caller's chats.
        if !self.chats.is_empty() {
            reach.push((
                Occur::Should,
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, kinds(&[Kind::Message])),
                    (Occur::Must, ids(f.chat, &self.chats)),
                ])),
            ));
        }
        Box::new(BooleanQuery::new(reach))
    }

    /// Whether a hit with these gates passes (more than one gate: every one must be followed).
    pub fn passes(&self, gates: &[String]) -> bool {
        if self.staff || gates.len() < 2 {
            return true;
        }
        gates
            .iter()
            .all(|gate| Uuid::parse_str(gate).is_ok_and(|id| self.followed.contains(&id)))
    }
}
