//! The feed subgraph schema: `Query.feed`, a page of `Post` references the router completes from posts.

use async_graphql::connection::Connection;
use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Enum, Object, Schema, SimpleObject, ID,
};
use parley_kit::audience::{authors_visible_to, Viewer};
use parley_kit::auth::require_identity;
use parley_kit::ids::to_id;
use parley_kit::pagination::{self, connection, keyset_desc, Page, RankType};
use parley_kit::ApiResult;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use crate::store::timeline;

pub type FeedSchema = Schema<Query, EmptyMutation, EmptySubscription>;

pub fn builder() -> async_graphql::SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription).enable_federation()
}

pub fn build(db: DatabaseConnection) -> FeedSchema {
    builder().data(db).finish()
}

/// A post, owned by the posts subgraph; feed only names it.
#[derive(SimpleObject)]
#[graphql(unresolvable)]
pub struct Post {
    pub id: ID,
}

/// How a list of posts is ordered (the same values as posts' `PostSort`).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PostSort {
    /// Lemmy's hot rank: score decayed by age.
    #[default]
    Hot,
    /// Newest first.
    New,
    /// Highest score first, within `period`.
    Top,
    /// Most evenly split votes first.
    Controversial,
}

pub struct Query;

#[Object]
impl Query {
    /// The caller's home feed: posts of the people they follow and the topics they subscribed, ranked
    /// (`HOT` by default) and keyset-paginated.
    async fn feed(
        &self,
        ctx: &Context<'_>,
        sort: Option<PostSort>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<Connection<String, Post>> {
        let me = require_identity(ctx)?;
        let page = Page::new(first, after)?;
        let sort = sort.unwrap_or_default();
        let rank = match sort {
            PostSort::New => None,
            PostSort::Hot => Some((timeline::Column::HotRank, RankType::Float)),
            PostSort::Top => Some((timeline::Column::Score, RankType::Int)),
            PostSort::Controversial => Some((timeline::Column::ControversyRank, RankType::Float)),
        };
        // The timeline holds what was fanned out; whose posts the reader may see is decided now (an author
        // who went private since shows only to followers).
        let select = timeline::Entity::find()
            .filter(timeline::Column::UserId.eq(me.user_id))
            .filter(authors_visible_to(
                &Viewer::of(Some(me)),
                timeline::Column::AuthorId,
            ));
        let rows = keyset_desc(select, rank, timeline::Column::PostId, page.after.as_ref())?
            .limit(page.limit())
            .all(ctx.data::<DatabaseConnection>()?)
            .await
            .map_err(|e| parley_kit::error::to_graphql(crate::FeedError::Store(e)))?;
        Ok(connection(
            &page,
            rows,
            |row| {
                let rank = match sort {
                    PostSort::New => None,
                    PostSort::Hot => Some(row.hot_rank.to_string()),
                    PostSort::Top => Some(row.score.to_string()),
                    PostSort::Controversial => Some(row.controversy_rank.to_string()),
                };
                pagination::sort_key(rank, row.post_id)
            },
            |row| Post {
                id: to_id(row.post_id),
            },
        ))
    }
}
