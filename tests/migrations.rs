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
    let admin = Database::connect(&admin_url).await.expect("postgres");
    for name in parley::subgraphs::ALL {
        let db_name = format!("parley_migrate_{name}_{}", uuid::Uuid::now_v7().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{db_name}\""))
            .await
            .expect("create db");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let db = Database::connect(format!("{base}/{db_name}"))
            .await
            .expect("connect");
        round_trip_named(name, &db).await;
    }
}
