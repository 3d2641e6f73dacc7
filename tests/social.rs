//! The social graph through the router: joins of users and social on `User`, follow flows, blocks, bad inputs,
//! and the same flow on PostgreSQL.

use parley_harness as support;

use serde_json::{json, Value};
use support::{codes, eventually, Account, Platform, Store};

const FOLLOW: &str = "mutation($id: ID!) { follow(userId: $id) }";
const PROFILE: &str = "query($id: ID!) { user(id: $id) { nickname followerCount followingCount isFollowedByMe isPrivate followers { edges { node { nickname } } } } }";

/// Follows, retrying while social has not yet heard of a just-registered account.
async fn follow(p: &Platform, who: &Account, target: &Account) -> Value {
    eventually("social to learn of the account", || async {
        let (_, body) = p
            .gql(FOLLOW, json!({ "id": target.id }), Some(&who.access))
            .await;
        if codes(&body) == ["NOT_FOUND"] {
            return None;
        }
        Some(body)
    })
    .await
}

fn nicknames(list: &Value) -> Vec<String> {
    list["edges"]
        .as_array()
        .map(|edges| {
            edges
                .iter()
                .filter_map(|e| e["node"]["nickname"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn follow_flow(p: &Platform) {
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;

    let body = follow(p, &bob, &alice).await;
    assert_eq!(body["data"]["follow"], "FOLLOWING", "{body}");
    // A join across users (nickname) and social (followers, counts) in one query.
    let profile = p
        .ok(PROFILE, json!({ "id": alice.id }), Some(&bob.access))
        .await;
    assert_eq!(profile["user"]["nickname"], "alice");
    assert_eq!(profile["user"]["followerCount"], 1);
    assert_eq!(profile["user"]["isFollowedByMe"], true);
    assert_eq!(nicknames(&profile["user"]["followers"]), vec!["bob"]);

    // Private account: a request, accepted, then listed.
    p.ok(
        "mutation { setPrivate(private: true) }",
        json!({}),
        Some(&carol.access),
    )
    .await;
    let body = follow(p, &bob, &carol).await;
    assert_eq!(body["data"]["follow"], "REQUESTED");
    let requests =
        "query($id: ID!) { user(id: $id) { followRequests { edges { node { nickname } } } } }";
    let pending = p
        .ok(requests, json!({ "id": carol.id }), Some(&carol.access))
        .await;
    assert_eq!(nicknames(&pending["user"]["followRequests"]), vec!["bob"]);
    let (_, peek) = p
        .gql(requests, json!({ "id": carol.id }), Some(&bob.access))
        .await;
    assert_eq!(
        codes(&peek),
        vec!["FORBIDDEN"],
        "requests are only for the owner"
    );
    let before = p
        .ok(PROFILE, json!({ "id": carol.id }), Some(&bob.access))
        .await;
    assert_eq!(before["user"]["followerCount"], 0);
    assert_eq!(before["user"]["isPrivate"], true);
    p.ok(
        "mutation($id: ID!) { acceptFollowRequest(userId: $id) }",
        json!({ "id": bob.id }),
        Some(&carol.access),
    )
    .await;
    let after = p
        .ok(PROFILE, json!({ "id": carol.id }), Some(&bob.access))
        .await;
    assert_eq!(nicknames(&after["user"]["followers"]), vec!["bob"]);

    // Friends are mutual follows.
    follow(p, &alice, &bob).await;
    let friends = p
        .ok("query($id: ID!) { user(id: $id) { friends { edges { node { nickname } } } following { edges { node { nickname } } } } }", json!({ "id": bob.id }), None)
        .await;
    assert_eq!(nicknames(&friends["user"]["friends"]), vec!["alice"]);
    assert_eq!(
        nicknames(&friends["user"]["following"]),
        vec!["carol", "alice"]
    );

    // Blocking removes the follow both ways and refuses new ones.
    p.ok(
        "mutation($id: ID!) { block(userId: $id) }",
        json!({ "id": bob.id }),
        Some(&alice.access),
    )
    .await;
    let blocked = p
        .ok(PROFILE, json!({ "id": alice.id }), Some(&bob.access))
        .await;
    assert_eq!(blocked["user"]["followerCount"], 0);
    assert_eq!(blocked["user"]["followingCount"], 0);
    let (_, refused) = p
        .gql(FOLLOW, json!({ "id": alice.id }), Some(&bob.access))
        .await;
    assert_eq!(codes(&refused), vec!["FORBIDDEN"]);
    p.ok(
        "mutation($id: ID!) { unblock(userId: $id) }",
        json!({ "id": bob.id }),
        Some(&alice.access),
    )
    .await;
    assert_eq!(follow(p, &bob, &alice).await["data"]["follow"], "FOLLOWING");

    // Unfollow and removeFollower.
    p.ok(
        "mutation($id: ID!) { unfollow(userId: $id) }",
        json!({ "id": alice.id }),
        Some(&bob.access),
    )
    .await;
    p.ok(
        "mutation($id: ID!) { removeFollower(userId: $id) }",
        json!({ "id": bob.id }),
        Some(&carol.access),
    )
    .await;
    let empty = p.ok(PROFILE, json!({ "id": carol.id }), None).await;
    assert_eq!(empty["user"]["followerCount"], 0);
}

#[tokio::test]
async fn follow_flow_on_sqlite() {
    let p = Platform::start().await;
    follow_flow(&p).await;
}

#[tokio::test]
async fn follow_flow_on_postgres() {
    if support::postgres_url().is_none() {
        return;
    }
    let p = Platform::start_with(Store::Postgres).await;
    follow_flow(&p).await;
}

#[tokio::test]
async fn bad_social_inputs() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    follow(&p, &alice, &bob).await; // also waits until social knows both

    let (_, me) = p
        .gql(FOLLOW, json!({ "id": alice.id }), Some(&alice.access))
        .await;
    assert_eq!(codes(&me), vec!["BAD_USER_INPUT"], "follow yourself");
    // Subgraph messages reach the client unmasked (they are written to be client-safe).
    assert_eq!(me["errors"][0]["message"], "you cannot follow yourself");
    let (_, unknown) = p
        .gql(
            FOLLOW,
            json!({ "id": "01900000-0000-7000-8000-000000000000" }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&unknown), vec!["NOT_FOUND"]);
    let (_, anon) = p.gql(FOLLOW, json!({ "id": bob.id }), None).await;
    assert_eq!(codes(&anon), vec!["UNAUTHENTICATED"]);
    let (_, none) = p
        .gql(
            "mutation($id: ID!) { acceptFollowRequest(userId: $id) }",
            json!({ "id": alice.id }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(codes(&none), vec!["NOT_FOUND"], "no such request");
    let (_, cursor) = p
        .gql(
            "query($id: ID!) { user(id: $id) { followers(after: \"!!\") { edges { cursor } } } }",
            json!({ "id": bob.id }),
            None,
        )
        .await;
    assert_eq!(codes(&cursor), vec!["BAD_USER_INPUT"]);
    // Nothing changed.
    let profile = p.ok(PROFILE, json!({ "id": bob.id }), None).await;
    assert_eq!(profile["user"]["followerCount"], 1);
}

#[tokio::test]
async fn pagination_walks_every_follower_once() {
    let p = Platform::start().await;
    let star = p.register("star").await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let fan = p.register(&format!("fan{i}")).await;
        follow(&p, &fan, &star).await;
        expected.push(format!("fan{i}"));
    }
    let q = "query($id: ID!, $after: String) { user(id: $id) { followers(first: 3, after: $after) { edges { cursor node { nickname } } pageInfo { hasNextPage } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = p
            .ok(q, json!({ "id": star.id, "after": after }), None)
            .await;
        let followers = &page["user"]["followers"];
        seen.extend(nicknames(followers));
        if followers["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = followers["edges"]
            .as_array()
            .and_then(|e| e.last())
            .map(|e| e["cursor"].clone())
            .expect("cursor");
    }
    expected.reverse(); // newest first
    assert_eq!(seen, expected);
}
