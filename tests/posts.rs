//! Posts, comments, votes and topics through the router, as a client would.

use parley_harness as support;

use serde_json::{json, Value};
use support::{codes, Platform};

const CREATE_TOPIC: &str = "mutation($i: CreateTopicInput!) { createTopic(input: $i) { id name } }";
const CREATE_POST: &str = "mutation($i: CreatePostInput!) { createPost(input: $i) { id title tags author { nickname } topic { name } } }";
const COMMENT: &str = "mutation($p: ID!, $b: String!, $parent: ID) { createComment(postId: $p, body: $b, parentId: $parent) { id } }";
const VOTE: &str = "mutation($t: ID!, $v: Int!) { vote(targetId: $t, value: $v) { score upvotes downvotes myVote } }";

async fn topic(p: &Platform, token: &str, name: &str) -> String {
    let data = p
        .ok(
            CREATE_TOPIC,
            json!({ "i": { "name": name, "title": name } }),
            Some(token),
        )
        .await;
    data["createTopic"]["id"].as_str().expect("id").to_string()
}

async fn post(p: &Platform, token: &str, title: &str, topic: Option<&str>) -> String {
    let data = p
        .ok(CREATE_POST, json!({ "i": { "title": title, "body": "**hello**", "topic": topic, "tags": ["Rust", "#web dev"] } }), Some(token))
        .await;
    data["createPost"]["id"].as_str().expect("id").to_string()
}

async fn comment(
    p: &Platform,
    token: &str,
    post: &str,
    body: &str,
    parent: Option<&str>,
) -> String {
    let data = p
        .ok(
            COMMENT,
            json!({ "p": post, "b": body, "parent": parent }),
            Some(token),
        )
        .await;
    data["createComment"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[tokio::test]
async fn topic_post_threaded_comments_and_votes_on_sqlite() {
    threaded_flow(&Platform::start().await).await;
}

#[tokio::test]
async fn topic_post_threaded_comments_and_votes_on_postgres() {
    if support::postgres_url().is_none() {
        return;
    }
    threaded_flow(&Platform::start_with(support::Store::Postgres).await).await;
}

async fn threaded_flow(p: &Platform) {
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    topic(p, &alice.access, "car-models").await;
    let created = p
        .ok(CREATE_POST, json!({ "i": { "title": "Which engine?", "body": "Tell me", "topic": "Car-Models", "tags": ["Engines", "#diesel"] } }), Some(&alice.access))
        .await;
    assert_eq!(created["createPost"]["author"]["nickname"], "alice");
    assert_eq!(created["createPost"]["topic"]["name"], "car-models");
    assert_eq!(created["createPost"]["tags"], json!(["engines", "diesel"]));
    let post_id = created["createPost"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    let top = comment(p, &bob.access, &post_id, "The V8", None).await;
    let reply = comment(p, &carol.access, &post_id, "No, the V6", Some(&top)).await;
    let deep = comment(p, &bob.access, &post_id, "Why?", Some(&reply)).await;
    comment(p, &carol.access, &post_id, "Second thread", None).await;

    // Votes from several users, changed and removed.
    p.ok(VOTE, json!({ "t": post_id, "v": 1 }), Some(&bob.access))
        .await;
    p.ok(VOTE, json!({ "t": post_id, "v": 1 }), Some(&carol.access))
        .await;
    p.ok(VOTE, json!({ "t": post_id, "v": -1 }), Some(&carol.access))
        .await;
    let last = p
        .ok(VOTE, json!({ "t": post_id, "v": 1 }), Some(&alice.access))
        .await;
    assert_eq!(
        last["vote"],
        json!({ "score": 1, "upvotes": 2, "downvotes": 1, "myVote": 1 })
    );
    p.ok(VOTE, json!({ "t": top, "v": 1 }), Some(&alice.access))
        .await;
    p.ok(VOTE, json!({ "t": top, "v": 0 }), Some(&alice.access))
        .await;
    p.ok(VOTE, json!({ "t": reply, "v": 1 }), Some(&alice.access))
        .await;

    let q = r#"query($id: ID!) { post(id: $id) {
        title score upvotes downvotes myVote commentCount author { nickname }
        comments(sort: NEW) { edges { node { body author { nickname } score replyCount
            replies { edges { node { body score myVote replies { edges { node { id body } } } } } } } } }
    } }"#;
    let data = p.ok(q, json!({ "id": post_id }), Some(&carol.access)).await;
    let post = &data["post"];
    assert_eq!(post["score"], 1);
    assert_eq!(post["upvotes"], 2);
    assert_eq!(post["downvotes"], 1);
    assert_eq!(post["myVote"], -1, "carol's own vote");
    assert_eq!(post["commentCount"], 4);
    let threads = post["comments"]["edges"].as_array().expect("threads");
    assert_eq!(threads.len(), 2);
    assert_eq!(threads[0]["node"]["body"], "Second thread", "NEW first");
    let v8 = &threads[1]["node"];
    assert_eq!(v8["author"]["nickname"], "bob");
    assert_eq!(v8["score"], 0, "vote removed");
    assert_eq!(v8["replyCount"], 1);
    let v6 = &v8["replies"]["edges"][0]["node"];
    assert_eq!(v6["body"], "No, the V6");
    assert_eq!(v6["score"], 1);
    assert_eq!(v6["replies"]["edges"][0]["node"]["id"], deep.as_str());

    // The whole subtree in one query, in thread order.
    let sub = p
        .ok("query($id: ID!) { comment(id: $id) { descendants { edges { node { body depth } } } } }", json!({ "id": top }), None)
        .await;
    let bodies: Vec<&str> = sub["comment"]["descendants"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["body"].as_str())
        .collect();
    assert_eq!(bodies, vec!["No, the V6", "Why?"]);

    // Lists by topic, tag and author.
    let by_topic = p
        .ok(
            "{ posts(topic: \"car-models\", sort: NEW) { edges { node { title } } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        by_topic["posts"]["edges"][0]["node"]["title"],
        "Which engine?"
    );
    let by_tag = p
        .ok(
            "{ posts(tag: \"DIESEL\") { edges { node { title } } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(by_tag["posts"]["edges"].as_array().map(Vec::len), Some(1));
    let none = p
        .ok(
            "{ posts(tag: \"petrol\") { edges { node { title } } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(none["posts"]["edges"].as_array().map(Vec::len), Some(0));
    let mine = p
        .ok(
            "query($id: ID!) { user(id: $id) { nickname posts { edges { node { title } } } } }",
            json!({ "id": alice.id }),
            None,
        )
        .await;
    assert_eq!(
        mine["user"]["posts"]["edges"][0]["node"]["title"],
        "Which engine?"
    );
}

#[tokio::test]
async fn only_authors_and_moderators_change_content() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let post_id = post(&p, &alice.access, "Original", None).await;
    let c = comment(&p, &alice.access, &post_id, "mine", None).await;

    let (_, edit) = p
        .gql(
            "mutation($id: ID!) { updatePost(id: $id, input: { title: \"Hacked\" }) { title } }",
            json!({ "id": post_id }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(codes(&edit), vec!["FORBIDDEN"]);
    let (_, del) = p
        .gql(
            "mutation($id: ID!) { deletePost(id: $id) }",
            json!({ "id": post_id }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(codes(&del), vec!["FORBIDDEN"]);
    let (_, cedit) = p
        .gql(
            "mutation($id: ID!) { updateComment(id: $id, body: \"x\") { id } }",
            json!({ "id": c }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(codes(&cedit), vec!["FORBIDDEN"]);
    let (_, cdel) = p
        .gql(
            "mutation($id: ID!) { deleteComment(id: $id) }",
            json!({ "id": c }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(codes(&cdel), vec!["FORBIDDEN"]);
    // Nothing changed.
    let data = p
        .ok(
            "query($id: ID!) { post(id: $id) { title commentCount } }",
            json!({ "id": post_id }),
            None,
        )
        .await;
    assert_eq!(
        data["post"],
        json!({ "title": "Original", "commentCount": 1 })
    );

    // The author edits; a moderator (here the admin) removes.
    let edited = p
        .ok("mutation($id: ID!) { updatePost(id: $id, input: { title: \"Edited\", tags: [\"x\"] }) { title tags } }", json!({ "id": post_id }), Some(&alice.access))
        .await;
    assert_eq!(
        edited["updatePost"],
        json!({ "title": "Edited", "tags": ["x"] })
    );
    let admin = p.register_admin().await;
    p.ok(
        "mutation($id: ID!) { deletePost(id: $id, reason: \"spam\") }",
        json!({ "id": post_id }),
        Some(&admin.access),
    )
    .await;
    let (_, gone) = p
        .gql(
            "query($id: ID!) { post(id: $id) { title } }",
            json!({ "id": post_id }),
            None,
        )
        .await;
    assert_eq!(codes(&gone), vec!["NOT_FOUND"]);
}

#[tokio::test]
async fn bad_content_inputs_get_codes() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let post_id = post(&p, &alice.access, "Fine", None).await;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "empty title",
            CREATE_POST,
            json!({ "i": { "title": "  ", "body": "b" } }),
            "BAD_USER_INPUT",
        ),
        (
            "unknown topic",
            CREATE_POST,
            json!({ "i": { "title": "t", "body": "b", "topic": "nope" } }),
            "NOT_FOUND",
        ),
        (
            "bad tag",
            CREATE_POST,
            json!({ "i": { "title": "t", "body": "b", "tags": ["a/b"] } }),
            "BAD_USER_INPUT",
        ),
        (
            "vote 2",
            VOTE,
            json!({ "t": post_id, "v": 2 }),
            "BAD_USER_INPUT",
        ),
        (
            "vote unknown",
            VOTE,
            json!({ "t": "01900000-0000-7000-8000-000000000000", "v": 1 }),
            "NOT_FOUND",
        ),
        (
            "empty comment",
            COMMENT,
            json!({ "p": post_id, "b": "" }),
            "BAD_USER_INPUT",
        ),
        (
            "bad topic name",
            CREATE_TOPIC,
            json!({ "i": { "name": "a b", "title": "t" } }),
            "BAD_USER_INPUT",
        ),
    ];
    for (label, query, vars, code) in cases {
        let (_, body) = p.gql(query, vars, Some(&alice.access)).await;
        assert_eq!(codes(&body), vec![code], "{label}: {body}");
    }
    topic(&p, &alice.access, "dupe").await;
    let (_, dupe) = p
        .gql(
            CREATE_TOPIC,
            json!({ "i": { "name": "DUPE", "title": "t" } }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&dupe), vec!["CONFLICT"]);
    let (_, anon) = p
        .gql(
            CREATE_POST,
            json!({ "i": { "title": "t", "body": "b" } }),
            None,
        )
        .await;
    assert_eq!(codes(&anon), vec!["UNAUTHENTICATED"]);

    // A comment on a deleted post is refused, and nothing was half-written.
    p.ok(
        "mutation($id: ID!) { deletePost(id: $id) }",
        json!({ "id": post_id }),
        Some(&alice.access),
    )
    .await;
    let (_, late) = p
        .gql(
            COMMENT,
            json!({ "p": post_id, "b": "late" }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&late), vec!["NOT_FOUND"]);
    let all = p
        .ok(
            "{ posts(sort: NEW) { edges { node { title } } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        all["posts"]["edges"].as_array().map(Vec::len),
        Some(0),
        "only the deleted post existed"
    );
}

#[tokio::test]
async fn concurrent_votes_count_once_on_sqlite() {
    concurrent_votes(&Platform::start().await).await;
}

#[tokio::test]
async fn concurrent_votes_count_once_on_postgres() {
    if support::postgres_url().is_none() {
        return;
    }
    concurrent_votes(&Platform::start_with(support::Store::Postgres).await).await;
}

async fn concurrent_votes(p: &Platform) {
    let author = p.register("author").await;
    let post_id = post(p, &author.access, "Vote me", None).await;
    let mut voters = Vec::new();
    for i in 0..8 {
        voters.push(p.register(&format!("voter{i}")).await);
    }
    // Every voter sends the same upvote four times at once.
    let mut tasks = Vec::new();
    for voter in &voters {
        for _ in 0..4 {
            tasks.push(p.gql(VOTE, json!({ "t": post_id, "v": 1 }), Some(&voter.access)));
        }
    }
    for (_, body) in futures::future::join_all(tasks).await {
        assert!(body.get("errors").is_none(), "{body}");
    }
    let data = p
        .ok(
            "query($id: ID!) { post(id: $id) { score upvotes downvotes } }",
            json!({ "id": post_id }),
            None,
        )
        .await;
    assert_eq!(
        data["post"],
        json!({ "score": 8, "upvotes": 8, "downvotes": 0 })
    );
}

#[tokio::test]
async fn hot_new_top_lists_paginate_without_repeats() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(post(&p, &alice.access, &format!("post {i}"), None).await);
    }
    p.ok(VOTE, json!({ "t": ids[2], "v": 1 }), Some(&bob.access))
        .await;
    p.ok(VOTE, json!({ "t": ids[5], "v": -1 }), Some(&bob.access))
        .await;
    for sort in ["HOT", "NEW", "TOP", "CONTROVERSIAL"] {
        let q = "query($s: PostSort, $a: String) { posts(sort: $s, first: 3, after: $a) { edges { cursor node { id score } } pageInfo { hasNextPage } } }";
        let mut seen = Vec::new();
        let mut after = Value::Null;
        loop {
            let page = p.ok(q, json!({ "s": sort, "a": after }), None).await;
            let edges = page["posts"]["edges"].as_array().expect("edges").clone();
            seen.extend(
                edges
                    .iter()
                    .map(|e| e["node"]["id"].as_str().expect("id").to_string()),
            );
            if page["posts"]["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = edges.last().expect("edge")["cursor"].clone();
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 7, "{sort}: every post exactly once: {seen:?}");
        if sort == "TOP" || sort == "HOT" {
            assert_eq!(seen[0], ids[2], "{sort}: the upvoted post leads");
        }
        if sort == "TOP" {
            assert_eq!(seen[6], ids[5], "TOP: the downvoted post trails");
        }
        if sort == "NEW" {
            let mut newest_first = ids.clone();
            newest_first.reverse();
            assert_eq!(seen, newest_first);
        }
    }
}

#[tokio::test]
async fn blocked_users_cannot_comment_or_vote_on_each_other() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let post_id = post(&p, &alice.access, "Mine", None).await;
    support::eventually("block", || async {
        let (_, body) = p
            .gql(
                "mutation($id: ID!) { block(userId: $id) }",
                json!({ "id": bob.id }),
                Some(&alice.access),
            )
            .await;
        (body["data"]["block"] == true).then_some(())
    })
    .await;
    // posts learns of the block from social's event; a no-op vote (0 on nothing) probes it without writing.
    support::eventually("posts to refuse bob", || async {
        let (_, body) = p
            .gql(VOTE, json!({ "t": post_id, "v": 0 }), Some(&bob.access))
            .await;
        (codes(&body) == ["FORBIDDEN"]).then_some(())
    })
    .await;
    let (_, comment) = p
        .gql(
            COMMENT,
            json!({ "p": post_id, "b": "hi" }),
            Some(&bob.access),
        )
        .await;
    assert_eq!(codes(&comment), vec!["FORBIDDEN"]);
    let (_, vote) = p
        .gql(VOTE, json!({ "t": post_id, "v": 1 }), Some(&bob.access))
        .await;
    assert_eq!(codes(&vote), vec!["FORBIDDEN"]);
    let data = p
        .ok(
            "query($id: ID!) { post(id: $id) { commentCount score } }",
            json!({ "id": post_id }),
            None,
        )
        .await;
    assert_eq!(data["post"], json!({ "commentCount": 0, "score": 0 }));
}
