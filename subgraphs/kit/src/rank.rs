//! Ranking formulas (Lemmy's published ones), shared by the subgraphs that store ranks as indexed columns
//! (posts for its lists, feed for timelines).

use chrono::{DateTime, Utc};

/// Posts older than this stop being "hot".
pub const HOT_WINDOW_HOURS: f64 = 7.0 * 24.0;

/// hot = log10(max(2, score + 2)) / (hours since published + 2)^1.8; 0 after 7 days or for future dates.
pub fn hot(score: i64, published: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let hours = (now - published).num_milliseconds() as f64 / 3_600_000.0;
    if !(0.0..HOT_WINDOW_HOURS).contains(&hours) {
        return 0.0;
    }
    let score = (score as f64 + 2.0).max(2.0);
    score.log10() / (hours + 2.0).powf(1.8)
}

/// controversy = (up + down)^(min(up, down) / max(up, down)); 0 when either is 0.
pub fn controversy(upvotes: i64, downvotes: i64) -> f64 {
    if upvotes <= 0 || downvotes <= 0 {
        return 0.0;
    }
    let (up, down) = (upvotes as f64, downvotes as f64);
    (up + down).powf(up.min(down) / up.max(down))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn hot_decays_and_stops() {
        let now = Utc::now();
        let fresh = hot(10, now, now);
        let older = hot(10, now - Duration::hours(5), now);
        assert!(fresh > older && older > 0.0);
        assert_eq!(hot(10, now - Duration::days(8), now), 0.0);
        assert_eq!(
            hot(10, now + Duration::hours(1), now),
            0.0,
            "future dates are not hot"
        );
        assert!(hot(100, now, now) > hot(1, now, now));
        assert_eq!(
            hot(-50, now, now),
            hot(0, now, now),
            "score is floored at 0"
        );
    }

    #[test]
    fn controversy_rewards_balance() {
        assert_eq!(controversy(10, 0), 0.0);
        assert!(controversy(50, 50) > controversy(90, 10));
        assert!((controversy(5, 5) - 10.0).abs() < 1e-9);
    }
}
