//! Billing's time: the wall clock, or — with the test clock on — the wall clock plus an offset kept in the
//! store (so every instance agrees), moved ahead by `POST /billing/test-clock` as Stripe's test clocks are.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, Set};

use crate::store::clock;

#[derive(Clone)]
pub struct Clock {
    db: DatabaseConnection,
    test: bool,
}

impl Clock {
    pub fn new(db: DatabaseConnection, test: bool) -> Self {
        Self { db, test }
    }

    pub async fn now(&self) -> Result<DateTime<Utc>, DbErr> {
        if !self.test {
            return Ok(Utc::now());
        }
        let offset = clock::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .map_or(0, |c| c.offset_secs);
        Ok(Utc::now() + Duration::seconds(offset))
    }

    /// Moves the test clock ahead by `secs`; returns the new time.
    pub async fn advance(&self, secs: i64) -> Result<DateTime<Utc>, DbErr> {
        let offset = clock::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .map_or(0, |c| c.offset_secs);
        clock::Entity::update(clock::ActiveModel {
            id: Set(1),
            offset_secs: Set(offset.saturating_add(secs.max(0))),
        })
        .exec(&self.db)
        .await?;
        self.now().await
    }
}
