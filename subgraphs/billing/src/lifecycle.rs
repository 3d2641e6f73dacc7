//! A subscription's lifecycle as a pure function: where a status goes when something happens.
//!
//! INCOMPLETE (first payment not yet made) → ACTIVE (paid) → PAST_DUE (a renewal failed; dunning retries) →
//! CANCELED (retries exhausted, canceled now, or at the end of a period it was set to end at). CANCELED is
//! final. Every transition is applied in one transaction with its event, and applying one twice changes
//! nothing: the second finds the status already moved ([`Step::Unchanged`]) or refused ([`Step::Refused`]),
//! which is what makes duplicated and reordered webhooks harmless.

use async_graphql::Enum;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "BillingSubscriptionStatus")]
pub enum Status {
    Incomplete,
    Active,
    PastDue,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Incomplete => "INCOMPLETE",
            Status::Active => "ACTIVE",
            Status::PastDue => "PAST_DUE",
            Status::Canceled => "CANCELED",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Incomplete,
            Status::Active,
            Status::PastDue,
            Status::Canceled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether the plan's entitlements apply: paid up, or in dunning (Stripe keeps a past-due subscription's
    /// access until it is canceled).
    pub fn entitles(self) -> bool {
        matches!(self, Status::Active | Status::PastDue)
    }

    /// Whether it still counts as the user's subscription (a new `subscribe` is a CONFLICT).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Active | Status::PastDue)
    }
}

/// What happened to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    /// Its invoice was paid (first payment, renewal or a dunning retry).
    Paid,
    /// A payment attempt failed.
    PaymentFailed,
    /// The last dunning retry failed.
    RetriesExhausted,
    /// Canceled now, or its period ended while set to cancel at period end.
    Canceled,
}

/// The outcome of [`next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    To(Status),
    /// Already there, or the happening does not move this status.
    Unchanged,
    /// It cannot happen to this status: a payment for a canceled subscription (the caller refunds it).
    Refused,
}

pub fn next(status: Status, happening: Happening) -> Step {
    use Happening as H;
    use Status as S;
    match (status, happening) {
        (S::Canceled, H::Paid) => Step::Refused,
        (S::Canceled, _) => Step::Unchanged,
        (S::Incomplete | S::PastDue, H::Paid) => Step::To(S::Active),
        (S::Active, H::Paid) => Step::Unchanged,
        (S::Active, H::PaymentFailed) => Step::To(S::PastDue),
        (S::Incomplete | S::PastDue, H::PaymentFailed) => Step::Unchanged,
        (S::PastDue, H::RetriesExhausted) => Step::To(S::Canceled),
        (S::Incomplete | S::Active, H::RetriesExhausted) => Step::Unchanged,
        (_, H::Canceled) => Step::To(S::Canceled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Happening as H;
    use Status as S;

    #[test]
    fn the_happy_path_and_dunning() {
        assert_eq!(next(S::Incomplete, H::Paid), Step::To(S::Active));
        assert_eq!(next(S::Active, H::PaymentFailed), Step::To(S::PastDue));
        assert_eq!(next(S::PastDue, H::PaymentFailed), Step::Unchanged);
        assert_eq!(next(S::PastDue, H::Paid), Step::To(S::Active));
        assert_eq!(next(S::PastDue, H::RetriesExhausted), Step::To(S::Canceled));
        assert_eq!(next(S::Active, H::Canceled), Step::To(S::Canceled));
    }

    #[test]
    fn canceled_is_final_and_applying_twice_changes_nothing() {
        for h in [H::PaymentFailed, H::RetriesExhausted, H::Canceled] {
            assert_eq!(next(S::Canceled, h), Step::Unchanged);
        }
        assert_eq!(next(S::Canceled, H::Paid), Step::Refused);
        assert_eq!(next(S::Active, H::Paid), Step::Unchanged);
        assert_eq!(next(S::Incomplete, H::PaymentFailed), Step::Unchanged);
    }

    #[test]
    fn names_round_trip() {
        for s in [S::Incomplete, S::Active, S::PastDue, S::Canceled] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert!(S::PastDue.entitles() && !S::Incomplete.entitles());
    }
}
