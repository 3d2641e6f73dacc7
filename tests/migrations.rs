//! Every domain's migrations go up, all the way down, and up again, on SQLite and on PostgreSQL.

mod support;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

async fn round_trip<M: MigratorTrait>(db: &DatabaseConnection) {
    M::up(db, None).await.expect("up");
    M::down(db, None).await.expect("down");
    M::up(db, None).await.expect("up again");
    assert!(M::get_pending_migrations(db)
        .await
        .expect("pending")
        .is_empty());
}

async fn round_trip_named(name: &str, db: &DatabaseConnection) {
    match name {
        "users" => round_trip::<parley_users::Migrator>(db).await,
        "social" => round_trip::<parley_social::Migrator>(db).await,
        "posts" => round_trip::<parley_posts::Migrator>(db).await,
        "feed" => round_trip::<parley_feed::Migrator>(db).await,
        "chat" => round_trip::<parley_chat::Migrator>(db).await,
        other => panic!("no migrator listed here for {other}"),
    }
}

#[tokio::test]
async fn migrations_are_reversible_on_sqlite() {
    let dir = parley_kit::testing::temp_dir("migrations");
    for name in parley::subgraphs::ALL {
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.join(format!("{name}.db")).display()
        );
        let db = Database::connect(&url).await.expect("sqlite");
        round_trip_named(name, &db).await;
    }
}

#[tokio::test]
async fn migrations_are_reversible_on_postgres() {
    let Some(admin_url) = support::postgres_url() else {
        return;
    };
    for name in parley::subgraphs::ALL {
        let url = support::fresh_postgres_db(&admin_url, &format!("migrate_{name}")).await;
        let db = Database::connect(url).await.expect("connect");
        round_trip_named(name, &db).await;
    }
}

#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let Some(admin_url) = support::postgres_url() else {
        return;
    };
    let url = support::fresh_postgres_db(&admin_url, "together").await;
    // Four instances of chat start at once against an empty database.
    let starts = (0..4).map(|_| parley_kit::store::connect_url::<parley_chat::Migrator>(&url, 2));
    for started in futures::future::join_all(starts).await {
        started.expect("every instance starts");
    }
    let db = Database::connect(&url).await.expect("connect");
    let applied = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n, count(DISTINCT version) AS d FROM seaql_migrations",
        ))
        .await
        .expect("count")
        .expect("row");
    let (n, d): (i64, i64) = (
        applied.try_get("", "n").expect("n"),
        applied.try_get("", "d").expect("d"),
    );
    assert_eq!(n, d, "no migration recorded twice");
    assert_eq!(
        n as usize,
        <parley_chat::Migrator as MigratorTrait>::migrations().len()
    );
}
