//! Migrations of the search subgraph's store: the documents the index is built from (one row per user, post,
//! comment and message, with a change number the index tails), the clock that numbers changes, the chat
//! members (who may find a message), and the visibility rule's tables (blocks, follows, private accounts).
//! The tantivy index itself lives in files beside the store and is rebuilt from `search_documents`.

use parley_kit::migration::index;
pub use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateSearch)]
    }
}

#[derive(DeriveIden)]
enum SearchDocuments {
    Table,
    Id,
    Kind,
    AuthorId,
    PostId,
    PostAuthorId,
    ChatId,
    Topic,
    Tags,
    Title,
    Body,
    Score,
    CreatedAt,
    Deleted,
    Change,
}

#[derive(DeriveIden)]
enum SearchClock {
    Table,
    Id,
    Change,
}

#[derive(DeriveIden)]
enum SearchChatMembers {
    Table,
    ChatId,
    UserId,
}

#[derive(DeriveIden)]
enum Blocks {
    Table,
}

struct CreateSearch;

impl MigrationName for CreateSearch {
    fn name(&self) -> &str {
        "m0001_create_search"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSearch {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SearchDocuments::Table)
                .col(uuid(SearchDocuments::Id).primary_key())
                .col(string(SearchDocuments::Kind))
                .col(uuid(SearchDocuments::AuthorId))
                .col(uuid_null(SearchDocuments::PostId))
                .col(uuid_null(SearchDocuments::PostAuthorId))
                .col(uuid_null(SearchDocuments::ChatId))
                .col(string_null(SearchDocuments::Topic))
                .col(text(SearchDocuments::Tags))
                .col(text(SearchDocuments::Title))
                .col(text(SearchDocuments::Body))
                .col(big_integer(SearchDocuments::Score))
                .col(timestamp_with_time_zone(SearchDocuments::CreatedAt))
                .col(boolean(SearchDocuments::Deleted))
                .col(big_integer(SearchDocuments::Change))
                .to_owned(),
        )
        .await?;
        // The index tails changes in order.
        index(
            m,
            "idx_search_documents_change",
            SearchDocuments::Table,
            vec![SearchDocuments::Change.into_iden()],
        )
        .await?;
        // A privacy change re-indexes an author's documents; a deleted post takes its comments.
        index(
            m,
            "idx_search_documents_author",
            SearchDocuments::Table,
            vec![SearchDocuments::AuthorId.into_iden()],
        )
        .await?;
        index(
            m,
            "idx_search_documents_post_author",
            SearchDocuments::Table,
            vec![SearchDocuments::PostAuthorId.into_iden()],
        )
        .await?;
        index(
            m,
            "idx_search_documents_post",
            SearchDocuments::Table,
            vec![SearchDocuments::PostId.into_iden()],
        )
        .await?;
        // One row: the last change number handed out (its row lock orders concurrent writers' changes).
        m.create_table(
            Table::create()
                .table(SearchClock::Table)
                .col(integer(SearchClock::Id).primary_key())
                .col(big_integer(SearchClock::Change))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(SearchClock::Table)
                .columns([SearchClock::Id, SearchClock::Change])
                .values_panic([1.into(), 0.into()])
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SearchChatMembers::Table)
                .col(uuid(SearchChatMembers::ChatId))
                .col(uuid(SearchChatMembers::UserId))
                .primary_key(
                    Index::create()
                        .col(SearchChatMembers::UserId)
                        .col(SearchChatMembers::ChatId),
                )
                .to_owned(),
        )
        .await?;
        parley_kit::blocks::create_table(m).await?;
        parley_kit::audience::create_follows(m).await?;
        parley_kit::audience::create_private_accounts(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SearchDocuments::Table.into_iden(),
            SearchClock::Table.into_iden(),
            SearchChatMembers::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        parley_kit::audience::drop_follows(m).await?;
        parley_kit::audience::drop_private_accounts(m).await?;
        m.drop_table(Table::drop().table(Blocks::Table).to_owned())
            .await
    }
}
