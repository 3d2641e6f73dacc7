//! The rules and the delivery bookkeeping against a real store, events applied as the consumer applies
//! them (`parley_kit::events::consumer::apply`: handler, inbox and position in one transaction).

use chrono::Utc;
use parley_kit::events::consumer::apply;
use parley_kit::events::contracts::{
    AccountPrivacyChanged, BlockChanged, ChatCreated, ChatMessage, ChatReceipt, CommentChanged,
    CommentCreated, EmailVerified, MessageReceived, MessageSent, PostChanged, PostCreated,
    PostDeleted, UserBlocked, UserRegistered, VoteCast, VoteSubmitted,
};
use parley_kit::events::{Event, EventEnvelope};
use parley_kit::testing::{config, envelope, temp_dir};
use parley_kit::Domain;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::projection::Projection;
use crate::store::{notification, push_job, push_subscription};
use crate::Notifications;

struct World {
    db: DatabaseConnection,
    data_dir: std::path::PathBuf,
    handler: Projection,
    position: i64,
    runtime: parley_kit::Runtime,
}

impl World {
    async fn start() -> World {
        let data_dir = temp_dir("notifications");
        let (runtime, _) = Notifications::start(config(Notifications::NAME, data_dir.clone()))
            .await
            .expect("start");
        World {
            db: runtime.db.clone(),
            data_dir,
            // Held messages wait an hour: only the test releases them (the subgraph's own task would not).
            handler: Projection {
                grace: chrono::Duration::hours(1),
            },
            position: 0,
            runtime,
        }
    }

    fn envelope<E: Event>(&mut self, event: E) -> EventEnvelope {
        self.position += 1;
        envelope(self.position, "x", event)
    }

    async fn deliver(&self, event: &EventEnvelope) {
        apply(&self.db, &event.source, &self.handler, event)
            .await
            .expect("applied");
    }

    async fn apply<E: Event>(&mut self, event: E) -> EventEnvelope {
        let event = self.envelope(event);
        self.deliver(&event).await;
        event
    }

    async fn user(&mut self, nickname: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.apply(UserRegistered {
            user_id: id,
            nickname: nickname.into(),
            avatar_url: None,
            ..Default::default()
        })
        .await;
        id
    }

    async fn of(&self, recipient: Uuid) -> Vec<notification::Model> {
        notification::Entity::find()
            .filter(notification::Column::RecipientId.eq(recipient))
            .all(&self.db)
            .await
            .expect("read")
    }
}

fn post(author: Uuid, mentions: &[&str]) -> PostChanged {
    PostChanged {
        post_id: Uuid::now_v7(),
        author_id: author,
        topic_id: None,
        created_at: Utc::now(),
        score: 0,
        mentions: mentions.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    }
}

fn comment(post: &PostChanged, author: Uuid) -> CommentChanged {
    CommentChanged {
        comment_id: Uuid::now_v7(),
        post_id: post.post_id,
        parent_id: None,
        author_id: author,
        post_author_id: post.author_id,
        parent_author_id: None,
        mentions: Vec::new(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_redelivered_event_tells_once_mails_once_pushes_once() {
    let mut w = World::start().await;
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    w.apply(EmailVerified {
        user_id: alice,
        email: "alice@example.com".into(),
    })
    .await;
    push_subscription::Entity::insert(push_subscription::ActiveModel {
        endpoint: Set("https://push.example.com/alice".into()),
        user_id: Set(alice),
        p256dh: Set("k".into()),
        auth: Set("a".into()),
        created_at: Set(Utc::now()),
    })
    .exec(&w.db)
    .await
    .expect("subscription");
    let p = post(alice, &[]);
    w.apply(PostCreated(p.clone())).await;
    let event = w.envelope(CommentCreated(comment(&p, bob)));
    w.deliver(&event).await;
    w.deliver(&event).await;
    let told = w.of(alice).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].count, 1, "the second delivery did not fold in");
    assert_eq!(
        push_job::Entity::find().count(&w.db).await.expect("count"),
        1
    );

    let links = std::sync::Arc::new(crate::digest::Links::new(vec![1; 32], "http://parley.test"));
    let digests = crate::digest::Digests {
        db: w.db.clone(),
        events: w.runtime.events.clone(),
        mailer: parley_kit::mail::Mailer::new("p@parley.test", None, w.data_dir.join("digests"))
            .expect("mailer"),
        links,
        interval: chrono::Duration::zero(),
    };
    assert_eq!(digests.send_due().await.expect("digest"), 1);
    assert_eq!(
        digests.send_due().await.expect("digest"),
        0,
        "nothing mailed twice"
    );
    let mails: Vec<_> = std::fs::read_dir(w.data_dir.join("digests"))
        .expect("dir")
        .collect();
    assert_eq!(mails.len(), 1);
}

#[tokio::test]
async fn comments_group_and_the_rule_holds() {
    let mut w = World::start().await;
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let carol = w.user("carol").await;
    let eve = w.user("eve").await;
    let p = post(alice, &[]);
    w.apply(PostCreated(p.clone())).await;
    for who in [bob, carol, bob, carol] {
        w.apply(CommentCreated(comment(&p, who))).await;
    }
    // Her own comment tells her nothing.
    w.apply(CommentCreated(comment(&p, alice))).await;
    let told = w.of(alice).await;
    assert_eq!(told.len(), 1, "one group per post");
    assert_eq!(told[0].count, 4);
    assert_eq!(crate::notify::actors(&told[0]), [carol, bob]);

    // Across a block: nothing, and the blocked user's name leaves what was there.
    w.apply(UserBlocked(BlockChanged {
        blocker_id: alice,
        blocked_id: carol,
    }))
    .await;
    assert_eq!(crate::notify::actors(&w.of(alice).await[0]), [bob]);
    w.apply(PostCreated(post(carol, &["alice"]))).await;
    assert_eq!(w.of(alice).await.len(), 1, "no mention across a block");

    // A private author's mention reaches only followers.
    w.apply(AccountPrivacyChanged {
        user_id: eve,
        private: true,
    })
    .await;
    w.apply(PostCreated(post(eve, &["bob"]))).await;
    assert!(w.of(bob).await.is_empty(), "bob cannot see eve's post");

    // A deleted post takes its notifications with it.
    w.apply(PostDeleted(p.clone())).await;
    assert!(w.of(alice).await.is_empty());
}

#[tokio::test]
async fn a_milestone_is_told_once() {
    let mut w = World::start().await;
    let alice = w.user("alice").await;
    let p = post(alice, &[]);
    w.apply(PostCreated(p.clone())).await;
    for score in [9, 10, 11, 10, 12, 100] {
        w.apply(VoteSubmitted(VoteCast {
            user_id: Uuid::now_v7(),
            target_id: p.post_id,
            target_kind: "post".into(),
            post_id: p.post_id,
            value: 1,
            score,
            upvotes: score,
            downvotes: 0,
        }))
        .await;
    }
    let mut milestones: Vec<_> = w.of(alice).await.iter().map(|n| n.milestone).collect();
    milestones.sort();
    assert_eq!(milestones, [Some(10), Some(100)]);
}

#[tokio::test]
async fn a_message_taken_live_is_not_told_one_left_waiting_is() {
    let mut w = World::start().await;
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let carol = w.user("carol").await;
    let chat = Uuid::now_v7();
    w.apply(ChatCreated {
        chat_id: chat,
        kind: "GROUP".into(),
        creator_id: alice,
        member_ids: vec![alice, bob, carol],
    })
    .await;
    assert_eq!(w.of(bob).await[0].kind, "CHAT_INVITE");
    let message = |seq: i64| ChatMessage {
        message_id: Uuid::now_v7(),
        chat_id: chat,
        seq,
        author_id: alice,
        kind: "TEXT".into(),
        text: Some("hello".into()),
        created_at: Utc::now(),
        ..ChatMessage::default()
    };
    let first = message(1);
    w.apply(MessageSent(first.clone())).await;
    w.apply(MessageSent(message(2))).await;
    // carol's app took them (delivered up to 2); bob's did not.
    w.apply(MessageReceived(ChatReceipt {
        chat_id: chat,
        user_id: carol,
        message_id: first.message_id,
        seq: 2,
    }))
    .await;
    assert_eq!(
        crate::held::release_due(&w.db, Utc::now() + chrono::Duration::hours(2))
            .await
            .expect("release"),
        1
    );
    let bobs: Vec<_> = w
        .of(bob)
        .await
        .into_iter()
        .filter(|n| n.kind == "MESSAGE")
        .collect();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].count, 2, "one notification counting the messages");
    assert!(w.of(carol).await.iter().all(|n| n.kind != "MESSAGE"));
}
