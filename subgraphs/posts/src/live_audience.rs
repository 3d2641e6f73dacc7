//! `POST /internal/live-audience` (router key required, [`parley_kit::live_audience`]): who among the
//! signed-in viewers of a shared live stream of a post sees one event. The same rule as each viewer's own
//! subscription (`visibility`), read once for all of them — the post, its author's blocks and privacy, the
//! comment's author's — not once per viewer.
//!
//! Each verdict: `see`; `skip` (the comment is not theirs to see — its author blocked them, or is private
//! and not followed — the stream goes on); `end` (the post is no longer theirs to see) or `revoked` (their
//! session was): their stream ends, as their own subscription's would. A batch is judged question by
//! question.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use parley_kit::audience::{who_may_see, Viewer};
use parley_kit::live_audience::{answer, Answers, AudienceState, Questions, StreamViewer, Verdict};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde::Deserialize;
use uuid::Uuid;

use crate::store::{comment, post};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Question {
    post_id: Uuid,
    #[serde(default)]
    comment_id: Option<Uuid>,
    viewers: Vec<StreamViewer>,
}

impl parley_kit::live_audience::Question for Question {
    fn viewers(&self) -> &[StreamViewer] {
        &self.viewers
    }
}

pub async fn audience(
    State(state): State<AudienceState>,
    Json(batch): Json<Questions<Question>>,
) -> Result<Json<Answers>, StatusCode> {
    answer(&state.revoked, &batch.questions, || async {
        let mut answers = Vec::with_capacity(batch.questions.len());
        for question in &batch.questions {
            answers.push(verdicts(&state.db, question).await?);
        }
        Ok(answers)
    })
    .await
}

async fn verdicts(
    db: &DatabaseConnection,
    question: &Question,
) -> Result<Vec<Verdict>, sea_orm::DbErr> {
    let everyone = |verdict| vec![verdict; question.viewers.len()];
    let Some(post) = post::Entity::find_by_id(question.post_id).one(db).await? else {
        return Ok(everyone(Verdict::End));
    };
    let viewers: Vec<Viewer> = question
        .viewers
        .iter()
        .map(|v| Viewer {
            id: Some(v.user),
            staff: v.staff,
        })
        .collect();
    let sees_post = who_may_see(db, &viewers, post.author_id).await?;
    let sees_comment = match question.comment_id {
        None => vec![true; viewers.len()],
        Some(id) => match comment::Entity::find_by_id(id).one(db).await? {
            Some(comment) if comment.post_id == post.id => {
                who_may_see(db, &viewers, comment.author_id).await?
            }
            _ => vec![false; viewers.len()],
        },
    };
    Ok(viewers
        .iter()
        .zip(sees_post.into_iter().zip(sees_comment))
        .map(|(viewer, (post_seen, comment_seen))| {
            let deleted = post.deleted_at.is_some() && !viewer.staff;
            if deleted || !post_seen {
                Verdict::End
            } else if comment_seen {
                Verdict::See
            } else {
                Verdict::Skip
            }
        })
        .collect())
}
