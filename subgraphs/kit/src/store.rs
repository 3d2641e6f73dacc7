//! Store bootstrap: connect to SQLite (default, a file in the data dir) or PostgreSQL (`DATABASE_URL`), then
//! bring the domain's schema up to date with its migrations (and the kit's own tables, [`WithKitTables`]).

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

use crate::events::tables::WithKitTables;
use crate::ServiceConfig;

/// Creates `dir` (and its parents) if missing, and makes it owner-only (0700 on Unix): a data dir holds the
/// users subgraph's private signing key (in its store) and, without SMTP, mails with reset tokens.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A secret made once and kept in `dir/file` (owner-only): 64 random hex characters, read back on later
/// starts. For the embedded mode's keys (media's link key, the local payment provider's webhook secret);
/// production sets them by configuration so every instance shares one.
pub fn local_secret(dir: &std::path::Path, file: &str) -> std::io::Result<Vec<u8>> {
    let path = dir.join(file);
    if let Ok(key) = std::fs::read(&path) {
        if key.len() >= 32 {
            return Ok(key);
        }
    }
    private_dir(dir)?;
    let key: Vec<u8> = (0..64)
        .map(|_| {
            let byte: u8 = rand::random();
            b"0123456789abcdef"[usize::from(byte % 16)]
        })
        .collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options.open(&path)?.write_all(&key)?;
    Ok(key)
}

/// Connects to the configured store and runs the domain's pending migrations.
pub async fn connect<M: MigratorTrait>(
    config: &ServiceConfig,
) -> Result<DatabaseConnection, DbErr> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        private_dir(&config.data_dir)
            .map_err(|e| DbErr::Custom(format!("cannot create data dir: {e}")))?;
    }
    connect_url::<M>(&url, config.db_pool).await
}

/// Connects to `url` and runs the pending migrations of the domain (`M`) and of the kit.
pub async fn connect_url<M: MigratorTrait>(
    url: &str,
    pool: u32,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(pool)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // SQLite allows one writer; WAL lets readers go on while it writes, busy_timeout makes writers queue.
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    }
    if url.starts_with("postgres") {
        let db = Database::connect(options).await?;
        migrate_exclusively::<WithKitTables<M>>(url, &db).await?;
        return Ok(db);
    }
    // SQLite (one file, one process): migrate on a connection of its own, closed before the pool opens. A
    // pooled connection that read the schema part-way through the migrations would keep that schema, and
    // SQLite matches an `ON CONFLICT` target against its cached schema while preparing, before it notices
    // the schema changed: an index a later migration made would be "no such constraint" on it.
    let mut single = options.clone();
    single.max_connections(1);
    let migrating = Database::connect(single).await?;
    WithKitTables::<M>::up(&migrating, None).await?;
    migrating.close().await?;
    Database::connect(options).await
}

/// The advisory lock instances of a subgraph take around their migrations.
const MIGRATION_LOCK: i64 = 0x7061_726c_6579; // "parley"

/// Runs the migrations while holding a PostgreSQL advisory lock on a connection of its own, so instances
/// starting together migrate one after the other (the later ones find nothing left to do).
async fn migrate_exclusively<M: MigratorTrait>(
    url: &str,
    db: &DatabaseConnection,
) -> Result<(), DbErr> {
    use sea_orm::ConnectionTrait;
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let lock = Database::connect(options).await?;
    lock.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .await?;
    let result = M::up(db, None).await;
    let _ = lock
        .execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .await;
    let _ = lock.close().await;
    result
}

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction that reads
/// and then writes can fail with "database is locked" when another writer got in between, while an immediate
/// one waits its turn (busy_timeout). PostgreSQL ignores the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Rows written per statement by [`set_by_key`] (two bind values each, well under every engine's limit).
const BULK_CHUNK: usize = 500;

/// Sets `column` of many rows, each found by `key`, to its own value: one
/// `UPDATE … SET column = CASE key WHEN … END WHERE key IN (…)` per chunk of rows, instead of a statement per
/// row (the hot-rank decay rewrites every post of the last week).
pub async fn set_by_key<E, C>(
    db: &C,
    key: E::Column,
    column: E::Column,
    values: &[(uuid::Uuid, f64)],
) -> Result<(), DbErr>
where
    E: sea_orm::EntityTrait,
    C: sea_orm::ConnectionTrait,
{
    use sea_orm::sea_query::{CaseStatement, Expr};
    use sea_orm::{ColumnTrait, QueryFilter};

    for chunk in values.chunks(BULK_CHUNK) {
        let case = chunk
            .iter()
            .fold(CaseStatement::new(), |case, (id, value)| {
                case.case(key.eq(*id), Expr::value(*value))
            })
            .finally(Expr::col(column));
        E::update_many()
            .col_expr(column, case.into())
            .filter(key.is_in(chunk.iter().map(|(id, _)| *id)))
            .exec(db)
            .await?;
    }
    Ok(())
}
