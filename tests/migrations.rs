//! Every domain's migrations go up, all the way down, and up again, on SQLite and on PostgreSQL.

use parley_harness as support;

use parley_kit::Subgraph;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// Up, all the way down (the kit's tables too), up again.
async fn round_trip(subgraph: &dyn Subgraph, db: &DatabaseConnection) {
    let name = subgraph.name();
    subgraph.migrate(db, None).await.expect("up");
    subgraph.migrate(db, Some(u32::MAX)).await.expect("down");
    let tables = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
                }
                _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            },
        ))
        .await
        .expect("tables");
    let left: Vec<String> = tables
        .iter()
        .map(|row| row.try_get::<String>("", "name").expect("name"))
        .filter(|table| table != "seaql_migrations")
        .collect();
    assert!(left.is_empty(), "{name}: tables left after down: {left:?}");
    subgraph.migrate(db, None).await.expect("up again");
    assert_eq!(
        subgraph.pending_migrations(db).await.expect("pending"),
        0,
        "{name}"
    );
}

#[tokio::test]
async fn migrations_are_reversible_on_sqlite() {
    let dir = parley_kit::testing::temp_dir("migrations");
    for subgraph in parley::subgraphs::ALL {
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.join(format!("{}.db", subgraph.name())).display()
        );
        let db = Database::connect(&url).await.expect("sqlite");
        round_trip(*subgraph, &db).await;
    }
}

#[tokio::test]
async fn migrations_are_reversible_on_postgres() {
    let Some(admin_url) = support::postgres_url() else {
        return;
    };
    for subgraph in parley::subgraphs::ALL {
        let label = format!("migrate_{}", subgraph.name());
        let url = support::fresh_postgres_db(&admin_url, &label).await;
        let db = Database::connect(url).await.expect("connect");
        round_trip(*subgraph, &db).await;
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
        <parley_kit::events::WithKitTables<parley_chat::Migrator> as sea_orm_migration::MigratorTrait>::migrations().len()
    );
}
