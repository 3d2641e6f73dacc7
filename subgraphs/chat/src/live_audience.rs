//! `POST /internal/live-audience` (router key required, [`parley_kit::live_audience`]): who among the
//! signed-in viewers of a shared `messageAdded(chatId)` stream sees one message. A chat's messages are for
//! its current members, so the answer is one read of the chat's members among the viewers, however many:
//! `see` for a member, `end` for a viewer who left or was removed (their stream ends, as their own
//! subscription's would), `revoked` for a session signed out.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use parley_kit::live_audience::{answer, Answer, AudienceState, StreamViewer, Verdict};
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

pub async fn audience(
    State(state): State<AudienceState>,
    Json(question): Json<Question>,
) -> Result<Json<Answer>, StatusCode> {
    answer(&state.revoked, &question.viewers, || {
        verdicts(&state.db, &question)
    })
    .await
}

async fn verdicts(
    db: &DatabaseConnection,
    question: &Question,
) -> Result<Vec<Verdict>, sea_orm::DbErr> {
    let users: HashSet<Uuid> = question.viewers.iter().map(|v| v.user).collect();
    let members: HashSet<Uuid> = member::Entity::find()
        .select_only()
        .column(member::Column::UserId)
        .filter(member::Column::ChatId.eq(question.chat_id))
        .filter(member::Column::UserId.is_in(users))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(question
        .viewers
        .iter()
        .map(|viewer| {
            if members.contains(&viewer.user) {
                Verdict::See
            } else {
                Verdict::End
            }
        })
        .collect())
}
