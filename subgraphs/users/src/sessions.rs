//! `GET /internal/revoked-sessions?since=<ms>` (router key required): the sessions signed out (logout,
//! password change or reset, refresh-token reuse) whose access tokens may still be alive, for every
//! subgraph's verifier to refuse (`parley_kit::revocation`). A session's tokens were all issued before its
//! revocation, so each lives at most [`ACCESS_TOKEN_TTL`] past it. And `POST /internal/live-token`, the
//! router's live front's token ([`live_token`]).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use parley_kit::revocation::{RevokedSession, RevokedSessions};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde::Deserialize;
use uuid::Uuid;

use std::sync::Arc;

use parley_kit::auth::Role;
use serde_json::{json, Value};

use crate::keys::{Keys, ACCESS_TOKEN_TTL};
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

/// `POST /internal/live-token` (router key required): an access token for the router's live front
/// ([`parley_protocol::live_front`]), which opens signed-in viewers' shared streams as an identity that sees
/// what staff see and keeps each viewer to their own. Role `user`: it can read, never moderate.
pub async fn live_token(State(keys): State<Arc<Keys>>) -> Result<Json<Value>, StatusCode> {
    let (Ok(account), Ok(session)) = (
        Uuid::parse_str(parley_protocol::live_front::ACCOUNT),
        Uuid::parse_str(parley_protocol::live_front::SESSION),
    ) else {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let (token, expires_at) = keys
        .access_token(account, Role::User, session)
        .map_err(|err| {
            tracing::error!(error = %err, "live front token not signed");
            StatusCode::SERVICE_UNAVAILABLE
        })?;
    Ok(Json(
        json!({ "token": token, "expiresAt": expires_at.timestamp() }),
    ))
}
