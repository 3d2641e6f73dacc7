//! `GET /internal/revoked-sessions?since=<ms>` (router key required): the sessions signed out (logout,
//! password change or reset, refresh-token reuse) whose access tokens may still be alive, for every
//! subgraph's verifier to refuse (`parley_kit::revocation`). A session's tokens were all issued before its
//! revocation, so each lives at most [`ACCESS_TOKEN_TTL`] past it.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use parley_kit::revocation::{RevokedSession, RevokedSessions};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde::Deserialize;
use uuid::Uuid;

use crate::keys::ACCESS_TOKEN_TTL;
use crate::store::session;

#[derive(Deserialize)]
pub struct Since {
    /// Unix milliseconds: revocations from then on (and never older than a token lives).
    #[serde(default)]
    since: i64,
}

pub async fn revoked(
    State(db): State<DatabaseConnection>,
    Query(Since { since }): Query<Since>,
) -> Result<Json<RevokedSessions>, StatusCode> {
    let now = Utc::now();
    let oldest = now - ACCESS_TOKEN_TTL;
    let from = DateTime::<Utc>::from_timestamp_millis(since)
        .filter(|from| *from > oldest)
        .unwrap_or(oldest);
    let rows: Vec<(Uuid, DateTime<Utc>)> = session::Entity::find()
        .select_only()
        .column(session::Column::FamilyId)
        .column(session::Column::RevokedAt)
        .filter(session::Column::RevokedAt.gte(from))
        .into_tuple()
        .all(&db)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "revoked sessions read failed");
            StatusCode::SERVICE_UNAVAILABLE
        })?;
    let mut sessions: Vec<RevokedSession> = rows
        .into_iter()
        .map(|(sid, at)| RevokedSession {
            sid,
            until: (at + ACCESS_TOKEN_TTL).timestamp() + 5,
        })
        .collect();
    sessions.sort_by_key(|s| s.sid);
    sessions.dedup_by_key(|s| s.sid);
    Ok(Json(RevokedSessions {
        sessions,
        now: now.timestamp_millis(),
    }))
}
