//! Search through the router, as a client uses it: typos, prefixes, phrases, exclusions, filters and sorts,
//! highlights that mark the matched words and escape the rest; the visibility rule at query time (chat
//! membership now, private accounts, blocks, deletion); freshness; a rebuilt index answering the same; and
//! the production path, two search instances on PostgreSQL and Redis answering alike.

use parley_harness as support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{codes, direct_chat, eventually, eventually_within, Account, Platform};

const SEARCH: &str = "query($q: String!, $f: SearchFilter, $s: SearchSort, $n: Int, $a: String) { search(query: $q, filter: $f, sort: $s, first: $n, after: $a) { totalCount totalCountExact pageInfo { hasNextPage } edges { cursor node { score highlights { field snippet } node { __typename ... on Post { id title } ... on Comment { id body } ... on Message { id text } ... on User { id nickname } } } } } }";

async fn search(p: &Platform, who: Option<&Account>, q: &str, vars: Value) -> Value {
    let mut variables = json!({ "q": q });
    if let (Some(map), Some(extra)) = (variables.as_object_mut(), vars.as_object()) {
        map.extend(extra.clone());
    }
    let (_, body) = p
        .gql(SEARCH, variables, who.map(|a| a.access.as_str()))
        .await;
    assert!(
        body.get("errors").is_none() && body["data"]["search"].is_object(),
        "{q:?}: {body}"
    );
    body["data"]["search"].clone()
}

/// The ids of the hits, in order.
fn ids(found: &Value) -> Vec<String> {
    found["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no edges: {found}"))
        .iter()
        // A node its owner hides already (the index learns of it a moment later) is null.
        .map(|e| {
            e["node"]["node"]["id"]
                .as_str()
                .unwrap_or("hidden")
                .to_string()
        })
        .collect()
}

async fn post(p: &Platform, who: &Account, title: &str, body: &str, extra: Value) -> String {
    let mut input = json!({ "title": title, "body": body });
    if let (Some(map), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    p.ok(
        "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
        json!({ "i": input }),
        Some(&who.access),
    )
    .await["createPost"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// Waits until `q` finds exactly `want` (as `who`).
async fn finds(p: &Platform, who: Option<&Account>, q: &str, want: &[&str]) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    eventually(&format!("{q:?} finds {want:?}"), || async {
        let mut got = ids(&search(p, who, q, json!({})).await);
        got.sort();
        (got == want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn typos_prefixes_phrases_exclusions_filters_sorts_and_highlights() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    p.ok(
        "mutation { createTopic(input: { name: \"cars\", title: \"Cars\" }) { id } }",
        json!({}),
        Some(&alice.access),
    )
    .await;
    let oil = post(
        &p,
        &alice,
        "Engine oil",
        "Change the engine oil <b>every</b> 10,000 km & check the filter",
        json!({ "topic": "cars", "tags": ["diy"] }),
    )
    .await;
    let service = post(
        &p,
        &bob,
        "Maintenance schedule",
        "Brake fluid, coolant and spark plugs",
        json!({}),
    )
    .await;
    let diesel = post(
        &p,
        &bob,
        "Diesel engine noise",
        "Engine knocks when cold",
        json!({ "topic": "cars" }),
    )
    .await;
    // Freshness: a new post is found within a second of its creation.
    let fresh = std::time::Instant::now();
    eventually_within(
        "the diesel post indexed",
        Duration::from_secs(1),
        || async {
            ids(&search(&p, None, "diesel", json!({})).await)
                .contains(&diesel)
                .then_some(())
        },
    )
    .await;
    eprintln!("post → searchable: {:?}", fresh.elapsed());

    // Typos within the budget, the last word as a prefix, both.
    finds(&p, None, "engnie oil", &[&oil]).await;
    finds(&p, None, "mainten", &[&service]).await;
    finds(&p, None, "maintenence schedule", &[&service]).await;
    // No typo below five letters: "oill" is not "oil".
    finds(&p, None, "oill ", &[]).await;
    // Phrases word for word, in order; exclusions.
    finds(&p, None, "\"engine oil\"", &[&oil]).await;
    finds(&p, None, "\"oil engine\"", &[]).await;
    finds(&p, None, "engine -diesel", &[&oil]).await;
    // Only stop words or punctuation: nothing, and no error.
    finds(&p, None, "the of and", &[]).await;
    finds(&p, None, "?!...", &[]).await;
    // An unclosed quote is plain words.
    finds(&p, None, "\"engine oil", &[&oil]).await;

    // Filters: topic, author, tags, kind, dates.
    let engine = |f: Value| {
        let p = &p;
        async move { ids(&search(p, None, "engine", json!({ "f": f })).await) }
    };
    let mut both = engine(json!({ "topic": "cars" })).await;
    both.sort();
    let mut expected = vec![oil.clone(), diesel.clone()];
    expected.sort();
    assert_eq!(both, expected);
    assert_eq!(
        engine(json!({ "authorId": bob.id })).await,
        vec![diesel.clone()]
    );
    assert_eq!(engine(json!({ "tags": ["DIY"] })).await, vec![oil.clone()]);
    assert!(engine(json!({ "kinds": ["MESSAGE", "USER"] }))
        .await
        .is_empty());
    assert!(
        engine(json!({ "from": "2000-01-01T00:00:00Z", "to": "2001-01-01T00:00:00Z" }))
            .await
            .is_empty()
    );
    assert_eq!(
        engine(json!({ "from": "2000-01-01T00:00:00Z" }))
            .await
            .len(),
        2
    );

    // Sorts: NEW is newest first; TOP follows votes.
    let new = ids(&search(&p, None, "engine", json!({ "s": "NEW" })).await);
    assert_eq!(new, vec![diesel.clone(), oil.clone()]);
    p.ok(
        "mutation($t: ID!) { vote(targetId: $t, value: 1) { score } }",
        json!({ "t": oil }),
        Some(&bob.access),
    )
    .await;
    eventually("TOP follows the vote", || async {
        let top = ids(&search(&p, None, "engine", json!({ "s": "TOP" })).await);
        (top == vec![oil.clone(), diesel.clone()]).then_some(())
    })
    .await;

    // Highlights mark the matched words (typos included) and escape the rest.
    let found = search(&p, None, "engnie every", json!({})).await;
    let highlights = &found["edges"][0]["node"]["highlights"];
    let body = highlights
        .as_array()
        .expect("highlights")
        .iter()
        .find(|h| h["field"] == "body")
        .expect("a body highlight")["snippet"]
        .as_str()
        .expect("snippet")
        .to_string();
    assert!(body.contains("<mark>engine</mark>"), "{body}");
    assert!(
        body.contains("&lt;b&gt;<mark>every</mark>&lt;/b&gt;"),
        "{body}"
    );
    assert!(body.contains("&amp;"), "{body}");
    assert!(!body.contains("<b>"), "{body}");
    // The node is the post, completed by posts through the router.
    assert_eq!(found["edges"][0]["node"]["node"]["title"], "Engine oil");

    // Users by nickname; paging with cursors; totals.
    finds(&p, None, "alic", &[&alice.id]).await;
    let page = search(&p, None, "engine", json!({ "n": 1 })).await;
    assert_eq!(page["totalCount"], 2);
    assert_eq!(page["totalCountExact"], true);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let next = search(
        &p,
        None,
        "engine",
        json!({ "n": 1, "a": page["edges"][0]["cursor"] }),
    )
    .await;
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    assert_ne!(ids(&next), ids(&page));

    // Bad input.
    for (q, vars) in [
        ("   ", json!({})),
        (&"x".repeat(257)[..], json!({})),
        (&"word ".repeat(17)[..], json!({})),
        ("engine", json!({ "a": "bm90IGEgY3Vyc29y" })),
        ("engine", json!({ "n": -1 })),
        ("engine", json!({ "f": { "authorId": "nope" } })),
    ] {
        let mut variables = json!({ "q": q });
        if let (Some(map), Some(extra)) = (variables.as_object_mut(), vars.as_object()) {
            map.extend(extra.clone());
        }
        let (_, body) = p.gql(SEARCH, variables, None).await;
        assert_eq!(codes(&body), vec!["BAD_USER_INPUT"], "{q:?} {vars}: {body}");
    }
    // `first` over 50 is capped, not refused.
    let capped = search(&p, None, "engine", json!({ "n": 500 })).await;
    assert_eq!(ids(&capped).len(), 2);
}

#[tokio::test]
async fn only_what_the_caller_could_read_is_found() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    let dave = p.register("dave").await;

    // Messages: members only, and only while they are members.
    let chat = direct_chat(&p, &alice, &bob).await;
    p.ok(
        "mutation($c: ID!) { sendMessage(chatId: $c, input: { text: \"the secret rendezvous point\" }) { id } }",
        json!({ "c": chat }),
        Some(&alice.access),
    )
    .await;
    let group = p
        .ok(
            "mutation($m: [ID!]!) { createGroupChat(title: \"Trip\", memberIds: $m) { id } }",
            json!({ "m": [carol.id] }),
            Some(&alice.access),
        )
        .await["createGroupChat"]["id"]
        .as_str()
        .expect("group")
        .to_string();
    let plan = p
        .ok(
            "mutation($c: ID!) { sendMessage(chatId: $c, input: { text: \"itinerary draft\" }) { id } }",
            json!({ "c": group }),
            Some(&alice.access),
        )
        .await["sendMessage"]["id"]
        .as_str()
        .expect("message")
        .to_string();
    let secret = eventually("bob finds the message", || async {
        ids(&search(&p, Some(&bob), "rendezvous", json!({})).await)
            .first()
            .cloned()
    })
    .await;
    finds(&p, Some(&alice), "rendezvous", &[&secret]).await;
    finds(&p, Some(&carol), "rendezvous", &[]).await;
    finds(&p, None, "rendezvous", &[]).await;
    finds(&p, Some(&carol), "itinerary", &[&plan]).await;
    p.ok(
        "mutation($c: ID!, $u: ID!) { removeChatMember(chatId: $c, userId: $u) { id } }",
        json!({ "c": group, "u": carol.id }),
        Some(&alice.access),
    )
    .await;
    finds(&p, Some(&carol), "itinerary", &[]).await;
    finds(&p, Some(&alice), "itinerary", &[&plan]).await;

    // A private account's posts: its followers only.
    let diary = post(
        &p,
        &dave,
        "Private diary",
        "gearbox rebuild notes",
        json!({}),
    )
    .await;
    finds(&p, None, "gearbox", &[&diary]).await;
    p.ok(
        "mutation { setPrivate(private: true) }",
        json!({}),
        Some(&dave.access),
    )
    .await;
    finds(&p, None, "gearbox", &[]).await;
    finds(&p, Some(&bob), "gearbox", &[]).await;
    finds(&p, Some(&dave), "gearbox", &[&diary]).await;
    p.ok(
        "mutation($u: ID!) { follow(userId: $u) }",
        json!({ "u": dave.id }),
        Some(&bob.access),
    )
    .await;
    p.ok(
        "mutation($u: ID!) { acceptFollowRequest(userId: $u) }",
        json!({ "u": bob.id }),
        Some(&dave.access),
    )
    .await;
    finds(&p, Some(&bob), "gearbox", &[&diary]).await;
    finds(&p, Some(&carol), "gearbox", &[]).await;

    // A blocked author's posts are not shown to the blocker (nor the blocker's to them).
    let tip = post(&p, &carol, "Tyre pressure", "check monthly", json!({})).await;
    finds(&p, Some(&alice), "tyre", &[&tip]).await;
    p.ok(
        "mutation($u: ID!) { block(userId: $u) }",
        json!({ "u": carol.id }),
        Some(&alice.access),
    )
    .await;
    finds(&p, Some(&alice), "tyre", &[]).await;
    finds(&p, Some(&bob), "tyre", &[&tip]).await;

    // A deleted post disappears.
    p.ok(
        "mutation($id: ID!) { deletePost(id: $id) }",
        json!({ "id": tip }),
        Some(&carol.access),
    )
    .await;
    finds(&p, Some(&bob), "tyre", &[]).await;
    finds(&p, Some(&carol), "tyre", &[]).await;
}

/// The hits of a few queries, as `who` sees them, in order.
async fn answers(p: &Platform, who: &Account) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for q in ["engine", "engnie oil", "brake", "mainten", "alic"] {
        out.push(ids(&search(p, Some(who), q, json!({})).await));
    }
    out
}

#[tokio::test]
async fn a_rebuilt_index_answers_the_same_and_a_lost_one_is_rebuilt() {
    let mut p = Platform::start().await;
    let alice = p.register("alice").await;
    let oil = post(&p, &alice, "Engine oil", "synthetic or mineral", json!({})).await;
    let brakes = post(
        &p,
        &alice,
        "Brake pads",
        "maintenance every spring",
        json!({}),
    )
    .await;
    finds(&p, Some(&alice), "brake", &[&brakes]).await;
    finds(&p, Some(&alice), "engine", &[&oil]).await;
    let before = answers(&p, &alice).await;
    assert!(before.iter().all(|hits| !hits.is_empty()), "{before:?}");

    // `parley search reindex` beside the running instance: a new generation, switched to when ready.
    let config = p.config_of("search", "search");
    let dir = config.data_dir.join("search").join(config.port.to_string());
    let current = || std::fs::read_to_string(dir.join("CURRENT")).expect("CURRENT");
    let old = current();
    let indexed = parley_search::reindex(&config).await.expect("reindexed");
    assert_eq!(indexed, 3, "two posts and alice");
    assert_ne!(current(), old);
    eventually("the instance switches to the new generation", || async {
        (!dir.join(old.trim()).exists()).then_some(())
    })
    .await;
    assert_eq!(answers(&p, &alice).await, before);
    // It goes on indexing from where the new generation was built.
    let later = post(&p, &alice, "Engine mounts", "worn", json!({})).await;
    eventually("a post after the rebuild is found", || async {
        ids(&search(&p, Some(&alice), "mounts", json!({})).await)
            .contains(&later)
            .then_some(())
    })
    .await;

    // An instance that starts without an index (a new machine) builds it from the store.
    p.stop_subgraph("search").await;
    let fresh = p.spawn_instance("search").await;
    let router = p.start_router(&[("search", &fresh)]).await;
    let client = Platform::client_of(&router.url);
    let (_, body) = client
        .gql(SEARCH, json!({ "q": "engine" }), Some(&alice.access))
        .await;
    let mut got = ids(&body["data"]["search"]);
    got.sort();
    let mut want = vec![oil, later];
    want.sort();
    assert_eq!(got, want, "{body}");
}

#[tokio::test]
async fn two_search_instances_in_production_answer_alike() {
    let Some(redis) =
        support::postgres_url().and_then(|_| parley_kit::testing::RedisServer::start())
    else {
        return;
    };
    let mut p = Platform::start_production(&redis.url()).await;
    let second = p.spawn_instance("search").await;
    let router_b = p.start_router(&[("search", &second)]).await;
    let b = Platform::client_of(&router_b.url);
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let chat = direct_chat(&p, &alice, &bob).await;
    let oil = post(&p, &alice, "Engine oil", "change it yearly", json!({})).await;
    p.ok(
        "mutation($c: ID!) { sendMessage(chatId: $c, input: { text: \"engine trouble again\" }) { id } }",
        json!({ "c": chat }),
        Some(&bob.access),
    )
    .await;
    for (who, want) in [(&alice, 2usize), (&bob, 2)] {
        let from_a = eventually("instance one indexed", || async {
            let hits = ids(&search(&p, Some(who), "engine", json!({})).await);
            (hits.len() == want).then_some(hits)
        })
        .await;
        let from_b = eventually("instance two indexed", || async {
            let (_, body) = b
                .gql(SEARCH, json!({ "q": "engine" }), Some(&who.access))
                .await;
            let hits = ids(&body["data"]["search"]);
            (hits.len() == want).then_some(hits)
        })
        .await;
        assert_eq!(from_a, from_b);
        assert!(from_a.contains(&oil));
    }
    // A stranger finds the post on either, not the message.
    let carol = p.register("carol").await;
    finds(&p, Some(&carol), "engine", &[&oil]).await;
    let (_, body) = b
        .gql(SEARCH, json!({ "q": "engine" }), Some(&carol.access))
        .await;
    assert_eq!(ids(&body["data"]["search"]), vec![oil]);
}
