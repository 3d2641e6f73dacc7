//! Web Push (RFC 8030): browsers and devices register a subscription (the Push API's endpoint and keys); each
//! notification change queues a job per subscription ([`crate::notify`]); the worker sends it — the payload
//! encrypted to the subscription's keys (RFC 8291, aes128gcm) and signed with our VAPID key (RFC 8292)
//! (`web-push-native` encrypts; the VAPID header is ours, see [`Vapid::authorization`]) — with a TTL and an
//! urgency. A 404 or 410 from the push service means the
//! subscription is gone: it is removed. A 429 or 5xx is retried with backoff (honouring `Retry-After`).
//!
//! The endpoint is a URL a client gives us and we then POST to: it must be HTTPS on a public host, so the
//! subgraph cannot be aimed at the internal network (tests' loopback push service is allowed by
//! `PARLEY_PUSH_ALLOW_PRIVATE`). Redirects are not followed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use parley_kit::events::contracts::NotificationSent;
use parley_kit::events::{append, Events};
use parley_kit::store::begin_write;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;
use web_push_native::jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use web_push_native::jwt_simple::claims::Claims;
use web_push_native::jwt_simple::prelude::Duration as JwtDuration;
use web_push_native::{p256, Auth, WebPushBuilder};

use crate::error::{invalid, NotificationsError, Result};
use crate::kinds::NotificationKind;
use crate::notify;
use crate::store::{notification, push_job, push_subscription, secret};

/// The longest endpoint accepted (browsers' are a few hundred bytes).
pub const MAX_ENDPOINT: usize = 1024;
/// Subscriptions one user keeps (browsers and devices); registering more drops the oldest.
pub const MAX_SUBSCRIPTIONS: u64 = 20;
/// Sends of one push before it is given up.
const MAX_ATTEMPTS: i32 = 5;
/// How long a push service may keep an undelivered push.
const TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// A claimed job is not taken by another instance for this long.
const CLAIM: chrono::Duration = chrono::Duration::seconds(60);

/// The application server's VAPID key pair, made once and kept in the store (every instance signs with it;
/// browsers subscribed with its public half).
pub struct Vapid {
    pub key: ES256KeyPair,
    /// The uncompressed public point, base64url: what `pushPublicKey` gives clients for
    /// `pushManager.subscribe({applicationServerKey})`.
    pub public_key: String,
}

impl Vapid {
    pub async fn load_or_create(db: &DatabaseConnection) -> Result<Self> {
        let fresh = URL_SAFE_NO_PAD.encode(ES256KeyPair::generate().to_bytes());
        let stored = load_or_create_secret(db, "vapid", fresh).await?;
        let bytes = URL_SAFE_NO_PAD
            .decode(stored)
            .map_err(|e| NotificationsError::Internal(format!("stored VAPID key: {e}")))?;
        let key = ES256KeyPair::from_bytes(&bytes)
            .map_err(|e| NotificationsError::Internal(format!("stored VAPID key: {e}")))?;
        let public_key =
            URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
        Ok(Self { key, public_key })
    }
}

impl Vapid {
    /// The `Authorization: vapid t=<JWT>, k=<public key>` header for a push to `endpoint` (RFC 8292): an
    /// ES256 JWT whose `aud` is the endpoint's origin, `exp` 12 h ahead (at most 24 h), `sub` our contact.
    /// Made here rather than by `web-push-native`'s `with_vapid`, whose `aud` leaves out the port (a push
    /// service on a non-default port would refuse it).
    pub fn authorization(&self, endpoint: &str, subject: &str) -> Result<String> {
        let origin = reqwest::Url::parse(endpoint)
            .map_err(|_| invalid("endpoint: not a URL"))?
            .origin()
            .ascii_serialization();
        let claims = Claims::create(JwtDuration::from_hours(12))
            .with_audience(origin)
            .with_subject(subject);
        let token = self
            .key
            .sign(claims)
            .map_err(|e| NotificationsError::Internal(format!("VAPID signature: {e}")))?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }
}

/// The secret called `name`: the stored one, or `fresh` stored now (the first instance to start wins).
pub async fn load_or_create_secret(
    db: &DatabaseConnection,
    name: &str,
    fresh: String,
) -> Result<String> {
    secret::Entity::insert(secret::ActiveModel {
        name: Set(name.to_string()),
        value: Set(fresh),
    })
    .on_conflict_do_nothing_on([secret::Column::Name])
    .exec(db)
    .await?;
    secret::Entity::find_by_id(name.to_string())
        .one(db)
        .await?
        .map(|s| s.value)
        .ok_or_else(|| NotificationsError::Internal(format!("secret {name} missing")))
}

/// Which endpoints are accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointRule {
    pub allow_private: bool,
}

impl EndpointRule {
    /// `endpoint` if it is a URL we may POST to.
    pub fn check(&self, endpoint: &str) -> Result<reqwest::Url> {
        if endpoint.len() > MAX_ENDPOINT {
            return Err(invalid(format!("endpoint: at most {MAX_ENDPOINT} bytes")));
        }
        let url = reqwest::Url::parse(endpoint).map_err(|_| invalid("endpoint: not a URL"))?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        if self.allow_private {
            return match url.scheme() {
                "https" | "http" if !host.is_empty() => Ok(url),
                _ => Err(invalid("endpoint: an http(s) URL")),
            };
        }
        if url.scheme() != "https" || host.is_empty() || !url.username().is_empty() {
            return Err(invalid("endpoint: an https URL of a push service"));
        }
        let private = match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => {
                ip.is_private()
                    || ip.is_loopback()
                    || ip.is_link_local()
                    || ip.is_unspecified()
                    || ip.is_broadcast()
                    || ip.is_documentation()
                    || ip.octets()[0] == 100 && (64..128).contains(&ip.octets()[1])
            }
            Ok(IpAddr::V6(ip)) => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || (ip.segments()[0] & 0xfe00) == 0xfc00
                    || (ip.segments()[0] & 0xffc0) == 0xfe80
                    || ip.to_ipv4_mapped().is_some()
            }
            Err(_) => host == "localhost" || host.ends_with(".localhost") || !host.contains('.'),
        };
        if private {
            return Err(invalid("endpoint: not on a private or local address"));
        }
        Ok(url)
    }
}

/// A subscription's keys, decoded and checked: a P-256 point and a 16-byte secret.
pub fn keys(p256dh: &str, auth: &str) -> Result<(p256::PublicKey, Auth)> {
    if p256dh.len() > 200 || auth.len() > 100 {
        return Err(invalid("p256dh/auth: too long"));
    }
    let point = URL_SAFE_NO_PAD
        .decode(p256dh.trim_end_matches('='))
        .ok()
        .and_then(|bytes| p256::PublicKey::from_sec1_bytes(&bytes).ok())
        .ok_or_else(|| invalid("p256dh: not a base64url P-256 public key"))?;
    let secret = URL_SAFE_NO_PAD
        .decode(auth.trim_end_matches('='))
        .ok()
        .filter(|bytes| bytes.len() == 16)
        .ok_or_else(|| invalid("auth: not a base64url 16-byte secret"))?;
    Ok((point, Auth::clone_from_slice(&secret)))
}

/// Registers (or moves to `user`) a subscription; the oldest beyond [`MAX_SUBSCRIPTIONS`] go.
pub async fn register<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    rule: &EndpointRule,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
) -> Result<()> {
    rule.check(endpoint)?;
    keys(p256dh, auth)?;
    push_subscription::Entity::insert(push_subscription::ActiveModel {
        endpoint: Set(endpoint.to_string()),
        user_id: Set(user),
        p256dh: Set(p256dh.to_string()),
        auth: Set(auth.to_string()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::column(push_subscription::Column::Endpoint)
            .update_columns([
                push_subscription::Column::UserId,
                push_subscription::Column::P256dh,
                push_subscription::Column::Auth,
                push_subscription::Column::CreatedAt,
            ])
            .to_owned(),
    )
    .exec(db)
    .await?;
    let mine = push_subscription::Entity::find()
        .filter(push_subscription::Column::UserId.eq(user))
        .count(db)
        .await?;
    if mine > MAX_SUBSCRIPTIONS {
        let oldest = push_subscription::Entity::find()
            .filter(push_subscription::Column::UserId.eq(user))
            .order_by_asc(push_subscription::Column::CreatedAt)
            .limit(mine - MAX_SUBSCRIPTIONS)
            .all(db)
            .await?;
        for gone in oldest {
            forget(db, &gone.endpoint).await?;
        }
    }
    Ok(())
}

/// Removes `user`'s subscription at `endpoint`; whether there was one.
pub async fn unregister<C: ConnectionTrait>(db: &C, user: Uuid, endpoint: &str) -> Result<bool> {
    if endpoint.len() > MAX_ENDPOINT {
        return Err(invalid(format!("endpoint: at most {MAX_ENDPOINT} bytes")));
    }
    let owned = push_subscription::Entity::find_by_id(endpoint.to_string())
        .one(db)
        .await?
        .is_some_and(|s| s.user_id == user);
    if owned {
        forget(db, endpoint).await?;
    }
    Ok(owned)
}

/// A subscription and the pushes queued for it.
async fn forget<C: ConnectionTrait>(db: &C, endpoint: &str) -> std::result::Result<(), DbErr> {
    push_job::Entity::delete_many()
        .filter(push_job::Column::Endpoint.eq(endpoint))
        .exec(db)
        .await?;
    push_subscription::Entity::delete_by_id(endpoint.to_string())
        .exec(db)
        .await?;
    Ok(())
}

/// Sends queued pushes.
pub struct Pusher {
    db: DatabaseConnection,
    events: Events,
    vapid: Arc<Vapid>,
    subject: String,
    http: reqwest::Client,
}

/// What became of one send.
#[derive(Debug, PartialEq)]
enum Outcome {
    Sent,
    /// The subscription is gone (404, 410).
    Gone,
    /// Try again later (429, 5xx, the network), not before `after`.
    Retry {
        after: Option<Duration>,
    },
    /// Refused for good (another 4xx): dropped.
    Refused(u16),
}

impl Pusher {
    pub fn new(
        db: DatabaseConnection,
        events: Events,
        vapid: Arc<Vapid>,
        subject: String,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            db,
            events,
            vapid,
            subject,
            http,
        })
    }

    /// Claims and sends the due jobs; returns how many were handled.
    pub async fn send_due(&self) -> std::result::Result<usize, DbErr> {
        let now = Utc::now();
        let due = push_job::Entity::find()
            .filter(push_job::Column::NextAt.lte(now))
            .order_by_asc(push_job::Column::NextAt)
            .limit(50)
            .all(&self.db)
            .await?;
        let mut handled = 0;
        for job in due {
            // A claim: only the instance whose update matched sends it.
            let claimed = push_job::Entity::update_many()
                .col_expr(push_job::Column::NextAt, Expr::value(now + CLAIM))
                .filter(push_job::Column::Id.eq(job.id))
                .filter(push_job::Column::NextAt.eq(job.next_at))
                .exec(&self.db)
                .await?
                .rows_affected
                == 1;
            if claimed {
                self.handle(job).await?;
                handled += 1;
            }
        }
        Ok(handled)
    }

    async fn handle(&self, job: push_job::Model) -> std::result::Result<(), DbErr> {
        let subscription = push_subscription::Entity::find_by_id(job.endpoint.clone())
            .one(&self.db)
            .await?;
        let row = notification::Entity::find_by_id(job.notification_id)
            .one(&self.db)
            .await?;
        let (Some(subscription), Some(row)) = (subscription, row) else {
            push_job::Entity::delete_by_id(job.id)
                .exec(&self.db)
                .await?;
            return Ok(());
        };
        let outcome = self.send(&subscription, &row).await;
        match outcome {
            Outcome::Sent => {
                let txn = begin_write(&self.db).await?;
                push_job::Entity::delete_by_id(job.id).exec(&txn).await?;
                let sent = NotificationSent {
                    notification_id: row.id,
                    recipient_id: row.recipient_id,
                    channel: "PUSH".into(),
                };
                append(&txn, &row.recipient_id.to_string(), &sent).await?;
                txn.commit().await?;
                self.events.wake();
            }
            Outcome::Gone => {
                tracing::info!("push subscription gone: removed");
                forget(&self.db, &subscription.endpoint).await?;
            }
            Outcome::Refused(status) => {
                tracing::warn!(status, "push refused: dropped");
                push_job::Entity::delete_by_id(job.id)
                    .exec(&self.db)
                    .await?;
            }
            Outcome::Retry { .. } if job.attempts + 1 >= MAX_ATTEMPTS => {
                tracing::warn!("push given up after {MAX_ATTEMPTS} attempts");
                push_job::Entity::delete_by_id(job.id)
                    .exec(&self.db)
                    .await?;
            }
            Outcome::Retry { after } => {
                let backoff = Duration::from_secs(2u64.pow(job.attempts as u32 + 1));
                let wait = after
                    .unwrap_or(backoff)
                    .max(backoff)
                    .min(Duration::from_secs(3600));
                let mut active: push_job::ActiveModel = job.clone().into();
                active.attempts = Set(job.attempts + 1);
                active.next_at =
                    Set(Utc::now() + chrono::Duration::from_std(wait).unwrap_or(CLAIM));
                active.update(&self.db).await?;
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        subscription: &push_subscription::Model,
        row: &notification::Model,
    ) -> Outcome {
        let payload = match payload(&self.db, row).await {
            Ok(payload) => payload,
            Err(_) => return Outcome::Retry { after: None },
        };
        let (Ok(uri), Ok((point, auth))) = (
            subscription.endpoint.parse::<axum::http::Uri>(),
            keys(&subscription.p256dh, &subscription.auth),
        ) else {
            return Outcome::Gone;
        };
        let request = WebPushBuilder::new(uri, point, auth)
            .with_valid_duration(TTL)
            .build(payload);
        let (Ok(request), Ok(authorization)) = (
            request,
            self.vapid
                .authorization(&subscription.endpoint, &self.subject),
        ) else {
            return Outcome::Refused(0);
        };
        let mut outgoing = self
            .http
            .post(subscription.endpoint.as_str())
            .header("Authorization", authorization)
            .header("Urgency", urgency(row));
        for (name, value) in request.headers() {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
        match outgoing.body(request.into_body()).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                match status {
                    200..=299 => Outcome::Sent,
                    404 | 410 => Outcome::Gone,
                    429 | 500..=599 => Outcome::Retry { after: retry_after },
                    other => Outcome::Refused(other),
                }
            }
            Err(_) => Outcome::Retry { after: None },
        }
    }
}

/// Messages and what others said to you are `high` (a phone wakes for them); the rest `normal`.
fn urgency(row: &notification::Model) -> &'static str {
    match NotificationKind::parse(&row.kind) {
        Some(
            NotificationKind::Message
            | NotificationKind::Mention
            | NotificationKind::Reply
            | NotificationKind::ChatInvite,
        ) => "high",
        _ => "normal",
    }
}

/// What a push carries (kept under the 4 KB push services accept): the notification's id, kind, count,
/// its targets and a line of text for the system notification.
async fn payload(
    db: &DatabaseConnection,
    row: &notification::Model,
) -> std::result::Result<Vec<u8>, DbErr> {
    let actors = notify::actors(row);
    let text = notify::describe(db, row, &actors).await?;
    let body = json!({
        "id": row.id,
        "kind": row.kind,
        "count": row.count,
        "actorIds": actors,
        "postId": row.post_id,
        "commentId": row.comment_id,
        "chatId": row.chat_id,
        "messageId": row.message_id,
        "text": text,
    });
    Ok(body.to_string().into_bytes())
}

/// Sends due pushes, forever.
pub async fn run(pusher: Pusher) {
    loop {
        match pusher.send_due().await {
            Ok(0) => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "sending pushes failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_public_https_unless_allowed() {
        let strict = EndpointRule::default();
        assert!(strict
            .check("https://fcm.googleapis.com/fcm/send/abc")
            .is_ok());
        for bad in [
            "http://push.example.com/x",
            "https://127.0.0.1/x",
            "https://10.0.0.8/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://localhost/x",
            "https://internal/x",
            "https://user@push.example.com/x",
            "ftp://push.example.com/x",
            "not a url",
        ] {
            assert!(strict.check(bad).is_err(), "{bad}");
        }
        assert!(strict
            .check(&format!("https://a.com/{}", "x".repeat(MAX_ENDPOINT)))
            .is_err());
        let tests = EndpointRule {
            allow_private: true,
        };
        assert!(tests.check("http://127.0.0.1:9/push").is_ok());
    }

    #[test]
    fn keys_must_be_a_point_and_sixteen_bytes() {
        let secret = p256::SecretKey::random(&mut rand_core_compat());
        let point = URL_SAFE_NO_PAD.encode(
            p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                &secret.public_key(),
                false,
            )
            .as_bytes(),
        );
        assert!(keys(&point, &URL_SAFE_NO_PAD.encode([7u8; 16])).is_ok());
        assert!(keys(&point, &URL_SAFE_NO_PAD.encode([7u8; 15])).is_err());
        assert!(keys("AAAA", &URL_SAFE_NO_PAD.encode([7u8; 16])).is_err());
    }

    fn rand_core_compat() -> p256::elliptic_curve::rand_core::OsRng {
        p256::elliptic_curve::rand_core::OsRng
    }
}
