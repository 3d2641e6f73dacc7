//! What each user may ask of the assistant: a few questions a minute (held in memory, per instance), and a
//! daily token budget (in the store: what each answer cost, per user and UTC day).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ConnectionTrait, EntityTrait, ExprTrait, Set};
use uuid::Uuid;

use crate::error::Result;
use crate::store::assistant_usage;

/// Users remembered at most (the oldest windows go first): a flood of new users cannot grow it.
const MAX_USERS: usize = 100_000;

/// Questions per user per minute.
pub struct Limiter {
    per_minute: usize,
    asked: Mutex<HashMap<Uuid, VecDeque<Instant>>>,
}

impl Limiter {
    pub fn new(per_minute: u64) -> Self {
        Self {
            per_minute: per_minute as usize,
            asked: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `user` may ask now (counted if so).
    pub fn allow(&self, user: Uuid) -> bool {
        let now = Instant::now();
        let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        if asked.len() >= MAX_USERS {
            asked.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60))
            });
        }
        let times = asked.entry(user).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            times.pop_front();
        }
        if times.len() >= self.per_minute {
            return false;
        }
        times.push_back(now);
        true
    }
}

/// Today, as usage counts days.
pub fn today() -> i64 {
    Utc::now().timestamp().div_euclid(86_400)
}

/// Tokens `user` spent on `day`.
pub async fn spent<C: ConnectionTrait>(db: &C, user: Uuid, day: i64) -> Result<i64> {
    Ok(assistant_usage::Entity::find_by_id((user, day))
        .one(db)
        .await?
        .map_or(0, |u| u.tokens))
}

/// Adds one answer costing `tokens` to `user`'s `day`.
pub async fn record<C: ConnectionTrait>(db: &C, user: Uuid, day: i64, tokens: i64) -> Result<()> {
    assistant_usage::Entity::insert(assistant_usage::ActiveModel {
        user_id: Set(user),
        day: Set(day),
        requests: Set(1),
        tokens: Set(tokens),
    })
    .on_conflict(
        OnConflict::columns([
            assistant_usage::Column::UserId,
            assistant_usage::Column::Day,
        ])
        .value(
            assistant_usage::Column::Requests,
            Expr::col((assistant_usage::Entity, assistant_usage::Column::Requests)).add(1),
        )
        .value(
            assistant_usage::Column::Tokens,
            Expr::col((assistant_usage::Entity, assistant_usage::Column::Tokens)).add(tokens),
        )
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
