//! References to other domains' entities: only their key, for a domain that points at what another owns (a
//! notification's post, a search hit). The router asks the owner for the rest, and the owner's rule applies
//! there. No descriptions: a reference type takes none. ([`crate::known_media::MediaRef`] is media's.)

use async_graphql::{SimpleObject, ID};
use uuid::Uuid;

macro_rules! references {
    ($($rust:ident = $graphql:literal;)+) => {
        $(
            #[derive(SimpleObject, Clone, Debug)]
            #[graphql(name = $graphql, unresolvable = "id")]
            pub struct $rust {
                pub id: ID,
            }

            impl $rust {
                pub fn new(id: Uuid) -> Self {
                    Self {
                        id: crate::ids::to_id(id),
                    }
                }
            }
        )+
    };
}

references! {
    UserRef = "User";
    PostRef = "Post";
    CommentRef = "Comment";
    ChatRef = "Chat";
    MessageRef = "Message";
}
