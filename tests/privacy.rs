//! DESIGN §4's visibility rule through the router, as clients meet it: a private account's content and lists
//! are for itself, its approved followers and staff (going private hides at once, going public shows
//! again); across a block neither sees the other's content nor brings the other into a chat; a deleted post
//! is gone with its comments, whichever way they are reached.

use parley_harness as support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{codes, create_post, eventually, feed_titles, Account, Platform, WsClient};

const POST: &str = "query($id: ID!) { post(id: $id) { title } }";
const COMMENT: &str = "query($id: ID!) { comment(id: $id) { body post { title } } }";
const LISTS: &str = "query($id: ID!) { user(id: $id) { nickname followerCount followers { nodes { nickname } } following { nodes { nickname } } posts { nodes { title } } } }";

async fn mutate(p: &Platform, who: &Account, query: &str, variables: Value) -> Value {
    p.ok(query, variables, Some(&who.access)).await
}

async fn comment_on(p: &Platform, who: &Account, post_id: &str, body: &str) -> String {
    let data = mutate(
        p,
        who,
        "mutation($p: ID!, $b: String!) { createComment(postId: $p, body: $b) { id } }",
        json!({ "p": post_id, "b": body }),
    )
    .await;
    data["createComment"]["id"]
        .as_str()
        .expect("comment id")
        .to_string()
}

/// The titles of the posts `who` (or an anonymous caller) gets from `posts`.
async fn listed(p: &Platform, who: Option<&Account>) -> Vec<String> {
    let data = p
        .ok(
            "{ posts(sort: NEW, first: 50) { nodes { title } } }",
            json!({}),
            who.map(|a| a.access.as_str()),
        )
        .await;
    data["posts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["title"].as_str().map(str::to_string))
        .collect()
}

/// Whether `who` (or an anonymous caller) can read the post.
async fn sees_post(p: &Platform, who: Option<&Account>, post_id: &str) -> bool {
    let (_, body) = p
        .gql(
            POST,
            json!({ "id": post_id }),
            who.map(|a| a.access.as_str()),
        )
        .await;
    match codes(&body).as_slice() {
        [] => true,
        [code] if code == "NOT_FOUND" => false,
        other => panic!("post: {other:?} {body}"),
    }
}

async fn set_private(p: &Platform, who: &Account, private: bool) {
    mutate(
        p,
        who,
        "mutation($v: Boolean!) { setPrivate(private: $v) }",
        json!({ "v": private }),
    )
    .await;
}

#[tokio::test]
async fn a_private_account_shows_its_card_and_nothing_else() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    let admin = p.register_admin().await;
    let post_id = create_post(&p, &alice, "Alice's diary", None).await;
    let comment_id = comment_on(&p, &alice, &post_id, "dear diary").await;
    // Bob follows while alice is public: an approved follower.
    eventually("social knows alice", || async {
        let (_, body) = p
            .gql(
                "mutation($id: ID!) { follow(userId: $id) }",
                json!({ "id": alice.id }),
                Some(&bob.access),
            )
            .await;
        (body["data"]["follow"] == "FOLLOWING").then_some(())
    })
    .await;
    assert!(sees_post(&p, None, &post_id).await);

    set_private(&p, &alice, true).await;
    eventually("posts hides the private account", || async {
        (!sees_post(&p, None, &post_id).await).then_some(())
    })
    .await;
    // Everyone else: no post, no comment, not in lists, only the card.
    for outsider in [None, Some(&carol)] {
        assert!(!sees_post(&p, outsider, &post_id).await);
        assert!(!listed(&p, outsider)
            .await
            .contains(&"Alice's diary".to_string()));
        let token = outsider.map(|a| a.access.as_str());
        let (_, comment) = p.gql(COMMENT, json!({ "id": comment_id }), token).await;
        assert_eq!(codes(&comment), ["NOT_FOUND"], "{comment}");
        let lists = p.ok(LISTS, json!({ "id": alice.id }), token).await;
        assert_eq!(lists["user"]["nickname"], "alice");
        assert_eq!(lists["user"]["followerCount"], 1, "counts are on the card");
        assert_eq!(lists["user"]["followers"]["nodes"], json!([]));
        assert_eq!(lists["user"]["posts"]["nodes"], json!([]));
    }
    // A non-follower can neither comment nor vote on what it cannot see.
    let (_, refused) = p
        .gql(
            "mutation($p: ID!) { createComment(postId: $p, body: \"hi\") { id } }",
            json!({ "p": post_id }),
            Some(&carol.access),
        )
        .await;
    assert_eq!(codes(&refused), ["NOT_FOUND"], "{refused}");
    // Nor watch its comments live.
    let mut ws = WsClient::connect(&p, None).await;
    ws.subscribe(
        "c",
        "subscription($p: ID!) { commentAdded(postId: $p) { id } }",
        json!({ "p": post_id }),
    )
    .await;
    let answer = ws
        .next_for("c", Duration::from_secs(10))
        .await
        .expect("an answer");
    assert_eq!(support::ws_codes(&answer), ["NOT_FOUND"], "{answer}");
    ws.close().await;

    // The approved follower, the owner and staff see it all.
    for insider in [&bob, &alice, &admin] {
        assert!(sees_post(&p, Some(insider), &post_id).await);
        let data = p
            .ok(COMMENT, json!({ "id": comment_id }), Some(&insider.access))
            .await;
        assert_eq!(data["comment"]["post"]["title"], "Alice's diary");
        let lists = p
            .ok(LISTS, json!({ "id": alice.id }), Some(&insider.access))
            .await;
        assert_eq!(
            lists["user"]["followers"]["nodes"],
            json!([{ "nickname": "bob" }])
        );
    }

    // Going public shows everything again.
    set_private(&p, &alice, false).await;
    eventually("posts shows the account again", || async {
        sees_post(&p, None, &post_id).await.then_some(())
    })
    .await;
    assert!(listed(&p, Some(&carol))
        .await
        .contains(&"Alice's diary".to_string()));
}

#[tokio::test]
async fn a_topic_subscriber_loses_a_private_authors_posts_from_the_feed() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let carol = p.register("carol").await;
    let topic = mutate(
        &p,
        &alice,
        "mutation { createTopic(input: { name: \"diaries\", title: \"Diaries\" }) { id } }",
        json!({}),
    )
    .await["createTopic"]["id"]
        .as_str()
        .expect("topic")
        .to_string();
    mutate(
        &p,
        &carol,
        "mutation($t: ID!) { subscribeTopic(topicId: $t) }",
        json!({ "t": topic }),
    )
    .await;
    eventually("feed learns the subscription", || async {
        create_post(&p, &alice, "In the topic", Some("diaries")).await;
        feed_titles(&p, &carol)
            .await
            .contains(&"In the topic".to_string())
            .then_some(())
    })
    .await;
    set_private(&p, &alice, true).await;
    eventually("the feed hides the private author", || async {
        (!feed_titles(&p, &carol)
            .await
            .contains(&"In the topic".to_string()))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn blocked_users_see_nothing_of_each_other_and_share_no_new_chat() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let eve = p.register("eve").await;
    let frank = p.register("frank").await;
    let post_id = create_post(&p, &alice, "Public words", None).await;
    let comment_id = comment_on(&p, &alice, &post_id, "more words").await;
    p.block(&alice, &eve).await;
    eventually("posts hides alice from eve", || async {
        (!sees_post(&p, Some(&eve), &post_id).await).then_some(())
    })
    .await;
    assert!(!listed(&p, Some(&eve))
        .await
        .contains(&"Public words".to_string()));
    let (_, comment) = p
        .gql(COMMENT, json!({ "id": comment_id }), Some(&eve.access))
        .await;
    assert_eq!(codes(&comment), ["NOT_FOUND"]);
    // Everyone else still sees it.
    assert!(sees_post(&p, Some(&frank), &post_id).await);

    // Neither brings the other into a group (either way round), nor opens a direct chat.
    eventually("chat knows the block", || async {
        let (_, body) = p
            .gql(
                "mutation($m: [ID!]!) { createGroupChat(title: \"g\", memberIds: $m) { id } }",
                json!({ "m": [alice.id, frank.id] }),
                Some(&eve.access),
            )
            .await;
        (codes(&body) == ["FORBIDDEN"]).then_some(())
    })
    .await;
    let group = mutate(
        &p,
        &frank,
        "mutation($m: [ID!]!) { createGroupChat(title: \"g\", memberIds: $m) { id } }",
        json!({ "m": [eve.id] }),
    )
    .await["createGroupChat"]["id"]
        .as_str()
        .expect("group")
        .to_string();
    mutate(
        &p,
        &frank,
        "mutation($c: ID!, $u: ID!) { setChatAdmin(chatId: $c, userId: $u, admin: true) { id } }",
        json!({ "c": group, "u": eve.id }),
    )
    .await;
    let (_, added) = p
        .gql(
            "mutation($c: ID!, $u: ID!) { addChatMember(chatId: $c, userId: $u) { id } }",
            json!({ "c": group, "u": alice.id }),
            Some(&eve.access),
        )
        .await;
    assert_eq!(codes(&added), ["FORBIDDEN"], "{added}");
    // Frank, who blocked no one, adds alice: the group works for everyone in it.
    mutate(
        &p,
        &frank,
        "mutation($c: ID!, $u: ID!) { addChatMember(chatId: $c, userId: $u) { id } }",
        json!({ "c": group, "u": alice.id }),
    )
    .await;
}

#[tokio::test]
async fn a_deleted_post_takes_its_comments_with_it() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let admin = p.register_admin().await;
    let post_id = create_post(&p, &alice, "Soon gone", None).await;
    let comment_id = comment_on(&p, &bob, &post_id, "a reply").await;
    mutate(
        &p,
        &alice,
        "mutation($id: ID!) { deletePost(id: $id) }",
        json!({ "id": post_id }),
    )
    .await;
    for who in [None, Some(&bob), Some(&alice)] {
        let token = who.map(|a| a.access.as_str());
        let (_, comment) = p.gql(COMMENT, json!({ "id": comment_id }), token).await;
        assert_eq!(codes(&comment), ["NOT_FOUND"], "{comment}");
        assert!(!sees_post(&p, who, &post_id).await);
    }
    // Staff still see what was removed.
    assert!(sees_post(&p, Some(&admin), &post_id).await);
    let data = p
        .ok(COMMENT, json!({ "id": comment_id }), Some(&admin.access))
        .await;
    assert_eq!(data["comment"]["post"]["title"], "Soon gone");
    // The entity path (what another subgraph's reference resolves through) hides it too.
    let entities = reqwest::Client::new()
        .post(format!("{}/graphql", p.subgraph_url("posts")))
        .json(&json!({
            "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Comment { body } ... on Post { title } } }",
            "variables": { "r": [
                { "__typename": "Comment", "id": comment_id },
                { "__typename": "Post", "id": post_id },
            ] },
        }))
        .send()
        .await
        .expect("posts")
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(
        entities["data"]["_entities"],
        json!([null, null]),
        "{entities}"
    );
}
