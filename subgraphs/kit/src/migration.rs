//! Helpers for the domains' migration crates.

use sea_orm_migration::prelude::*;

/// Creates index `name` on `table` over `cols`, in order.
pub async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col);
    }
    m.create_index(stmt.to_owned()).await
}

/// Creates unique index `name` on `table` over `cols`, in order.
pub async fn unique_index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table).unique();
    for col in cols {
        stmt.col(col);
    }
    m.create_index(stmt.to_owned()).await
}
