//! On PostgreSQL a transaction holding outbox position 10 can commit after the one holding 11. The relay then
//! publishes 11 first; the event log (`GET /events`) must still hand 10 to a consumer that has read past 11.

use std::time::Duration;

use axum::extract::{Query, State};
use parley_kit::events::log::{handler, LogState};
use parley_kit::events::{append, relay, InProcessBus};
use parley_kit::lease::Leadership;
use parley_kit::testing::{fresh_postgres_db, postgres_url, EventTables, Tick};
use sea_orm::TransactionTrait;

/// The aggregates of the events `GET /events?after=N` returns.
async fn log_after(state: &LogState, after: i64) -> Vec<(i64, String)> {
    let params = serde_json::from_value(serde_json::json!({ "after": after })).expect("params");
    let events = handler(State(state.clone()), Query(params))
        .await
        .expect("feed")
        .0;
    events
        .into_iter()
        .map(|e| (e.position, e.aggregate_id))
        .collect()
}

/// The feed after `after` once it has something (the relay publishes in the background), or empty after 2 s.
async fn first_events_after(state: &LogState, after: i64) -> Vec<(i64, String)> {
    for _ in 0..100 {
        let events = log_after(state, after).await;
        if !events.is_empty() {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn a_late_commit_is_not_skipped_by_consumers_past_it() {
    let Some(admin) = postgres_url() else { return };
    let url = fresh_postgres_db(&admin, "outbox").await;
    let db = parley_kit::store::connect_url::<EventTables>(&url, 4)
        .await
        .expect("store");
    let (events, task) = relay::start(
        db.clone(),
        "src".into(),
        InProcessBus::new(),
        Leadership::Alone,
    );
    let state = LogState {
        db: db.clone(),
        source: "src".into(),
        events: events.clone(),
    };

    // The early transaction takes its position first and commits last.
    let early = db.begin().await.expect("begin");
    append(&early, "early", &Tick { n: 1 })
        .await
        .expect("append");
    let late = db.begin().await.expect("begin");
    append(&late, "late", &Tick { n: 2 }).await.expect("append");
    late.commit().await.expect("commit");
    events.wake();
    assert_eq!(
        first_events_after(&state, 0).await,
        [(1, "late".to_string())]
    );

    // A consumer that has read up to 1 still gets the early event once it commits.
    early.commit().await.expect("commit");
    events.wake();
    assert_eq!(
        first_events_after(&state, 1).await,
        [(2, "early".to_string())]
    );
    assert_eq!(
        log_after(&state, 0).await,
        [(1, "late".to_string()), (2, "early".to_string())]
    );
    task.abort();
}
