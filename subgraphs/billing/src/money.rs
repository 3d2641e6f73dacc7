//! Money: integers in minor units (cents), never floats. Proration is exact integer arithmetic (i128 in
//! between, so a yearly price times a year of seconds cannot overflow), rounded half up as Stripe does.

/// `amount × part / whole`, rounded half up; `0` when `whole` is not positive, `part` clamped to `0..=whole`.
pub fn prorate(amount: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let part = part.clamp(0, whole) as i128;
    let whole = whole as i128;
    let scaled = amount as i128 * part;
    // Half up, away from zero for negative amounts too.
    let rounded = if scaled >= 0 {
        (scaled * 2 + whole) / (whole * 2)
    } else {
        -((-scaled * 2 + whole) / (whole * 2))
    };
    rounded as i64
}

/// What an upgrade costs now: the new price for the rest of the period minus the unused part of the old
/// one. Negative when the change leaves a credit.
pub fn upgrade_charge(
    old_price: i64,
    new_price: i64,
    remaining_secs: i64,
    period_secs: i64,
) -> i64 {
    prorate(new_price, remaining_secs, period_secs)
        - prorate(old_price, remaining_secs, period_secs)
}

/// A price as people read it: `12.00 USD`.
pub fn display(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prorates_exactly_and_rounds_half_up() {
        assert_eq!(prorate(1000, 15, 30), 500);
        assert_eq!(prorate(1000, 1, 3), 333);
        assert_eq!(prorate(1000, 2, 3), 667);
        assert_eq!(prorate(1, 1, 2), 1);
        assert_eq!(prorate(-1, 1, 2), -1);
        assert_eq!(prorate(1000, 40, 30), 1000, "part clamped to the whole");
        assert_eq!(prorate(1000, -5, 30), 0);
        assert_eq!(prorate(1000, 5, 0), 0);
        // A yearly price over a year of seconds does not overflow.
        assert_eq!(prorate(i64::MAX / 2, 31_536_000, 31_536_000), i64::MAX / 2);
    }

    #[test]
    fn an_upgrade_halfway_costs_half_the_difference() {
        let month = 30 * 86_400;
        assert_eq!(upgrade_charge(900, 2900, month / 2, month), 1000);
        assert_eq!(upgrade_charge(2900, 900, month / 2, month), -1000);
        assert_eq!(upgrade_charge(900, 2900, 0, month), 0);
    }

    #[test]
    fn displays_minor_units() {
        assert_eq!(display(1200, "USD"), "12.00 USD");
        assert_eq!(display(-5, "EUR"), "-0.05 EUR");
    }
}
