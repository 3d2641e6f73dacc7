//! `POST /internal/live-audience` (router key required), the question the router's live front asks the
//! subgraph owning a shared live stream at each event: which of the stream's signed-in viewers it is for
//! (`parley_protocol::live_front`). The front opens one upstream for all of them as its own account, which
//! may follow any stream, and keeps each viewer to what their own subscription would have carried.
//!
//! This module holds what every owner answers alike: the route behind the router key ([`routes`]), the
//! viewers named ([`StreamViewer`], at most [`MAX_VIEWERS`]), the verdicts ([`Verdict`]), and [`answer`],
//! which bounds the question, gives a revoked session its verdict and turns a store failure into 503 (the
//! front then ends the viewers rather than send what may not be theirs). The owner's own rule (a post's
//! audience, a chat's members) is the `judge` it passes.

use std::future::Future;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::MethodRouter;
use axum::Json;
use sea_orm::{DatabaseConnection, DbErr};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::revocation::Revoked;
use crate::Runtime;

/// What an owner's audience endpoint reads: its store and the sessions revoked.
#[derive(Clone)]
pub struct AudienceState {
    pub db: DatabaseConnection,
    pub revoked: Arc<Revoked>,
}

/// The owner's `endpoint` at `/internal/live-audience`, for callers with the router key only.
pub fn routes(runtime: &Runtime, endpoint: MethodRouter<AudienceState>) -> axum::Router {
    let state = AudienceState {
        db: runtime.db.clone(),
        revoked: runtime.verifier.revoked().clone(),
    };
    crate::server::internal(
        axum::Router::new()
            .route(parley_protocol::live_front::AUDIENCE_PATH, endpoint)
            .with_state(state),
        runtime.config.router_key.as_deref().map(Arc::from),
    )
}

/// Viewers one question may name (a stream's viewers on one router process; the front asks in chunks).
pub const MAX_VIEWERS: usize = 10_000;

/// One viewer of the stream, as the token they joined with names them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamViewer {
    pub user: Uuid,
    pub session: Uuid,
    /// A moderator or admin (what a post's audience lets them see).
    #[serde(default)]
    pub staff: bool,
}

/// What one event means for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Theirs.
    See,
    /// Not theirs; their stream goes on.
    Skip,
    /// The stream is no longer theirs (the post gone from them, they left the chat): it ends.
    End,
    /// Their session was revoked: it ends, and they are told to sign in again.
    Revoked,
}

#[derive(Debug, Serialize)]
pub struct Answer {
    verdicts: Vec<Verdict>,
}

/// The answer for `viewers`: 413 over [`MAX_VIEWERS`]; `revoked` sessions get [`Verdict::Revoked`] whatever
/// `judge` (one verdict per viewer, in order) says; a store failure is 503.
pub async fn answer<F, Fut>(
    revoked: &Revoked,
    viewers: &[StreamViewer],
    judge: F,
) -> Result<Json<Answer>, StatusCode>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Vec<Verdict>, DbErr>>,
{
    if viewers.len() > MAX_VIEWERS {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let judged = judge().await.map_err(|err| {
        tracing::error!(error = %err, "live audience read failed");
        StatusCode::SERVICE_UNAVAILABLE
    })?;
    if judged.len() != viewers.len() {
        tracing::error!("live audience: a verdict per viewer expected");
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let verdicts = viewers
        .iter()
        .zip(judged)
        .map(|(viewer, verdict)| {
            if revoked.contains(viewer.session) {
                Verdict::Revoked
            } else {
                verdict
            }
        })
        .collect();
    Ok(Json(Answer { verdicts }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::RevokedSession;

    fn viewer() -> StreamViewer {
        StreamViewer {
            user: Uuid::now_v7(),
            session: Uuid::now_v7(),
            staff: false,
        }
    }

    /// A revoked session is told so whatever the owner's rule says; the others get the rule's verdict.
    #[tokio::test]
    async fn a_revoked_session_is_told_whatever_the_rule_says() {
        let revoked = Revoked::default();
        let viewers = [viewer(), viewer()];
        revoked.record(
            &[RevokedSession {
                sid: viewers[1].session,
                until: i64::MAX,
            }],
            0,
        );
        let Json(answer) = answer(&revoked, &viewers, || async {
            Ok(vec![Verdict::See, Verdict::See])
        })
        .await
        .expect("answer");
        assert_eq!(answer.verdicts, [Verdict::See, Verdict::Revoked]);
    }

    /// Too many viewers are refused before any work; a rule that fails or miscounts is no answer.
    #[tokio::test]
    async fn bounded_and_never_guessed() {
        let revoked = Revoked::default();
        let many: Vec<StreamViewer> = (0..=MAX_VIEWERS).map(|_| viewer()).collect();
        let refused = answer(&revoked, &many, || async {
            panic!("judged {} viewers", many.len())
        })
        .await;
        assert_eq!(refused.err(), Some(StatusCode::PAYLOAD_TOO_LARGE));
        let one = [viewer()];
        let failed = answer(&revoked, &one, || async {
            Err(DbErr::Custom("down".into()))
        })
        .await;
        assert_eq!(failed.err(), Some(StatusCode::SERVICE_UNAVAILABLE));
        let short = answer(&revoked, &one, || async { Ok(Vec::new()) }).await;
        assert_eq!(short.err(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    }
}
