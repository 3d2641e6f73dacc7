//! The events notifications applies — users', social's, posts' and chat's — each to the rule in
//! [`crate::rules`] that says who is told.

use async_trait::async_trait;
use parley_kit::audience;
use parley_kit::blocks;
use parley_kit::events::Handler;
use sea_orm::{DatabaseTransaction, DbErr};

use crate::rules::{self, BillingNews};

parley_kit::consumed! {
    pub enum NotificationsInput {
        UserRegistered, UserProfileUpdated, EmailVerified,
        UserBlocked, UserUnblocked, FollowRequested, FollowAccepted, FollowDeclined, FollowRemoved,
        AccountPrivacyChanged,
        PostCreated, PostDeleted, CommentCreated, CommentDeleted, VoteSubmitted, VoteUpdated,
        ChatCreated, ChatMemberAdded, ChatMemberRemoved, ChatSettingsChanged,
        MessageSent, MessageDeleted, MessageReceived, MessageRead,
        PaymentFailed, PaymentRefunded, BillingSubscriptionCanceled,
    }
}

/// Applies events; `grace` is how long a message is held before it notifies (see [`crate::held`]).
pub struct Projection {
    pub grace: chrono::Duration,
}

#[async_trait]
impl Handler for Projection {
    type Event = NotificationsInput;

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        event: NotificationsInput,
    ) -> Result<(), DbErr> {
        use NotificationsInput as E;
        match event {
            E::UserRegistered(u) => rules::nickname(txn, u.user_id, &u.nickname).await,
            E::UserProfileUpdated(u) => rules::nickname(txn, u.user_id, &u.nickname).await,
            E::EmailVerified(e) => rules::email(txn, e.user_id, &e.email).await,
            E::UserBlocked(b) => rules::blocked(txn, &b).await,
            E::UserUnblocked(b) => blocks::unblock(txn, &b).await,
            E::FollowRequested(f) => rules::follow_requested(txn, &f).await,
            E::FollowAccepted(f) => rules::follow_accepted(txn, &f).await,
            E::FollowDeclined(f) => rules::follow_ended(txn, &f).await,
            E::FollowRemoved(f) => {
                audience::unfollowed(txn, &f).await?;
                rules::follow_ended(txn, &f).await
            }
            E::AccountPrivacyChanged(p) => audience::privacy_changed(txn, &p).await,
            E::PostCreated(p) => rules::post_created(txn, &p).await,
            E::PostDeleted(p) => rules::post_deleted(txn, &p).await,
            E::CommentCreated(c) => rules::comment_created(txn, &c).await,
            E::CommentDeleted(c) => rules::comment_deleted(txn, &c).await,
            E::VoteSubmitted(v) => rules::voted(txn, &v).await,
            E::VoteUpdated(v) => rules::voted(txn, &v).await,
            E::ChatCreated(c) => rules::chat_created(txn, &c).await,
            E::ChatMemberAdded(m) => rules::member_added(txn, &m).await,
            E::ChatMemberRemoved(m) => rules::member_removed(txn, &m).await,
            E::ChatSettingsChanged(s) => rules::settings_changed(txn, &s).await,
            E::MessageSent(m) => rules::message_sent(txn, &m, self.grace).await,
            E::MessageDeleted(m) => rules::message_deleted(txn, &m).await,
            E::MessageReceived(r) => rules::receipt(txn, &r, false).await,
            E::MessageRead(r) => rules::receipt(txn, &r, true).await,
            // Billing: each failed payment (a dunning retry's too) and each refund is told, and the end
            // of a subscription.
            E::PaymentFailed(p) => {
                rules::billing(txn, p.user_id, BillingNews::PaymentFailed, p.payment_id).await
            }
            E::PaymentRefunded(p) => {
                rules::billing(txn, p.user_id, BillingNews::Refunded, p.payment_id).await
            }
            E::BillingSubscriptionCanceled(s) => {
                rules::billing(txn, s.user_id, BillingNews::Ended, s.subscription_id).await
            }
        }
    }
}
