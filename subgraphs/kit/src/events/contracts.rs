//! Event payloads: the contract between subgraphs. A producer writes these with [`super::append`]; a consumer
//! reads them with [`super::EventEnvelope::decode`]. Fields are only ever added (consumers ignore unknown ones).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Event names (DESIGN §3).
pub mod kind {
    pub const USER_REGISTERED: &str = "UserRegistered";
    pub const USER_LOGGED_IN: &str = "UserLoggedIn";
    pub const USER_PROFILE_UPDATED: &str = "UserProfileUpdated";
    pub const SUBSCRIPTION_REQUEST_SENT: &str = "SubscriptionRequestSent";
    pub const SUBSCRIPTION_REQUEST_ACCEPTED: &str = "SubscriptionRequestAccepted";
    pub const SUBSCRIPTION_REQUEST_DECLINED: &str = "SubscriptionRequestDeclined";
    pub const SUBSCRIPTION_REMOVED: &str = "SubscriptionRemoved";
    pub const USER_BLOCKED: &str = "UserBlocked";
    pub const USER_UNBLOCKED: &str = "UserUnblocked";
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub nickname: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserLoggedIn {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserProfileUpdated {
    pub user_id: Uuid,
    pub nickname: String,
}

/// A follow relation changed: `follower_id` → `followee_id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FollowChanged {
    pub follower_id: Uuid,
    pub followee_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockChanged {
    pub blocker_id: Uuid,
    pub blocked_id: Uuid,
}
