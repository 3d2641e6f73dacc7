//! IDs: UUIDv7, exposed as GraphQL `ID`. A malformed id is `BAD_USER_INPUT`.

use async_graphql::ID;
use uuid::Uuid;

use crate::error::coded;
use crate::ErrorCode;

pub fn parse_id(id: &ID) -> async_graphql::Result<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| {
        coded(
            ErrorCode::BadUserInput,
            format!("invalid id: {}", id.as_str()),
        )
    })
}

pub fn to_id(id: Uuid) -> ID {
    ID(id.to_string())
}
