//! Search against a real store and index: events applied as the consumer applies them, the index caught
//! up, then searched as the schema searches.

use chrono::Utc;
use parley_kit::audience::Viewer;
use parley_kit::events::consumer::apply;
use parley_kit::events::contracts::{
    AccountPrivacyChanged, CommentChanged, CommentCreated, PostChanged, PostCreated, PostDeleted,
};
use parley_kit::events::Event;
use parley_kit::testing::{config, envelope, temp_dir};
use parley_kit::Domain;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::access::Access;
use crate::index::Shelf;
use crate::projection::Projection;
use crate::search::{run, Filter, Found, Sort};
use crate::Search;

struct World {
    db: DatabaseConnection,
    dir: std::path::PathBuf,
    shelf: std::sync::Arc<Shelf>,
    handler: Projection,
    position: i64,
    _runtime: parley_kit::Runtime,
}

impl World {
    async fn start() -> World {
        let dir = temp_dir("search");
        let (runtime, _) = Search::start(config(Search::NAME, dir.clone()))
            .await
            .expect("start");
        let db = runtime.db.clone();
        let shelf = Shelf::open(dir.join("index"), &db).await.expect("index");
        World {
            db,
            dir,
            shelf,
            handler: Projection {
                wake: Default::default(),
            },
            position: 0,
            _runtime: runtime,
        }
    }

    async fn apply<E: Event>(&mut self, event: E) {
        self.position += 1;
        let event = envelope(self.position, "x", event);
        apply(&self.db, &event.source, &self.handler, &event)
            .await
            .expect("applied");
    }

    async fn find(&self, query: &str, viewer: Viewer) -> Found {
        self.shelf
            .current()
            .catch_up(&self.db)
            .await
            .expect("caught up");
        let access = Access::of(&self.db, &viewer).await.expect("access");
        let parsed = crate::query::parse(query).expect("parses");
        run(
            &self.shelf.current(),
            &parsed,
            &Filter::default(),
            &access,
            Sort::Relevance,
            0,
            20,
        )
        .expect("searched")
    }
}

fn post(author: Uuid, title: &str, body: &str) -> PostChanged {
    PostChanged {
        post_id: Uuid::now_v7(),
        author_id: author,
        created_at: Utc::now(),
        title: title.into(),
        body: body.into(),
        ..Default::default()
    }
}

fn viewer(id: Uuid) -> Viewer {
    Viewer {
        id: Some(id),
        staff: false,
    }
}

#[tokio::test]
async fn typos_prefixes_and_highlights() {
    let mut w = World::start().await;
    let alice = Uuid::now_v7();
    let p = post(
        alice,
        "Engine oil",
        "Regular <maintenance> keeps the engine alive",
    );
    w.apply(PostCreated(p.clone())).await;
    let found = w.find("engnie oil", Viewer::ANONYMOUS).await;
    assert_eq!(found.hits.len(), 1);
    assert_eq!(found.hits[0].id, p.post_id);
    let found = w.find("mainten", Viewer::ANONYMOUS).await;
    assert_eq!(found.hits.len(), 1);
    let body = &found.hits[0]
        .highlights
        .iter()
        .find(|(field, _)| field == "body")
        .expect("body highlight")
        .1;
    assert!(body.contains("&lt;<mark>maintenance</mark>&gt;"), "{body}");
    assert!(w.find("the of", Viewer::ANONYMOUS).await.hits.is_empty());
    assert!(w
        .find("oil -engine", Viewer::ANONYMOUS)
        .await
        .hits
        .is_empty());
    assert_eq!(
        w.find("\"engine oil\"", Viewer::ANONYMOUS).await.hits.len(),
        1
    );
    assert!(w
        .find("\"oil engine\"", Viewer::ANONYMOUS)
        .await
        .hits
        .is_empty());
}

#[tokio::test]
async fn private_authors_deleted_posts_and_reindexing() {
    let mut w = World::start().await;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let p = post(alice, "Carburetor tuning", "idle screw");
    w.apply(PostCreated(p.clone())).await;
    w.apply(CommentCreated(CommentChanged {
        comment_id: Uuid::now_v7(),
        post_id: p.post_id,
        author_id: bob,
        post_author_id: alice,
        body: "carburetor jets too".into(),
        ..Default::default()
    }))
    .await;
    assert_eq!(w.find("carburetor", Viewer::ANONYMOUS).await.hits.len(), 2);
    w.apply(AccountPrivacyChanged {
        user_id: alice,
        private: true,
    })
    .await;
    // Neither the post nor the comment on it, for strangers; both for alice.
    assert!(w.find("carburetor", viewer(bob)).await.hits.is_empty());
    assert_eq!(w.find("carburetor", viewer(alice)).await.hits.len(), 2);
    // A rebuilt index answers the same.
    let rebuilt = crate::index::build(&w.dir.join("index"), &w.db)
        .await
        .expect("rebuilt");
    assert_eq!(rebuilt.reader.searcher().num_docs(), 2);
    w.apply(PostDeleted(p.clone())).await;
    assert!(w.find("carburetor", viewer(alice)).await.hits.is_empty());
}
