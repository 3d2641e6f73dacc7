//! The users subgraph schema: `Query`, `Mutation` and the `User` entity.

mod mutation;
mod query;
mod user;

use std::sync::Arc;

use async_graphql::{EmptySubscription, Schema};
use sea_orm::DatabaseConnection;

pub use mutation::Mutation;
pub use query::Query;
pub use user::UserLoader;

use crate::accounts::Accounts;
use crate::oauth::SignIn;

pub type UsersSchema = Schema<Query, Mutation, EmptySubscription>;

/// The schema without data, for printing the SDL.
pub fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation, EmptySubscription).enable_federation()
}

/// The schema with its services.
pub fn build(db: DatabaseConnection, accounts: Arc<Accounts>, sign_in: Arc<SignIn>) -> UsersSchema {
    builder()
        .data(parley_kit::server::loader(UserLoader(db.clone())))
        .data(db)
        .data(accounts)
        .data(sign_in)
        .finish()
}
