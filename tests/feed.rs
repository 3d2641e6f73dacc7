//! The home feed through the router: fan-out on write from follows and topic subscriptions, backfill for new
//! follows, and posts leaving on unfollow, delete and block.

use parley_harness as support;

use serde_json::json;
use support::{codes, create_post, eventually, feed_titles, Account, Platform};

const FEED: &str =
    "query($s: PostSort) { feed(sort: $s) { edges { node { id title author { nickname } } } } }";

/// Waits until `who`'s feed (NEW order) is exactly `expected`.
async fn feed_becomes(p: &Platform, who: &Account, expected: &[&str]) {
    eventually(&format!("feed = {expected:?}"), || async {
        (feed_titles(p, who).await == expected).then_some(())
    })
    .await;
}

async fn follow(p: &Platform, who: &Account, target: &Account) {
    eventually("follow", || async {
        let (_, body) = p
            .gql(
                "mutation($id: ID!) { follow(userId: $id) }",
                json!({ "id": target.id }),
                Some(&who.access),
            )
            .await;
        (body["data"]["follow"] == "FOLLOWING").then_some(())
    })
    .await;
}

#[tokio::test]
async fn followed_posts_arrive_and_leave_on_sqlite() {
    follow_flow(&Platform::start().await).await;
}

#[tokio::test]
async fn followed_posts_arrive_and_leave_on_postgres() {
    if support::postgres_url().is_none() {
        return;
    }
    follow_flow(&Platform::start_with(support::Store::Postgres).await).await;
}

async fn follow_flow(p: &Platform) {
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;

    create_post(p, &alice, "before follow", None).await;
    follow(p, &bob, &alice).await;
    // Backfill: the earlier post shows up once the follow is known.
    feed_becomes(p, &bob, &["before follow"]).await;
    let second = create_post(p, &alice, "after follow", None).await;
    feed_becomes(p, &bob, &["after follow", "before follow"]).await;
    let with_author = p.ok(FEED, json!({ "s": "HOT" }), Some(&bob.access)).await;
    assert_eq!(
        with_author["feed"]["edges"][0]["node"]["author"]["nickname"], "alice",
        "{with_author}"
    );

    // A deleted post leaves every timeline.
    p.ok(
        "mutation($id: ID!) { deletePost(id: $id) }",
        json!({ "id": second }),
        Some(&alice.access),
    )
    .await;
    feed_becomes(p, &bob, &["before follow"]).await;

    // Unfollow empties it.
    p.ok(
        "mutation($id: ID!) { unfollow(userId: $id) }",
        json!({ "id": alice.id }),
        Some(&bob.access),
    )
    .await;
    feed_becomes(p, &bob, &[]).await;
    // Alice's own feed does not contain her posts (she follows nobody).
    assert!(feed_titles(p, &alice).await.is_empty());
}

#[tokio::test]
async fn topic_subscriptions_and_blocks_shape_the_feed() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    let topic = p
        .ok("mutation { createTopic(input: { name: \"maintenance\", title: \"Maintenance\" }) { id } }", json!({}), Some(&alice.access))
        .await["createTopic"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    create_post(&p, &alice, "oil change", Some("maintenance")).await;
    p.ok(
        "mutation($t: ID!) { subscribeTopic(topicId: $t) }",
        json!({ "t": topic }),
        Some(&bob.access),
    )
    .await;
    feed_becomes(&p, &bob, &["oil change"]).await;
    create_post(&p, &carol, "tyres", Some("maintenance")).await;
    feed_becomes(&p, &bob, &["tyres", "oil change"]).await;

    // Bob blocks carol: her posts leave his feed and new ones don't arrive.
    eventually("block", || async {
        let (_, body) = p
            .gql(
                "mutation($id: ID!) { block(userId: $id) }",
                json!({ "id": carol.id }),
                Some(&bob.access),
            )
            .await;
        (body["data"]["block"] == true).then_some(())
    })
    .await;
    feed_becomes(&p, &bob, &["oil change"]).await;
    create_post(&p, &carol, "brakes", Some("maintenance")).await;
    create_post(&p, &alice, "wipers", Some("maintenance")).await;
    feed_becomes(&p, &bob, &["wipers", "oil change"]).await;

    // Unsubscribing empties it.
    p.ok(
        "mutation($t: ID!) { unsubscribeTopic(topicId: $t) }",
        json!({ "t": topic }),
        Some(&bob.access),
    )
    .await;
    feed_becomes(&p, &bob, &[]).await;

    let (_, anon) = p.gql(FEED, json!({}), None).await;
    assert_eq!(codes(&anon), vec!["UNAUTHENTICATED"]);
}

/// Subgraphs sharing a process (as under `parley up`'s worker, and in this harness) share one metrics
/// recorder: the event counters name their consumer, so social's and chat's consumption of users' events
/// stay apart.
#[tokio::test]
async fn event_metrics_name_their_consumer() {
    let p = Platform::start().await;
    p.register("metered").await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", p.subgraph_url("feed"));
    eventually("users' event counted for social and for chat", || async {
        let text = http.get(&url).send().await.ok()?.text().await.ok()?;
        let counted = |consumer: &str| {
            text.lines().any(|line| {
                line.starts_with("parley_events_consumed_total{")
                    && line.contains(&format!("consumer=\"{consumer}\""))
                    && line.contains("source=\"users\"")
            })
        };
        (counted("social") && counted("chat")).then_some(())
    })
    .await;
}
