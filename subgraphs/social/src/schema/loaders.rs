//! Batched lookups behind `User`'s counts and flags, so a list of users costs one query per field, not one
//! per user.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::SocialError;
use crate::lists;

pub struct SocialLoader(pub DatabaseConnection);

/// Follower (true) or following (false) count of a user.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountKey(pub Uuid, pub bool);

/// Does `viewer` follow (`Follows`) or block (`Blocks`) `target`?
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlagKey {
    pub viewer: Uuid,
    pub target: Uuid,
    pub flag: Flag,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    Follows,
    Blocks,
}

/// Is the account private?
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrivateKey(pub Uuid);

type LoadResult<K, V> = Result<HashMap<K, V>, Arc<SocialError>>;

impl Loader<CountKey> for SocialLoader {
    type Value = i64;
    type Error = Arc<SocialError>;

    async fn load(&self, keys: &[CountKey]) -> LoadResult<CountKey, i64> {
        let mut out = HashMap::new();
        for followers in [true, false] {
            let users: Vec<Uuid> = keys
                .iter()
                .filter(|k| k.1 == followers)
                .map(|k| k.0)
                .collect();
            if users.is_empty() {
                continue;
            }
            let counts = lists::counts(&self.0, &users, followers)
                .await
                .map_err(Arc::new)?;
            for user in users {
                out.insert(
                    CountKey(user, followers),
                    counts.get(&user).copied().unwrap_or(0),
                );
            }
        }
        Ok(out)
    }
}

impl Loader<FlagKey> for SocialLoader {
    type Value = bool;
    type Error = Arc<SocialError>;

    async fn load(&self, keys: &[FlagKey]) -> LoadResult<FlagKey, bool> {
        let mut groups: HashMap<(Uuid, Flag), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry((key.viewer, key.flag))
                .or_default()
                .push(key.target);
        }
        let mut out = HashMap::new();
        for ((viewer, flag), targets) in groups {
            let hits = match flag {
                Flag::Follows => lists::followed_by(&self.0, viewer, &targets).await,
                Flag::Blocks => lists::blocked_by(&self.0, viewer, &targets).await,
            }
            .map_err(Arc::new)?;
            for target in targets {
                out.insert(
                    FlagKey {
                        viewer,
                        target,
                        flag,
                    },
                    hits.contains(&target),
                );
            }
        }
        Ok(out)
    }
}

impl Loader<PrivateKey> for SocialLoader {
    type Value = bool;
    type Error = Arc<SocialError>;

    async fn load(&self, keys: &[PrivateKey]) -> LoadResult<PrivateKey, bool> {
        let users: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let private = lists::private(&self.0, &users).await.map_err(Arc::new)?;
        Ok(users
            .into_iter()
            .map(|u| (PrivateKey(u), private.contains(&u)))
            .collect())
    }
}
