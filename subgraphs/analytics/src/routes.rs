//! HTTP beside GraphQL: `GET /analytics/exports/report.csv?token=…` (a signed download link, forwarded by the
//! router from its public origin; [`crate::export`]), and `POST /analytics/test-clock` (only with the test
//! clock on, and never forwarded by the router), which moves analytics' time ahead and runs the retention
//! job once.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use crate::export::{self, Links};
use crate::time::Clock;

#[derive(Clone)]
struct Shared {
    db: DatabaseConnection,
    clock: Clock,
    links: Links,
    retention_days: i64,
}

pub fn routes(
    db: DatabaseConnection,
    clock: Clock,
    links: Links,
    retention_days: i64,
    test_clock: bool,
) -> Router {
    let mut router = Router::new().route(export::PATH, get(download));
    if test_clock {
        router = router.route("/analytics/test-clock", post(advance));
    }
    router.with_state(Shared {
        db,
        clock,
        links,
        retention_days,
    })
}

#[derive(Deserialize)]
struct Download {
    token: String,
}

/// The report as a CSV file; 403 for a link that expired or is not ours (saying nothing of which).
async fn download(State(state): State<Shared>, Query(link): Query<Download>) -> Response {
    let now = state.clock.now();
    let Some(request) = export::open(&state.links.signer, &link.token, now) else {
        return (
            StatusCode::FORBIDDEN,
            "this link expired or is not a report link",
        )
            .into_response();
    };
    match export::csv(&state.db, &request, now).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"parley-report.csv\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            csv,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "a report download failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the report could not be made; try again",
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance(
    State(state): State<Shared>,
    Json(by): Json<Advance>,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let now = state.clock.advance(by.seconds);
    crate::jobs::once(&state.db, &state.clock, state.retention_days)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(Json(serde_json::json!({ "now": now })))
}
