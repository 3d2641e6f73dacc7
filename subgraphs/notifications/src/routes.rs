//! The HTTP side under `/notifications/` (forwarded by the router from the public origin): the unsubscribe
//! link of digest mails. Opening it (GET) shows what it will stop and a button; the button — or a mail
//! client's RFC 8058 one-click POST — turns the kinds' EMAIL channel off. A GET changes nothing, because
//! mail scanners open links.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use crate::digest::{unsubscribe, Links, UNSUBSCRIBE_PATH};

#[derive(Clone)]
struct Unsubscribe {
    db: DatabaseConnection,
    links: Arc<Links>,
}

#[derive(Deserialize)]
struct Token {
    token: String,
}

pub fn routes(db: DatabaseConnection, links: Arc<Links>) -> Router {
    Router::new()
        .route(UNSUBSCRIBE_PATH, get(confirm).post(apply))
        .with_state(Unsubscribe { db, links })
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Parley</title></head><body>{body}</body></html>"
    );
    (status, [("cache-control", "no-store")], Html(html)).into_response()
}

fn kinds_text(kinds: &[crate::kinds::NotificationKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str().to_lowercase().replace('_', " "))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn confirm(State(state): State<Unsubscribe>, Query(q): Query<Token>) -> Response {
    match state.links.read(&q.token) {
        // The token is base64url and a dot: nothing in it needs escaping in an attribute.
        Ok((_, kinds)) => page(
            StatusCode::OK,
            &format!(
                "<p>Stop emails about: {}?</p><form method=\"post\" action=\"{UNSUBSCRIBE_PATH}?token={}\">\
                 <button type=\"submit\">Unsubscribe</button></form>",
                kinds_text(&kinds),
                q.token
            ),
        ),
        Err(_) => page(StatusCode::FORBIDDEN, "<p>This link is not valid.</p>"),
    }
}

async fn apply(State(state): State<Unsubscribe>, Query(q): Query<Token>) -> Response {
    let Ok((user, kinds)) = state.links.read(&q.token) else {
        return page(StatusCode::FORBIDDEN, "<p>This link is not valid.</p>");
    };
    match unsubscribe(&state.db, user, &kinds).await {
        Ok(()) => page(
            StatusCode::OK,
            &format!(
                "<p>Done: no more emails about {}. Change this any time in your notification settings.</p>",
                kinds_text(&kinds)
            ),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "unsubscribe failed");
            page(StatusCode::INTERNAL_SERVER_ERROR, "<p>Please try again.</p>")
        }
    }
}
