//! What the assistant answers, and what it reads first. It answers people's text messages: every one in a
//! direct chat; in a group only one that mentions it (`@assistant`) or replies to it. It reads the system
//! prompt and then that chat's latest messages it may see — sent since it joined, not deleted, text — as
//! many as fit the message and token budgets, oldest first: nothing of any other chat, nothing from before
//! it was added to a group.

use parley_kit::assistant::USER_ID;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::completions::{estimate_tokens, Prompt};
use crate::error::Result;
use crate::store::message::Kind;
use crate::store::{chat, known_user, message};

/// Whether `said` in `chat` is for the assistant (called as `nickname`).
pub async fn addressed<C: ConnectionTrait>(
    db: &C,
    chat: &chat::Model,
    said: &message::Model,
    nickname: &str,
) -> Result<bool> {
    if said.author_id == USER_ID || said.kind != Kind::Text || said.deleted_at.is_some() {
        return Ok(false);
    }
    if chat.kind == chat::Kind::Direct {
        return Ok(true);
    }
    let text = said.text.as_deref().unwrap_or_default();
    let nickname = nickname.to_lowercase();
    if parley_kit::mentions::nicknames(text).contains(&nickname) {
        return Ok(true);
    }
    let Some(reply_to) = said.reply_to_id else {
        return Ok(false);
    };
    Ok(message::Entity::find_by_id(reply_to)
        .one(db)
        .await?
        .is_some_and(|m| m.author_id == USER_ID && m.chat_id == chat.id))
}

/// The budgets of what it reads.
pub struct Budget {
    pub messages: u64,
    pub tokens: u64,
}

/// The prompt for an answer in `chat_id`, where the assistant joined after message `joined_seq`.
pub async fn prompt<C: ConnectionTrait>(
    db: &C,
    chat_id: Uuid,
    joined_seq: i64,
    system: &str,
    budget: &Budget,
) -> Result<Vec<Prompt>> {
    let latest = message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .filter(message::Column::Seq.gt(joined_seq))
        .filter(message::Column::Kind.eq(Kind::Text))
        .filter(message::Column::DeletedAt.is_null())
        .order_by_desc(message::Column::Seq)
        .limit(budget.messages)
        .all(db)
        .await?;
    let authors: Vec<Uuid> = latest.iter().map(|m| m.author_id).collect();
    let names: std::collections::HashMap<Uuid, String> = known_user::Entity::find()
        .filter(known_user::Column::UserId.is_in(authors))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|u| Some((u.user_id, u.nickname?)))
        .collect();
    let mut left = budget.tokens as i64 - estimate_tokens(system);
    let mut kept = Vec::new();
    for m in latest {
        let text = m.text.unwrap_or_default();
        let turn = if m.author_id == USER_ID {
            Prompt {
                role: "assistant",
                content: text,
            }
        } else {
            // Who said it: a group has many people in it.
            let name = names.get(&m.author_id).map_or("someone", String::as_str);
            Prompt {
                role: "user",
                content: format!("{name}: {text}"),
            }
        };
        left -= estimate_tokens(&turn.content);
        // The newest message is always read, however long.
        if left < 0 && !kept.is_empty() {
            break;
        }
        kept.push(turn);
    }
    kept.push(Prompt {
        role: "system",
        content: system.to_string(),
    });
    kept.reverse();
    Ok(kept)
}
