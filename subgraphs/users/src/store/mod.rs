//! sea-orm entities of the users store (tables created by `migration-users`).

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Lower-cased; unique.
        pub email: String,
        /// As the user typed it.
        pub nickname: String,
        /// Lower-cased nickname: uniqueness and prefix search ignore case.
        pub nickname_key: String,
        pub name: String,
        /// Lower-cased name for prefix search.
        pub name_key: String,
        pub password_hash: String,
        pub bio: Option<String>,
        /// The lasting link to the avatar's SMALL size (media's), while `avatar_id` names one.
        pub avatar_url: Option<String>,
        pub avatar_id: Option<Uuid>,
        pub status: Option<String>,
        pub role: parley_kit::Role,
        pub email_verified: bool,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        pub last_seen_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod session {
    use sea_orm::entity::prelude::*;

    /// One refresh token. Tokens rotated from one login share a `family_id` (the session).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub family_id: Uuid,
        pub user_id: Uuid,
        /// SHA-256 of the token; the token itself is never stored.
        pub token_hash: String,
        pub created_at: ChronoDateTimeUtc,
        pub expires_at: ChronoDateTimeUtc,
        /// Set when this token was exchanged for a new one; presenting it again is reuse.
        pub replaced_at: Option<ChronoDateTimeUtc>,
        pub revoked_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod user_token {
    use sea_orm::entity::prelude::*;

    /// A single-use, expiring token sent by mail (password reset, email verification).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub user_id: Uuid,
        pub purpose: String,
        pub expires_at: ChronoDateTimeUtc,
        pub used_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod signing_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        /// PKCS#8 DER, base64.
        #[sea_orm(column_type = "Text")]
        pub private_key: String,
        /// Raw Ed25519 public key, base64url (the JWK `x`).
        pub public_key: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod oauth_identity {
    use sea_orm::entity::prelude::*;

    /// An account's identity at an OpenID Connect provider: the provider's `sub` for it. One per provider
    /// and account; one account per identity.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_identities")]
    pub struct Model {
        /// The provider's configured name (`PARLEY_OIDC_<NAME>_…`, lower-cased).
        #[sea_orm(primary_key, auto_increment = false)]
        pub provider: String,
        /// The ID token's `sub`: stable for the account at that provider.
        #[sea_orm(primary_key, auto_increment = false)]
        pub subject: String,
        pub user_id: Uuid,
        /// The email the provider gave at linking, if it said it was verified.
        pub email: Option<String>,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod oauth_attempt {
    use sea_orm::entity::prelude::*;

    /// A sign-in under way: what finishing it needs, kept until it finishes or expires (10 minutes).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_attempts")]
    pub struct Model {
        /// SHA-256 of the `state` handed to the client; the state itself is never stored.
        #[sea_orm(primary_key, auto_increment = false)]
        pub state_hash: String,
        pub provider: String,
        /// Where the provider sends the browser back; the code is bound to it.
        pub redirect_uri: String,
        pub pkce_verifier: String,
        pub nonce: String,
        /// Who started it signed in (a link must be finished by them).
        pub user_id: Option<Uuid>,
        pub expires_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
