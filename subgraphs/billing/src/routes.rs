//! Billing's HTTP routes. `POST /billing/webhooks/<provider>` (public: the router forwards it) takes the
//! provider's signed events — a bad or stale signature is 400 and changes nothing, a replayed event id is
//! 200 and changes nothing, an event about something not ours is logged and 200. `POST /billing/test-clock`
//! (only with the test clock on, and never forwarded by the router) moves billing's time ahead and runs the
//! jobs once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use sea_orm::{EntityTrait, Set};
use serde::Deserialize;

use crate::provider::parse_event;
use crate::service::Service;
use crate::signature::{self, TOLERANCE_SECS};
use crate::store::webhook_event;

/// Webhook bodies larger than this are refused (Stripe's events are a few KiB).
const MAX_BODY: usize = 256 * 1024;

pub fn routes(service: Arc<Service>, test_clock: bool) -> Router {
    let mut router = Router::new().route("/billing/webhooks/{provider}", post(webhook));
    if test_clock {
        router = router.route("/billing/test-clock", post(advance));
    }
    router.with_state(service)
}

async fn webhook(
    State(service): State<Arc<Service>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if provider != service.provider.name() {
        return StatusCode::NOT_FOUND;
    }
    if body.len() > MAX_BODY {
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The signature's time is the wall clock's, never the test clock's.
    let now = Utc::now().timestamp();
    if let Err(e) = signature::verify(
        service.provider.webhook_secret(),
        header,
        &body,
        now,
        TOLERANCE_SECS,
    ) {
        tracing::warn!(error = %e, "webhook refused");
        return StatusCode::BAD_REQUEST;
    }
    let Some(event) = parse_event(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = format!("{provider}:{}", event.id);
    match webhook_event::Entity::find_by_id(id.clone())
        .one(&service.db)
        .await
    {
        Ok(Some(_)) => return StatusCode::OK,
        Ok(None) => {}
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE,
    }
    match event.charge() {
        Some(charge) => {
            // Settling is idempotent: a crash before the event id is recorded only means a redelivery
            // settles again, which changes nothing.
            if let Err(e) = service.settle(&charge).await {
                tracing::warn!(error = %e, event = %event.id, "webhook not applied; the provider retries");
                return StatusCode::SERVICE_UNAVAILABLE;
            }
        }
        None => {
            tracing::info!(event = %event.id, kind = %event.kind, "webhook about nothing of ours")
        }
    }
    let seen = webhook_event::ActiveModel {
        id: Set(id),
        kind: Set(event.kind.chars().take(100).collect()),
        received_at: Set(Utc::now()),
    };
    if let Err(e) = webhook_event::Entity::insert(seen)
        .on_conflict_do_nothing()
        .exec_without_returning(&service.db)
        .await
    {
        tracing::warn!(error = %e, "recording a webhook id failed");
    }
    StatusCode::OK
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance(
    State(service): State<Arc<Service>>,
    Json(by): Json<Advance>,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let now = service
        .clock
        .advance(by.seconds)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    crate::jobs::once(&service)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(Json(serde_json::json!({ "now": now })))
}
