//! Analytics through the router: domain events and client events into reports; sixty days of activity on a
//! moved clock against the exact counts (active users per day, week and month; weekly retention cohorts);
//! who may read what; bounded inputs.

use parley_harness as support;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use support::{codes, eventually, Account, Options, Platform, Store};

const DAY: i64 = 86_400;

async fn platform() -> Platform {
    platform_on(Store::Sqlite).await
}

async fn platform_on(store: Store) -> Platform {
    let mut analytics = toml::Table::new();
    analytics.insert("test_clock".into(), true.into());
    Platform::start_opts(Options {
        store: Some(store),
        analytics: Some(analytics),
        ..Default::default()
    })
    .await
}

/// Moves analytics' clock ahead (on the subgraph: the router does not forward this); returns its time.
async fn advance(p: &Platform, seconds: i64) -> DateTime<Utc> {
    let url = format!("{}/analytics/test-clock", p.subgraph_url("analytics"));
    let answer: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({ "seconds": seconds }))
        .send()
        .await
        .expect("analytics reachable")
        .json()
        .await
        .expect("json");
    answer["now"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .expect("now")
        .with_timezone(&Utc)
}

/// Moves the clock to 01:00 of the next day, so a test's events stay on their day; returns that day.
async fn start_tomorrow(p: &Platform) -> i64 {
    let now = advance(p, 0).await;
    let first = day_of(now) + 1;
    advance(p, first * DAY + 3_600 - now.timestamp()).await;
    first
}

/// Waits until analytics has recorded `who`'s registration (it dates events by its clock when it applies
/// them, so a test waits before moving the clock on).
async fn recorded(p: &Platform, admin: &Account, who: &Account) {
    eventually("the registration recorded", || async {
        let data = p
            .ok(
                "query($u: ID!) { userActivity(userId: $u) { firstSeen } }",
                json!({ "u": who.id }),
                Some(&admin.access),
            )
            .await;
        (!data["userActivity"]["firstSeen"].is_null()).then_some(())
    })
    .await;
}

fn day_start(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(day * DAY, 0).expect("day")
}

fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(DAY)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

const CONTENT: &str = "query($f: DateTime!, $t: DateTime!) { contentReport(from: $f, to: $t, bucket: DAY) { start posts comments votes messages uploads signups } }";
const ACTIVE: &str = "query($p: ActivityPeriod!, $f: DateTime!, $t: DateTime!) { activeUsers(period: $p, from: $f, to: $t) { start activeUsers } }";
const TRACK: &str = "mutation($e: [TrackEventInput!]!) { trackEvents(input: $e) }";

#[tokio::test]
async fn domain_and_client_events_become_reports_for_admins_only() {
    let p = platform().await;
    start_tomorrow(&p).await;
    let admin = p.register_admin().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let post = p
        .ok(
            "mutation { createPost(input: { title: \"Counted\", body: \"b\" }) { id } }",
            json!({}),
            Some(&alice.access),
        )
        .await["createPost"]["id"]
        .clone();
    p.ok(
        "mutation($p: ID!) { createComment(postId: $p, body: \"yes\") { id } }",
        json!({ "p": post }),
        Some(&bob.access),
    )
    .await;
    p.ok(
        "mutation($p: ID!) { vote(targetId: $p, value: 1) { score } }",
        json!({ "p": post }),
        Some(&bob.access),
    )
    .await;

    let now = advance(&p, 0).await;
    let range = json!({ "f": rfc(now - Duration::days(1)), "t": rfc(now + Duration::hours(1)) });
    let today = eventually("the domain events counted", || async {
        let data = p.ok(CONTENT, range.clone(), Some(&admin.access)).await;
        let points = data["contentReport"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let today = points.last().cloned()?;
        (today["posts"] == 1
            && today["comments"] == 1
            && today["votes"] == 1
            && today["signups"] == 3)
            .then_some(today)
    })
    .await;
    assert_eq!(today["messages"], 0, "{today}");
    // In a zone eight hours behind UTC, the day's events (01:00 UTC) fell on the evening before.
    let zoned = p
        .ok(
            "query($f: DateTime!, $t: DateTime!, $z: String!) { contentReport(from: $f, to: $t, bucket: DAY, timeZone: $z) { start posts } }",
            json!({ "f": range["f"], "t": range["t"], "z": "Etc/GMT+8" }),
            Some(&admin.access),
        )
        .await;
    let busy: Vec<&Value> = zoned["contentReport"]
        .as_array()
        .expect("points")
        .iter()
        .filter(|p| p["posts"] == 1)
        .collect();
    let evening_before = day_start(day_of(now) - 1) + Duration::hours(8);
    assert_eq!(busy.len(), 1, "{zoned}");
    assert_eq!(
        DateTime::parse_from_rfc3339(busy[0]["start"].as_str().expect("start")).expect("time"),
        evening_before,
        "{zoned}"
    );
    let (_, body) = p
        .gql(
            "query($f: DateTime!, $t: DateTime!) { contentReport(from: $f, to: $t, bucket: DAY, timeZone: \"Mars/Olympus\") { start } }",
            range.clone(),
            Some(&admin.access),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");

    // Admin, alice and bob were active today; an anonymous visitor's events count for funnels, not users.
    let track = |events: Value, who: Option<&Account>| {
        let token = who.map(|a| a.access.clone());
        let p = &p;
        async move { p.gql(TRACK, json!({ "e": events }), token.as_deref()).await }
    };
    let (_, body) = track(
        json!([{ "name": "landing_view", "anonymousId": "visitor-1" }, { "name": "signup_started", "anonymousId": "visitor-1" }]),
        None,
    )
    .await;
    assert_eq!(body["data"]["trackEvents"], 2, "{body}");
    let (_, body) = track(
        json!([{ "name": "landing_view" }, { "name": "signup_started" }]),
        Some(&alice),
    )
    .await;
    assert_eq!(body["data"]["trackEvents"], 2, "{body}");
    let active = eventually("three active users today", || async {
        let data = p
            .ok(
                ACTIVE,
                json!({ "p": "DAY", "f": rfc(now - Duration::minutes(1)), "t": rfc(now + Duration::minutes(1)) }),
                Some(&admin.access),
            )
            .await;
        (data["activeUsers"][0]["activeUsers"] == 3).then_some(data)
    })
    .await;
    assert_eq!(active["activeUsers"].as_array().map(Vec::len), Some(1));
    let funnel = p
        .ok(
            "query($f: DateTime!, $t: DateTime!) { funnel(steps: [\"landing_view\", \"signup_started\", \"PostCreated\"], from: $f, to: $t) { name users } }",
            json!({ "f": rfc(now - Duration::days(1)), "t": rfc(now + Duration::hours(1)) }),
            Some(&admin.access),
        )
        .await;
    let users: Vec<&Value> = funnel["funnel"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| &s["users"])
        .collect();
    // Alice posted before she sent her events: her post is not a third step after them.
    assert_eq!(users, [&json!(2), &json!(2), &json!(0)], "{funnel}");

    // Who may read what.
    for (who, code) in [(Some(&bob), "FORBIDDEN"), (None, "UNAUTHENTICATED")] {
        let (_, body) = p
            .gql(CONTENT, range.clone(), who.map(|a| a.access.as_str()))
            .await;
        assert_eq!(codes(&body), [code], "{body}");
    }
    let activity = "query($u: ID!) { userActivity(userId: $u) { userId firstSeen lastSeen activeDays events topEvents { name count } } }";
    let own = p
        .ok(activity, json!({ "u": alice.id }), Some(&alice.access))
        .await;
    assert_eq!(own["userActivity"]["activeDays"], 1, "{own}");
    let names: Vec<&str> = own["userActivity"]["topEvents"]
        .as_array()
        .expect("top")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for name in [
        "PostCreated",
        "UserRegistered",
        "landing_view",
        "signup_started",
    ] {
        assert!(names.contains(&name), "{name} in {own}");
    }
    let (_, body) = p
        .gql(activity, json!({ "u": alice.id }), Some(&bob.access))
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    p.ok(activity, json!({ "u": alice.id }), Some(&admin.access))
        .await;

    // Bad input, all refused before anything is recorded.
    let oversize = "x".repeat(5_000);
    for (events, who) in [
        (json!([{ "name": "landing_view" }]), None),
        (json!([{ "name": "PostCreated" }]), Some(&alice)),
        (
            json!([{ "name": "ok_event" }, { "name": "big", "properties": { "blob": oversize } }]),
            Some(&alice),
        ),
        (
            json!([{ "name": "late", "occurredAt": rfc(now - Duration::days(8)) }]),
            Some(&alice),
        ),
        (
            json!([{ "name": "listy", "properties": [1, 2] }]),
            Some(&alice),
        ),
    ] {
        let (_, body) = track(events.clone(), who).await;
        assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{events}: {body}");
    }
    let (_, body) = p
        .gql(
            ACTIVE,
            json!({ "p": "DAY", "f": rfc(now), "t": rfc(now - Duration::days(1)) }),
            Some(&admin.access),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
    let after = p
        .ok(activity, json!({ "u": alice.id }), Some(&alice.access))
        .await;
    assert_eq!(
        after["userActivity"]["events"], own["userActivity"]["events"],
        "nothing of a refused batch was recorded"
    );
}

/// Whether seeded user `u` opens the app on day `d` (a fixed, irregular pattern).
fn opens(u: usize, d: i64) -> bool {
    (u as i64 * 7 + d * 3) % 5 == 0 || d % 9 == u as i64 % 9
}

#[tokio::test]
async fn sixty_days_on_a_moved_clock_match_the_exact_counts() {
    sixty_days(Store::Sqlite).await;
}

/// The same on PostgreSQL (the reports' SQL is written for both).
#[tokio::test]
async fn sixty_days_on_postgres_match_the_exact_counts() {
    sixty_days(Store::Postgres).await;
}

async fn sixty_days(store: Store) {
    let p = platform_on(store).await;
    let first = start_tomorrow(&p).await;
    let admin = p.register_admin().await;
    // Who was active on which day: the truth the reports are checked against.
    let mut active: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    active.insert(admin.id.clone(), BTreeSet::from([first]));
    // Three cohorts: registered on day 0, 7 and 15.
    let mut users: Vec<Account> = Vec::new();
    for d in 0..60 {
        let day = first + d;
        let joining = match d {
            0 => 3,
            7 | 15 => 2,
            _ => 0,
        };
        for _ in 0..joining {
            let who = p.register(&format!("user{}", users.len())).await;
            active.entry(who.id.clone()).or_default().insert(day);
            // Its registration is dated by analytics' clock when applied: wait for it before moving on.
            recorded(&p, &admin, &who).await;
            users.push(who);
        }
        for (u, who) in users.iter().enumerate() {
            if opens(u, d) {
                let events = json!([{ "name": "app_open", "occurredAt": rfc(day_start(day) + Duration::minutes(30)) }]);
                p.ok(TRACK, json!({ "e": events }), Some(&who.access)).await;
                active.entry(who.id.clone()).or_default().insert(day);
            }
        }
        advance(&p, DAY).await;
    }
    let last = first + 60;

    let report = |period: &'static str| {
        let admin = admin.access.clone();
        let p = &p;
        async move {
            let data = p
                .ok(
                    ACTIVE,
                    json!({ "p": period, "f": rfc(day_start(first)), "t": rfc(day_start(last)) }),
                    Some(&admin),
                )
                .await;
            data["activeUsers"]
                .as_array()
                .expect("points")
                .iter()
                .map(|point| {
                    let start =
                        DateTime::parse_from_rfc3339(point["start"].as_str().expect("start"))
                            .expect("time")
                            .with_timezone(&Utc);
                    (day_of(start), point["activeUsers"].as_i64().expect("count"))
                })
                .collect::<Vec<_>>()
        }
    };
    let exact = |days: std::ops::Range<i64>| {
        active
            .values()
            .filter(|seen| seen.range(days.clone()).next().is_some())
            .count() as i64
    };
    // Days: exact.
    let daily = report("DAY").await;
    assert_eq!(daily.len(), 60);
    for (day, count) in &daily {
        assert_eq!(*count, exact(*day..day + 1), "day {}", day - first);
    }
    // Weeks and months: merged sketches, within the sketch's error (0.8 %; a handful of users is exact).
    for (period, points) in [
        ("WEEK", report("WEEK").await),
        ("MONTH", report("MONTH").await),
    ] {
        for (i, (start, count)) in points.iter().enumerate() {
            let end = points.get(i + 1).map_or(last, |(next, _)| *next);
            let want = exact((*start).max(first)..end);
            let slack = ((want as f64) * 0.05).ceil() as i64;
            assert!(
                (count - want).abs() <= slack,
                "{period} from day {}: {count}, exactly {want}",
                start - first
            );
        }
    }

    // Weekly retention cohorts, exactly.
    let data = p
        .ok(
            "query($f: DateTime!, $t: DateTime!) { retention(from: $f, to: $t) { start size retained } }",
            json!({ "f": rfc(day_start(first)), "t": rfc(day_start(last)) }),
            Some(&admin.access),
        )
        .await;
    let week = |day: i64| (day + 3).div_euclid(7);
    let mut want: BTreeMap<i64, (i64, BTreeMap<i64, i64>)> = BTreeMap::new();
    for seen in active.values() {
        let Some(&first_day) = seen.iter().next() else {
            continue;
        };
        let cohort = want.entry(week(first_day)).or_default();
        cohort.0 += 1;
        let weeks: BTreeSet<i64> = seen.iter().map(|&d| week(d) - week(first_day)).collect();
        for k in weeks {
            *cohort.1.entry(k).or_default() += 1;
        }
    }
    let cohorts = data["retention"].as_array().expect("cohorts");
    assert_eq!(cohorts.len(), want.len(), "{data}");
    for (cohort, (w, (size, retained))) in cohorts.iter().zip(&want) {
        let start = DateTime::parse_from_rfc3339(cohort["start"].as_str().expect("start"))
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(week(day_of(start)), *w, "{cohort}");
        assert_eq!(cohort["size"], *size, "{cohort}");
        let got: Vec<i64> = cohort["retained"]
            .as_array()
            .expect("retained")
            .iter()
            .filter_map(Value::as_i64)
            .collect();
        for (k, n) in got.iter().enumerate() {
            assert_eq!(
                *n,
                retained.get(&(k as i64)).copied().unwrap_or(0),
                "cohort of week {w}, week +{k}: {cohort}"
            );
        }
    }
}

/// On PostgreSQL the raw events live in day partitions: a day's events in its own, a late event's day made
/// when it comes (its row moved out of the default partition), and a day older than the retention period
/// dropped whole, while the counts made from it stay.
#[tokio::test]
async fn raw_events_live_in_day_partitions_on_postgres() {
    let mut analytics = toml::Table::new();
    analytics.insert("test_clock".into(), true.into());
    analytics.insert("tick_ms".into(), 100.into());
    let p = Platform::start_opts(Options {
        store: Some(Store::Postgres),
        analytics: Some(analytics),
        ..Default::default()
    })
    .await;
    let first = start_tomorrow(&p).await;
    let admin = p.register_admin().await;
    let opened =
        |at: DateTime<Utc>| json!({ "e": [{ "name": "app_open", "occurredAt": rfc(at) }] });
    p.ok(
        TRACK,
        opened(day_start(first) + Duration::minutes(30)),
        Some(&admin.access),
    )
    .await;
    let url = p
        .config_of("analytics", "analytics")
        .database_url
        .expect("analytics on PostgreSQL");
    let db = sea_orm::Database::connect(url)
        .await
        .expect("analytics database");
    let rows = |sql: String| {
        let db = &db;
        async move {
            use sea_orm::ConnectionTrait;
            db.query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql,
            ))
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get::<i64>("", "n").ok())
        }
    };
    let count = |day: i64| {
        rows(format!(
            "SELECT count(*) AS n FROM analytics_events_{day} WHERE name = 'app_open'"
        ))
    };
    eventually("the day's event in the day's partition", || async {
        (count(first).await == Some(1)).then_some(())
    })
    .await;

    // Forty days on, an event dated two days back: no partition was made ahead for that day.
    let now = advance(&p, 40 * DAY).await;
    let today = day_of(now);
    let late = now - Duration::days(2);
    p.ok(TRACK, opened(late), Some(&admin.access)).await;
    let partitions = eventually("old days dropped, the late day made", || async {
        let days = parley_analytics::partitions::days(&db).await.ok()?;
        let in_default = rows("SELECT count(*) AS n FROM analytics_events_default".into()).await?;
        (in_default == 0 && !days.contains(&first) && count(day_of(late)).await == Some(1))
            .then_some(days)
    })
    .await;
    let cutoff = today - 30;
    assert!(
        partitions.iter().all(|&day| day >= cutoff),
        "{partitions:?}"
    );
    assert!(
        (today - 1..=today + parley_analytics::partitions::AHEAD_DAYS)
            .all(|day| partitions.contains(&day)),
        "{partitions:?}"
    );
    // The raw rows are gone with their day; what was made of them stays.
    let data = p
        .ok(
            ACTIVE,
            json!({ "p": "DAY", "f": rfc(day_start(first)), "t": rfc(day_start(first + 1)) }),
            Some(&admin.access),
        )
        .await;
    assert_eq!(data["activeUsers"][0]["activeUsers"], 1, "{data}");

    // A visitor who signs in and sends the anonymous id it had is one person in a funnel (read from the
    // day partitions, the visitor's id joined to the user's).
    p.ok(
        TRACK,
        json!({ "e": [{ "name": "landing_view", "anonymousId": "pg-visitor" }] }),
        None,
    )
    .await;
    p.ok(
        TRACK,
        json!({ "e": [{ "name": "signup_done", "anonymousId": "pg-visitor" }] }),
        Some(&admin.access),
    )
    .await;
    let funnel = p
        .ok(
            "query($f: DateTime!, $t: DateTime!) { funnel(steps: [\"landing_view\", \"signup_done\"], from: $f, to: $t) { users } }",
            json!({ "f": rfc(now - Duration::hours(1)), "t": rfc(now + Duration::hours(1)) }),
            Some(&admin.access),
        )
        .await;
    assert_eq!(
        funnel["funnel"],
        json!([{ "users": 1 }, { "users": 1 }]),
        "{funnel}"
    );
}

#[tokio::test]
async fn the_routers_performance_per_operation() {
    let mut analytics = toml::Table::new();
    analytics.insert("scrape_ms".into(), 200.into());
    let p = Platform::start_opts(Options {
        analytics: Some(analytics),
        ..Default::default()
    })
    .await;
    let admin = p.register_admin().await;
    // A first reading of the router sets the baseline.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for _ in 0..20 {
        p.ok("query PerfProbe { plans { code } }", json!({}), None)
            .await;
    }
    for _ in 0..3 {
        let (_, body) = p
            .gql(
                "query PerfBroken($p: ID!) { post(id: $p) { id } }",
                json!({ "p": "01890000-0000-7000-8000-000000000000" }),
                None,
            )
            .await;
        assert_eq!(codes(&body), ["NOT_FOUND"], "{body}");
    }
    let now = Utc::now();
    let query = "query($f: DateTime!, $t: DateTime!) { performanceReport(from: $f, to: $t, bucket: HOUR) { start operation requests requestRate errorRate p50Ms p95Ms p99Ms } }";
    let vars = json!({ "f": rfc(now - Duration::hours(1)), "t": rfc(now + Duration::hours(1)) });
    let (probe, broken) = eventually("the router's histograms sampled", || async {
        let data = p.ok(query, vars.clone(), Some(&admin.access)).await;
        let points = data["performanceReport"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let sum = |name: &str, field: &str| {
            points
                .iter()
                .filter(|pt| pt["operation"] == name)
                .map(|pt| pt[field].as_f64().unwrap_or(0.0))
                .sum::<f64>()
        };
        let probe = points
            .iter()
            .find(|pt| pt["operation"] == "PerfProbe")
            .cloned()?;
        let broken = points
            .iter()
            .find(|pt| pt["operation"] == "PerfBroken")
            .cloned()?;
        (sum("PerfProbe", "requests") >= 20.0 && sum("PerfBroken", "requests") >= 3.0)
            .then_some((probe, broken))
    })
    .await;
    assert!(
        probe["p50Ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{probe}"
    );
    assert!(
        probe["p99Ms"].as_f64() >= probe["p50Ms"].as_f64(),
        "{probe}"
    );
    assert_eq!(probe["errorRate"], 0.0, "{probe}");
    assert!(
        broken["errorRate"].as_f64().is_some_and(|r| r > 0.0),
        "{broken}"
    );
    let (_, body) = p.gql(query, vars, None).await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"], "{body}");
}

const EXPORT: &str = "query($i: ReportExportInput!) { exportReport(input: $i) { url expiresAt } }";

#[tokio::test]
async fn reports_download_as_csv_behind_signed_links() {
    let p = platform().await;
    start_tomorrow(&p).await;
    let admin = p.register_admin().await;
    let alice = p.register("alice").await;
    p.ok(
        "mutation { createPost(input: { title: \"In the file\", body: \"b\" }) { id } }",
        json!({}),
        Some(&alice.access),
    )
    .await;
    let now = advance(&p, 0).await;
    let (from, to) = (rfc(now - Duration::days(2)), rfc(now + Duration::hours(1)));
    let report = eventually("the post counted", || async {
        let data = p
            .ok(CONTENT, json!({ "f": from, "t": to }), Some(&admin.access))
            .await;
        let points = data["contentReport"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (points.last()?["posts"] == 1).then_some(points)
    })
    .await;
    let link = p
        .ok(
            EXPORT,
            json!({ "i": { "report": "CONTENT", "from": from, "to": to, "bucket": "DAY" } }),
            Some(&admin.access),
        )
        .await["exportReport"]
        .clone();
    let url = link["url"].as_str().expect("url").to_string();
    assert!(
        url.starts_with(&p.graphql_url().replace("/graphql", "/analytics/exports/")),
        "{url}"
    );
    // Through the router, without a session.
    let response = p.http.get(&url).send().await.expect("router");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/csv"));
    let csv = response.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "start,posts,comments,votes,messages,uploads,signups"
    );
    assert_eq!(lines.len(), report.len() + 1, "{csv}");
    for (line, point) in lines[1..].iter().zip(&report) {
        let start = DateTime::parse_from_rfc3339(point["start"].as_str().expect("start"))
            .expect("time")
            .with_timezone(&Utc);
        let want = format!(
            "{},{},{},{},{},{},{}",
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            point["posts"],
            point["comments"],
            point["votes"],
            point["messages"],
            point["uploads"],
            point["signups"]
        );
        assert_eq!(*line, want);
    }

    // A funnel's file; a tampered link; the link after it expired; a non-admin asking.
    let funnel = p
        .ok(
            EXPORT,
            json!({ "i": { "report": "FUNNEL", "from": from, "to": to, "steps": ["UserRegistered", "PostCreated"] } }),
            Some(&admin.access),
        )
        .await;
    let funnel_url = funnel["exportReport"]["url"].as_str().expect("url");
    let csv = p
        .http
        .get(funnel_url)
        .send()
        .await
        .expect("router")
        .text()
        .await
        .expect("csv");
    assert_eq!(
        csv, "step,name,users\r\n1,UserRegistered,2\r\n2,PostCreated,1\r\n",
        "{csv}"
    );
    let tampered = url.replace("token=", "token=x");
    assert_eq!(
        p.http.get(&tampered).send().await.expect("router").status(),
        403
    );
    advance(&p, 16 * 60).await;
    assert_eq!(p.http.get(&url).send().await.expect("router").status(), 403);
    let (_, body) = p
        .gql(
            EXPORT,
            json!({ "i": { "report": "CONTENT", "from": from, "to": to } }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    let (_, body) = p
        .gql(
            EXPORT,
            json!({ "i": { "report": "ACTIVE_USERS", "from": from, "to": to, "bucket": "HOUR" } }),
            Some(&admin.access),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
}

/// `timeZone` moves the day and week boundaries of `activeUsers` and `retention`: activity at chosen UTC
/// minutes around a weekend, counted per day and week in Tokyo (UTC+9) and in `Etc/GMT+5` (UTC−5), against
/// the counts made here from the same minutes. Part of the activity comes late (dated days back), so the
/// closed days' and hours' sketches it changes are built again.
#[tokio::test]
async fn active_users_and_retention_count_days_in_a_time_zone() {
    let p = platform().await;
    // Start on a Saturday, 01:00 UTC: the weekend's activity falls in different weeks by zone.
    let now = advance(&p, 0).await;
    let mut first = day_of(now) + 1;
    while (first + 3).rem_euclid(7) != 5 {
        first += 1;
    }
    advance(&p, first * DAY + 3_600 - now.timestamp()).await;
    let at = |minutes: i64| first * 1_440 + minutes;
    let admin = p.register_admin().await;
    // Minutes since 1970 each account was active at, the truth the reports are checked against.
    let mut seen: Vec<Vec<i64>> = vec![vec![at(60)]];
    let mut users = Vec::new();
    for n in 0..5 {
        let who = p.register(&format!("zoned{n}")).await;
        recorded(&p, &admin, &who).await;
        seen.push(vec![at(60)]);
        users.push(who);
    }
    // Tuesday 12:00 UTC; then what the five did since Saturday, sent late.
    advance(&p, 3 * DAY + 11 * 3_600).await;
    let later = p.register("zoned_late").await;
    seen.push(vec![at(84 * 60)]);
    let did: [&[i64]; 5] = [
        &[2 * 60, 20 * 60, 40 * 60],
        &[23 * 60 + 30, 50 * 60],
        &[30 * 60, 47 * 60],
        &[70 * 60],
        &[],
    ];
    for (u, minutes) in did.iter().enumerate() {
        if minutes.is_empty() {
            continue;
        }
        let events: Vec<Value> = minutes
            .iter()
            .map(|&m| json!({ "name": "app_open", "occurredAt": rfc(minute(at(m))) }))
            .collect();
        p.ok(TRACK, json!({ "e": events }), Some(&users[u].access))
            .await;
        seen[u + 1].extend(minutes.iter().map(|&m| at(m)));
    }
    recorded(&p, &admin, &later).await;

    let (from, to) = (minute((first - 1) * 1_440), minute((first + 5) * 1_440));
    let mut cohorts_by_zone = Vec::new();
    for (zone, offset) in [("Asia/Tokyo", 9 * 60), ("Etc/GMT+5", -5 * 60), ("UTC", 0)] {
        let local_day = |m: i64| (m + offset).div_euclid(1_440);
        let local_week = |m: i64| (local_day(m) + 3).div_euclid(7);
        for period in ["DAY", "WEEK"] {
            let data = p
                .ok(
                    "query($p: ActivityPeriod!, $f: DateTime!, $t: DateTime!, $z: String!) { activeUsers(period: $p, from: $f, to: $t, timeZone: $z) { start activeUsers } }",
                    json!({ "p": period, "f": rfc(from), "t": rfc(to), "z": zone }),
                    Some(&admin.access),
                )
                .await;
            let points = data["activeUsers"].as_array().expect("points");
            let starts: Vec<i64> = points
                .iter()
                .map(|point| minutes_of(point["start"].as_str().expect("start")))
                .collect();
            for (i, point) in points.iter().enumerate() {
                // The bucket from its local midnight to the next one's, clipped to the range.
                let begins = starts[i].max(from.timestamp() / 60);
                let ends = starts.get(i + 1).copied().unwrap_or(to.timestamp() / 60);
                assert_eq!(
                    (starts[i] + offset).rem_euclid(1_440),
                    0,
                    "{zone}: buckets start at local midnight: {point}"
                );
                let want = seen
                    .iter()
                    .filter(|minutes| minutes.iter().any(|m| (begins..ends).contains(m)))
                    .count() as i64;
                assert_eq!(point["activeUsers"], want, "{zone} {period}: {point}");
            }
            if period == "WEEK" {
                let weeks: BTreeSet<i64> = seen.iter().flatten().map(|&m| local_week(m)).collect();
                assert_eq!(points.len(), weeks.len().max(1), "{zone}: {data}");
            }
        }
        // Retention: cohorts by the local week of each account's first minute, followed week by week.
        let data = p
            .ok(
                "query($f: DateTime!, $t: DateTime!, $z: String!) { retention(from: $f, to: $t, timeZone: $z) { start size retained } }",
                json!({ "f": rfc(from), "t": rfc(to), "z": zone }),
                Some(&admin.access),
            )
            .await;
        let mut want: BTreeMap<i64, (i64, BTreeMap<i64, i64>)> = BTreeMap::new();
        for minutes in &seen {
            let cohort = local_week(*minutes.iter().min().expect("a first minute"));
            let entry = want.entry(cohort).or_default();
            entry.0 += 1;
            let weeks: BTreeSet<i64> = minutes.iter().map(|&m| local_week(m) - cohort).collect();
            for k in weeks {
                *entry.1.entry(k).or_default() += 1;
            }
        }
        let cohorts = data["retention"].as_array().expect("cohorts");
        assert_eq!(cohorts.len(), want.len(), "{zone}: {data}");
        cohorts_by_zone.push(
            cohorts
                .iter()
                .map(|c| (c["size"].clone(), c["retained"].clone()))
                .collect::<Vec<_>>(),
        );
        for (cohort, (week, (size, retained))) in cohorts.iter().zip(&want) {
            let start = minutes_of(cohort["start"].as_str().expect("start"));
            assert_eq!(local_week(start), *week, "{zone}: {cohort}");
            assert_eq!((start + offset).rem_euclid(1_440), 0, "{zone}: {cohort}");
            assert_eq!(cohort["size"], *size, "{zone}: {cohort}");
            let got: Vec<i64> = cohort["retained"]
                .as_array()
                .expect("retained")
                .iter()
                .filter_map(Value::as_i64)
                .collect();
            let expected: Vec<i64> = (0..got.len() as i64)
                .map(|k| retained.get(&k).copied().unwrap_or(0))
                .collect();
            assert_eq!(got, expected, "{zone}: {cohort}");
            assert!(
                got.len() as i64 > *retained.keys().max().unwrap_or(&0),
                "{zone}: {cohort}"
            );
        }
    }
    // The weekend falls in different weeks by zone, so the zones' cohorts differ: the checks above are
    // not the UTC answer thrice.
    assert_ne!(cohorts_by_zone[0], cohorts_by_zone[1]);
}

fn minute(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(minutes * 60, 0).expect("time")
}

fn minutes_of(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .timestamp()
        .div_euclid(60)
}
