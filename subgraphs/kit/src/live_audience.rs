//! `POST /internal/live-audience` (router key required), the question the router's live front asks the
//! subgraph owning a shared live stream at each event: which of the stream's signed-in viewers it is for
//! (`parley_protocol::live_front`). The front opens one upstream for all of them as its own account, which
//! may follow any stream, and keeps each viewer to what their own subscription would have carried.
//!
//! One request carries the questions of several events, of one stream or many (`{"questions": [...]}`,
//! answered `{"answers": [[verdict per viewer], ...]}` in order): the front batches what its streams ask
//! while a request is in flight, so a thousand small chats' messages cost a few requests, not one each.
//!
//! This module holds what every owner answers alike: the route behind the router key ([`routes`]), the
//! batch ([`Questions`], at most [`MAX_QUESTIONS`] questions and [`MAX_VIEWERS`] viewers in all), the
//! viewers named ([`StreamViewer`]), the verdicts ([`Verdict`]), and [`answer`], which bounds the batch,
//! gives a revoked session its verdict and turns a store failure into 503 (the front then ends the viewers
//! rather than send what may not be theirs). The owner's own rule (a post's audience, a chat's members) is
//! the `judge` it passes.

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

/// Viewers one request may name in all (a stream's viewers on one router process; the front asks in chunks).
pub const MAX_VIEWERS: usize = 10_000;

/// Questions one request may carry.
pub const MAX_QUESTIONS: usize = 256;

/// A request's questions, each an owner's own shape naming its viewers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Questions<Q> {
    pub questions: Vec<Q>,
}

/// An owner's question: one event of one stream, for the viewers it names.
pub trait Question {
    fn viewers(&self) -> &[StreamViewer];
}

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

/// The verdicts of each question, in order.
#[derive(Debug, Serialize)]
pub struct Answers {
    answers: Vec<Vec<Verdict>>,
}

/// The answers to `questions`: 413 over [`MAX_QUESTIONS`] or [`MAX_VIEWERS`] viewers in all, before any
/// work; `revoked` sessions get [`Verdict::Revoked`] whatever `judge` (per question, one verdict per viewer,
/// in order) says; a store failure is 503.
pub async fn answer<Q, F, Fut>(
    revoked: &Revoked,
    questions: &[Q],
    judge: F,
) -> Result<Json<Answers>, StatusCode>
where
    Q: Question,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Vec<Vec<Verdict>>, DbErr>>,
{
    let viewers: usize = questions.iter().map(|q| q.viewers().len()).sum();
    if questions.len() > MAX_QUESTIONS || viewers > MAX_VIEWERS {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let judged = judge().await.map_err(|err| {
        tracing::error!(error = %err, "live audience read failed");
        StatusCode::SERVICE_UNAVAILABLE
    })?;
    let whole = judged.len() == questions.len()
        && questions
            .iter()
            .zip(&judged)
            .all(|(question, verdicts)| question.viewers().len() == verdicts.len());
    if !whole {
        tracing::error!("live audience: a verdict per viewer expected");
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let answers = questions
        .iter()
        .zip(judged)
        .map(|(question, verdicts)| {
            question
                .viewers()
                .iter()
                .zip(verdicts)
                .map(|(viewer, verdict)| {
                    if revoked.contains(viewer.session) {
                        Verdict::Revoked
                    } else {
                        verdict
                    }
                })
                .collect()
        })
        .collect();
    Ok(Json(Answers { answers }))
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

    struct Asked(Vec<StreamViewer>);

    impl Question for Asked {
        fn viewers(&self) -> &[StreamViewer] {
            &self.0
        }
    }

    /// A revoked session is told so whatever the owner's rule says; the others get the rule's verdict.
    #[tokio::test]
    async fn a_revoked_session_is_told_whatever_the_rule_says() {
        let revoked = Revoked::default();
        let questions = [Asked(vec![viewer(), viewer()]), Asked(vec![viewer()])];
        revoked.record(
            &[RevokedSession {
                sid: questions[0].0[1].session,
                until: i64::MAX,
            }],
            0,
        );
        let Json(answers) = answer(&revoked, &questions, || async {
            Ok(vec![vec![Verdict::See, Verdict::See], vec![Verdict::End]])
        })
        .await
        .expect("answer");
        assert_eq!(
            answers.answers,
            [vec![Verdict::See, Verdict::Revoked], vec![Verdict::End]]
        );
    }

    /// Too many viewers in all, or too many questions, are refused before any work; a rule that fails or
    /// miscounts is no answer.
    #[tokio::test]
    async fn bounded_and_never_guessed() {
        let revoked = Revoked::default();
        let many_viewers = [
            Asked((0..MAX_VIEWERS).map(|_| viewer()).collect()),
            Asked(vec![viewer()]),
        ];
        let many_questions: Vec<Asked> = (0..=MAX_QUESTIONS).map(|_| Asked(Vec::new())).collect();
        for too_many in [&many_viewers[..], &many_questions[..]] {
            let refused = answer(&revoked, too_many, || async {
                panic!("judged {} questions", too_many.len())
            })
            .await;
            assert_eq!(refused.err(), Some(StatusCode::PAYLOAD_TOO_LARGE));
        }
        let one = [Asked(vec![viewer()])];
        let failed = answer(&revoked, &one, || async {
            Err(DbErr::Custom("down".into()))
        })
        .await;
        assert_eq!(failed.err(), Some(StatusCode::SERVICE_UNAVAILABLE));
        for short in [Vec::new(), vec![Vec::new()]] {
            let short = answer(&revoked, &one, || async { Ok(short) }).await;
            assert_eq!(short.err(), Some(StatusCode::INTERNAL_SERVER_ERROR));
        }
    }
}
