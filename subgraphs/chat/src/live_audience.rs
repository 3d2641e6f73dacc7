//! `POST /internal/live-audience` (router key required, [`parley_kit::live_audience`]): who among the
//! signed-in viewers of a shared `messageAdded(chatId)` stream sees one message. A chat's messages are for
//! its current members, so the answer is one read of the chat's members among the viewers, however many:
//! `see` for a member, `end` for a viewer who left or was removed (their stream ends, as their own
//! subscription's would), `revoked` for a session signed out. A batch of questions (several chats'
//! messages) is one read too: the members of those chats among those viewers.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use parley_kit::live_audience::{
    answer, Answers, AudienceState, Question as _, Questions, StreamViewer, Verdict,
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde::Deserialize;
use uuid::Uuid;

use crate::store::member;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Question {
    chat_id: Uuid,
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
    answer(&state.revoked, &batch.questions, || {
        verdicts(&state.db, &batch.questions)
    })
    .await
}

async fn verdicts(
    db: &DatabaseConnection,
    questions: &[Question],
) -> Result<Vec<Vec<Verdict>>, sea_orm::DbErr> {
    let chats: HashSet<Uuid> = questions.iter().map(|q| q.chat_id).collect();
    let users: HashSet<Uuid> = questions
        .iter()
        .flat_map(|q| q.viewers().iter().map(|v| v.user))
        .collect();
    if users.is_empty() {
        return Ok(questions.iter().map(|_| Vec::new()).collect());
    }
    let members: HashSet<(Uuid, Uuid)> = member::Entity::find()
        .select_only()
        .column(member::Column::ChatId)
        .column(member::Column::UserId)
        .filter(member::Column::ChatId.is_in(chats))
        .filter(member::Column::UserId.is_in(users))
        .into_tuple::<(Uuid, Uuid)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(questions
        .iter()
        .map(|question| {
            question
                .viewers
                .iter()
                .map(|viewer| {
                    if members.contains(&(question.chat_id, viewer.user)) {
                        Verdict::See
                    } else {
                        Verdict::End
                    }
                })
                .collect()
        })
        .collect())
}
