//! The digest mail: at most one per user per interval, listing the unread notifications that changed since
//! the last one and are at least an interval old (time to read them in the app first — what was read is
//! never mailed), only kinds whose EMAIL channel is on, only to an address its owner proved. Each kind
//! listed has a signed unsubscribe link that turns its EMAIL channel off; the mail carries the link for all
//! of them as RFC 8058 one-click `List-Unsubscribe`.
//!
//! A round's digests are claimed before they are sent (their notifications marked mailed, the users' last
//! digest set, in one transaction that matches only rows still unmailed and unread), so two instances never
//! mail the same thing; then mailed a few at a time; a send that fails gives its claim back for the next round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use parley_kit::events::contracts::NotificationSent;
use parley_kit::events::{append, Events};
use parley_kit::mail::Mailer;
use parley_kit::signed::Signer;
use parley_kit::store::begin_write;
use rand::RngCore;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::error::{NotificationsError, Result};
use crate::kinds::{NotificationChannel, NotificationKind};
use crate::notify;
use crate::preferences::{self, Setting};
use crate::push::load_or_create_secret;
use crate::store::{notification, recipient};

/// Notifications looked at per round.
const BATCH: u64 = 500;
/// The path (under the public origin, forwarded by the router) of unsubscribe links.
pub const UNSUBSCRIBE_PATH: &str = "/notifications/unsubscribe";

/// Signs and reads unsubscribe links: `<user>:<KIND>,<KIND>` signed ([`parley_kit::signed`]). The key is
/// made once and kept in the store.
pub struct Links {
    signer: Signer,
    public_url: String,
}

impl Links {
    pub async fn load_or_create(db: &DatabaseConnection, public_url: &str) -> Result<Self> {
        let mut fresh = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut fresh);
        let stored =
            load_or_create_secret(db, "unsubscribe", URL_SAFE_NO_PAD.encode(fresh)).await?;
        let key = URL_SAFE_NO_PAD
            .decode(stored)
            .map_err(|e| NotificationsError::Internal(format!("stored link key: {e}")))?;
        Ok(Self::new(key, public_url))
    }

    pub fn new(key: Vec<u8>, public_url: &str) -> Self {
        Self {
            signer: Signer::new(key),
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    /// The link that turns `kinds`' mail off for `user`.
    pub fn unsubscribe_url(&self, user: Uuid, kinds: &[NotificationKind]) -> String {
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let token = self.signer.sign(&format!("{user}:{}", names.join(",")));
        format!("{}{UNSUBSCRIBE_PATH}?token={token}", self.public_url)
    }

    /// The user and kinds a token names, if we signed it.
    pub fn read(&self, token: &str) -> Result<(Uuid, Vec<NotificationKind>)> {
        let payload = self.signer.open(token).ok_or(NotificationsError::BadLink)?;
        let (user, kinds) = payload.split_once(':').ok_or(NotificationsError::BadLink)?;
        let user = Uuid::parse_str(user).map_err(|_| NotificationsError::BadLink)?;
        let kinds = kinds
            .split(',')
            .map(NotificationKind::parse)
            .collect::<Option<Vec<_>>>()
            .ok_or(NotificationsError::BadLink)?;
        Ok((user, kinds))
    }
}

/// Turns EMAIL off for each of `kinds` (what an unsubscribe link does).
pub async fn unsubscribe(
    db: &DatabaseConnection,
    user: Uuid,
    kinds: &[NotificationKind],
) -> Result<()> {
    for kind in kinds {
        let setting = Setting {
            kind: *kind,
            channel: NotificationChannel::Email,
            enabled: false,
        };
        preferences::set(db, user, setting).await?;
    }
    Ok(())
}

/// What the digest task needs.
pub struct Digests {
    pub db: DatabaseConnection,
    pub events: Events,
    pub mailer: Mailer,
    pub links: Arc<Links>,
    pub interval: chrono::Duration,
}

/// Sends digests, forever: every quarter interval (1 s to 1 min).
pub async fn run(digests: Digests) {
    let tick = (digests.interval.num_milliseconds() / 4).clamp(1000, 60_000) as u64;
    loop {
        if let Err(e) = digests.send_due().await {
            tracing::warn!(error = %e, "sending digests failed");
        }
        tokio::time::sleep(Duration::from_millis(tick)).await;
    }
}

/// One digest, claimed and ready to send.
struct Digest {
    user: Uuid,
    address: String,
    subject: String,
    body: String,
    unsubscribe: String,
    ids: Vec<Uuid>,
    last: Option<DateTime<Utc>>,
}

/// Digests sent at once (one SMTP connection each, from lettre's pool).
pub const CONCURRENT_SENDS: usize = 8;

impl Digests {
    /// Sends every digest due now; returns how many mails went. The round is claimed in one transaction,
    /// mailed [`CONCURRENT_SENDS`] at a time, and its `NotificationSent` events written in one more.
    pub async fn send_due(&self) -> Result<usize> {
        let now = Utc::now();
        let cutoff = now - self.interval;
        let waiting = notification::Entity::find()
            .filter(notification::Column::ReadAt.is_null())
            .filter(notification::Column::EmailedAt.is_null())
            .filter(notification::Column::UpdatedAt.lte(cutoff))
            // Not those of users mailed within the interval (they wait, and must not crowd out the rest).
            .filter(
                notification::Column::RecipientId.not_in_subquery(
                    Query::select()
                        .column(recipient::Column::UserId)
                        .from(recipient::Entity)
                        .and_where(recipient::Column::LastDigestAt.gt(cutoff))
                        .to_owned(),
                ),
            )
            .order_by_asc(notification::Column::RecipientId)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        let mut by_user: BTreeMap<Uuid, Vec<notification::Model>> = BTreeMap::new();
        for row in waiting {
            by_user.entry(row.recipient_id).or_default().push(row);
        }
        let txn = begin_write(&self.db).await?;
        let mut digests = Vec::new();
        for (user, rows) in by_user {
            if let Some(digest) = self.claim(&txn, user, rows, now).await? {
                digests.push(digest);
            }
        }
        txn.commit().await?;
        let results: Vec<(Digest, bool)> = futures::stream::iter(digests)
            .map(|digest| async move {
                let sent = self
                    .mailer
                    .send_listed(
                        &digest.address,
                        &digest.subject,
                        digest.body.clone(),
                        Some(&digest.unsubscribe),
                    )
                    .await;
                if let Err(e) = &sent {
                    tracing::warn!(error = %e, "digest not sent: retried next round");
                }
                (digest, sent.is_ok())
            })
            .buffer_unordered(CONCURRENT_SENDS)
            .collect()
            .await;
        let txn = begin_write(&self.db).await?;
        let mut sent = 0;
        for (digest, ok) in &results {
            if *ok {
                sent += 1;
                for id in &digest.ids {
                    let event = NotificationSent {
                        notification_id: *id,
                        recipient_id: digest.user,
                        channel: "EMAIL".into(),
                    };
                    append(&txn, &digest.user.to_string(), &event).await?;
                }
            } else {
                release(&txn, digest, now).await?;
            }
        }
        txn.commit().await?;
        if sent > 0 {
            self.events.wake();
        }
        Ok(sent)
    }

    /// Decides `user`'s digest from their waiting `rows` and claims it in `txn`: the rows marked mailed (only
    /// those still unmailed and unread), the user's last digest set. Rows not for mail (the kind's channel is
    /// off, no proven address) are settled too, so they are not looked at again.
    async fn claim(
        &self,
        txn: &DatabaseTransaction,
        user: Uuid,
        rows: Vec<notification::Model>,
        now: DateTime<Utc>,
    ) -> Result<Option<Digest>> {
        let to = recipient::Entity::find_by_id(user).one(txn).await?;
        let mut mailed = Vec::new();
        let mut skipped = Vec::new();
        for row in rows {
            let on = match (
                NotificationKind::parse(&row.kind),
                to.as_ref().and_then(|t| t.email.as_ref()),
            ) {
                (Some(kind), Some(_)) => {
                    preferences::enabled(txn, user, kind, NotificationChannel::Email).await?
                }
                _ => false,
            };
            if on {
                mailed.push(row);
            } else {
                skipped.push(row.id);
            }
        }
        mark_mailed(txn, &skipped, now).await?;
        let (Some(to), false) = (to, mailed.is_empty()) else {
            return Ok(None);
        };
        let Some(address) = to.email.clone() else {
            return Ok(None);
        };
        let ids: Vec<Uuid> = mailed.iter().map(|r| r.id).collect();
        if mark_mailed(txn, &ids, now).await? == 0 {
            return Ok(None);
        }
        recipient::Entity::update_many()
            .col_expr(recipient::Column::LastDigestAt, Expr::value(now))
            .filter(recipient::Column::UserId.eq(user))
            .exec(txn)
            .await?;
        let mut kinds: Vec<NotificationKind> = Vec::new();
        let mut lines = Vec::new();
        for row in &mailed {
            lines.push(format!(
                "- {}",
                notify::describe(txn, row, &notify::actors(row)).await?
            ));
            if let Some(kind) = NotificationKind::parse(&row.kind) {
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        let mut body = format!(
            "Hello {},\n\nWhile you were away:\n\n{}\n\nOpen Parley to see them: {}\n\n",
            to.display_name.as_deref().unwrap_or("there"),
            lines.join("\n"),
            self.links.public_url,
        );
        for kind in &kinds {
            body.push_str(&format!(
                "Stop emails about {}: {}\n",
                kind.as_str().to_lowercase().replace('_', " "),
                self.links.unsubscribe_url(user, &[*kind])
            ));
        }
        let subject = match mailed.len() {
            1 => "1 new notification on Parley".to_string(),
            n => format!("{n} new notifications on Parley"),
        };
        Ok(Some(Digest {
            user,
            address,
            subject,
            body,
            unsubscribe: self.links.unsubscribe_url(user, &kinds),
            ids,
            last: to.last_digest_at,
        }))
    }
}

/// Marks `ids` mailed at `now` (only those still unmailed and unread); how many.
async fn mark_mailed(txn: &DatabaseTransaction, ids: &[Uuid], now: DateTime<Utc>) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(notification::Entity::update_many()
        .col_expr(notification::Column::EmailedAt, Expr::value(now))
        .filter(notification::Column::Id.is_in(ids.iter().copied()))
        .filter(notification::Column::EmailedAt.is_null())
        .filter(notification::Column::ReadAt.is_null())
        .exec(txn)
        .await?
        .rows_affected)
}

/// Gives a failed digest's claim back (the rows it marked, the user's previous last digest).
async fn release(
    txn: &DatabaseTransaction,
    digest: &Digest,
    at: DateTime<Utc>,
) -> std::result::Result<(), DbErr> {
    notification::Entity::update_many()
        .col_expr(
            notification::Column::EmailedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(notification::Column::Id.is_in(digest.ids.iter().copied()))
        .filter(notification::Column::EmailedAt.eq(at))
        .exec(txn)
        .await?;
    recipient::Entity::update_many()
        .col_expr(recipient::Column::LastDigestAt, Expr::value(digest.last))
        .filter(recipient::Column::UserId.eq(digest.user))
        .exec(txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_and_refuse_tampering() {
        let links = Links::new(vec![1; 32], "https://parley.example/");
        let user = Uuid::now_v7();
        let url =
            links.unsubscribe_url(user, &[NotificationKind::Comment, NotificationKind::Reply]);
        assert!(url.starts_with("https://parley.example/notifications/unsubscribe?token="));
        let token = url.split("token=").nth(1).expect("token");
        assert_eq!(
            links.read(token).expect("ours"),
            (
                user,
                vec![NotificationKind::Comment, NotificationKind::Reply]
            )
        );
        let other = Links::new(vec![2; 32], "https://parley.example");
        assert!(other.read(token).is_err());
        let (payload, mac) = token.split_once('.').expect("dot");
        let forged = URL_SAFE_NO_PAD.encode(format!("{}:COMMENT", Uuid::now_v7()));
        assert!(links.read(&format!("{forged}.{mac}")).is_err());
        assert!(links.read(payload).is_err());
        assert!(links.read("").is_err());
    }
}
