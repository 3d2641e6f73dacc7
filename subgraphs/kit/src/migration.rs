//! Helpers for the domains' migration crates.

use sea_orm_migration::prelude::*;

/// Creates index `name` on `table` over `cols`, in order.
pub async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
) -> Result<(), DbErr> {
    create(m, name, table, cols, false).await
}

/// Creates unique index `name` on `table` over `cols`, in order.
pub async fn unique_index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
) -> Result<(), DbErr> {
    create(m, name, table, cols, true).await
}

async fn create(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    if unique {
        stmt.unique();
    }
    for col in cols {
        stmt.col(col);
    }
    m.create_index(stmt.to_owned()).await
}
