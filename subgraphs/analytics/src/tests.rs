//! Analytics against a real store: domain events applied as the consumer applies them (a redelivery
//! included), client events recorded, and the reports read back.

use chrono::{Duration, Utc};
use parley_kit::events::consumer::apply;
use parley_kit::events::contracts::{
    Consumed, PostChanged, PostCreated, UserRegistered, VoteCast, VoteSubmitted,
};
use parley_kit::events::Event;
use parley_kit::testing::{config, envelope, temp_dir};
use parley_kit::Domain;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use uuid::Uuid;

use crate::ingest::{self, client_record, ClientEvent};
use crate::projection::Projection;
use crate::reports;
use crate::store::{daily, event};
use crate::time::{day_of, Bucket, Clock};
use crate::Analytics;

struct World {
    db: DatabaseConnection,
    handler: Projection,
    position: i64,
    _runtime: parley_kit::Runtime,
}

impl World {
    /// Analytics' migrated store, without the subgraph's background work: its retention pass runs at
    /// start and would race the rows these tests write in the past (a pass between two of them merged a
    /// day from part of its rows); the tests run that pass themselves where they need it.
    async fn start() -> World {
        let runtime = parley_kit::Runtime::start::<crate::Migrator>(config(
            Analytics::NAME,
            temp_dir("analytics"),
        ))
        .await
        .expect("start");
        World {
            db: runtime.db.clone(),
            handler: Projection {
                clock: Clock::default(),
            },
            position: 0,
            _runtime: runtime,
        }
    }

    fn envelope<E: Event>(&mut self, event: E) -> parley_kit::events::EventEnvelope {
        self.position += 1;
        envelope(self.position, "x", event)
    }
}

#[tokio::test]
async fn a_redelivered_domain_event_counts_once_and_names_its_actor() {
    let mut w = World::start().await;
    let author = Uuid::now_v7();
    let created = w.envelope(PostCreated(PostChanged {
        post_id: Uuid::now_v7(),
        author_id: author,
        ..Default::default()
    }));
    for _ in 0..2 {
        apply(&w.db, &created.source, &w.handler, &created)
            .await
            .expect("applied");
    }
    // Past the consumer's own inbox too: the record itself is keyed by the event's id.
    let record = <crate::projection::DomainEvent as Consumed>::decode(&created)
        .expect("decodes")
        .expect("recorded kind")
        .0;
    assert!(!ingest::record(&w.db, record, Utc::now())
        .await
        .expect("again"));
    let counted = daily::Entity::find_by_id((day_of(Utc::now()), "PostCreated".to_string()))
        .one(&w.db)
        .await
        .expect("read")
        .expect("a count");
    assert_eq!(counted.count, 1);
    let kept = event::Entity::find_by_id((day_of(Utc::now()), created.id))
        .one(&w.db)
        .await
        .expect("read")
        .expect("raw");
    assert_eq!(kept.user_id, Some(author));

    let voter = Uuid::now_v7();
    let vote = w.envelope(VoteSubmitted(VoteCast {
        user_id: voter,
        ..Default::default()
    }));
    apply(&w.db, &vote.source, &w.handler, &vote)
        .await
        .expect("applied");
    let registered = w.envelope(UserRegistered {
        user_id: Uuid::now_v7(),
        nickname: "n".into(),
        ..Default::default()
    });
    apply(&w.db, &registered.source, &w.handler, &registered)
        .await
        .expect("applied");
    let now = Utc::now();
    let today = reports::active_users(
        &w.db,
        Bucket::Day,
        now - Duration::minutes(1),
        now + Duration::minutes(1),
        now,
        None,
    )
    .await
    .expect("report");
    assert_eq!(today.len(), 1);
    assert_eq!(today[0].active_users, 3, "author, voter, new user");
}

#[tokio::test]
async fn client_events_count_their_people_and_feed_funnels() {
    let w = World::start().await;
    let now = Utc::now();
    let (user, joined, later) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let track = |user: Option<Uuid>, anonymous: Option<&str>, name: &str, minutes_ago: i64| {
        client_record(
            user,
            ClientEvent {
                name: name.into(),
                properties: Some(serde_json::json!({ "screen": "home" })),
                occurred_at: Some(now - Duration::minutes(minutes_ago)),
                anonymous_id: anonymous.map(str::to_string),
            },
            now,
        )
        .expect("valid")
    };
    for record in [
        track(None, Some("visitor-1"), "view", 30),
        track(None, Some("visitor-1"), "signup_started", 20),
        track(None, Some("visitor-2"), "view", 25),
        track(Some(user), None, "view", 15),
        track(Some(user), None, "signup_started", 10),
        track(Some(user), None, "signup_done", 5),
        // Visitor 3 signs up as `joined`, who then sends the id it had: one person from first view to done.
        track(None, Some("visitor-3"), "view", 28),
        track(None, Some("visitor-3"), "signup_started", 18),
        track(Some(joined), Some("visitor-3"), "signup_done", 3),
        // An id already claimed stays with the first user who sent it.
        track(Some(later), Some("visitor-3"), "signup_done", 2),
    ] {
        assert!(ingest::record(&w.db, record, now).await.expect("record"));
    }
    assert!(client_record(
        None,
        ClientEvent {
            name: "view".into(),
            ..Default::default()
        },
        now
    )
    .is_err());
    let steps: Vec<String> = ["view", "signup_started", "signup_done"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let funnel = reports::funnel(
        &w.db,
        &steps,
        now - Duration::hours(1),
        now,
        Duration::hours(1),
    )
    .await
    .expect("funnel");
    let reached: Vec<i64> = funnel.iter().map(|s| s.actors).collect();
    assert_eq!(reached, [4, 3, 2]);
    // Only the signed-in users are active users.
    let points = reports::active_users(
        &w.db,
        Bucket::Day,
        now - Duration::minutes(1),
        now + Duration::minutes(1),
        now,
        None,
    )
    .await
    .expect("report");
    assert_eq!(points[0].active_users, 3);
    assert_eq!(event::Entity::find().count(&w.db).await.expect("count"), 10);
}

/// Once a day's activity rows are gone (the retention period), a time zone's days of it are merged from the
/// hourly sketches the retention job kept before deleting the rows.
#[tokio::test]
async fn a_zone_day_older_than_the_activity_rows_is_merged_from_hourly_sketches() {
    let w = World::start().await;
    let now = Utc::now();
    let day = day_of(now) - 40;
    let at = |hours: i64| crate::time::day_start(day) + Duration::hours(hours);
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // Tokyo is UTC+9: its day `day + 1` runs from 15:00 UTC on `day` to 15:00 UTC on `day + 1`.
    for (user, hours) in [(a, 20), (b, 10), (c, 26), (a, 21)] {
        let record = ingest::Record {
            id: Uuid::now_v7(),
            name: "app_open".into(),
            source: ingest::CLIENT.into(),
            user_id: Some(user),
            actor: Some(ingest::user_actor(user)),
            was_anonymous: None,
            occurred_at: at(hours),
            properties: None,
        };
        assert!(ingest::record(&w.db, record, now).await.expect("record"));
    }
    crate::jobs::once(&w.db, &Clock::default(), 30)
        .await
        .expect("retention");
    let rows = crate::store::active::Entity::find()
        .count(&w.db)
        .await
        .expect("count");
    assert_eq!(rows, 0, "the activity rows are gone");
    let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().expect("zone");
    for _ in 0..2 {
        let points = reports::active_users(&w.db, Bucket::Day, at(-9), at(39), now, Some(tokyo))
            .await
            .expect("report");
        let counts: Vec<i64> = points.iter().map(|p| p.active_users).collect();
        assert_eq!(counts, [1, 2], "{points:?}");
        assert_eq!(points[1].start, at(15));
    }
}
