//! Analytics' time: days and hours as whole numbers since 1970-01-01 UTC (what the rollups key on), the
//! report buckets over a range (in UTC, or with day boundaries in a time zone), and the clock (the wall
//! clock, or a test clock moved ahead by tests).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{invalid, Result};

const DAY_SECS: i64 = 86_400;
const HOUR_SECS: i64 = 3_600;
/// Buckets one report may have.
pub const MAX_BUCKETS: usize = 1_000;

pub fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(DAY_SECS)
}

pub fn hour_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(HOUR_SECS)
}

pub fn day_start(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(day * DAY_SECS, 0).unwrap_or_default()
}

fn hour_start(hour: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(hour * HOUR_SECS, 0).unwrap_or_default()
}

/// The Monday on or before `day` (1970-01-01 was a Thursday).
pub fn week_start(day: i64) -> i64 {
    day - (day + 3).rem_euclid(7)
}

/// The number of `day`'s Monday-first week (week 0 began on Monday 1969-12-29).
pub fn week_of(day: i64) -> i64 {
    (day + 3).div_euclid(7)
}

/// The first day of week `week`.
pub fn week_first_day(week: i64) -> i64 {
    week * 7 - 3
}

fn month_start(day: i64) -> i64 {
    let date = day_start(day).date_naive();
    NaiveDate::from_ymd_opt(date.year(), date.month(), 1).map_or(day, |first| {
        day_of(first.and_time(Default::default()).and_utc())
    })
}

fn next_month(day: i64) -> i64 {
    let first = day_start(month_start(day)).date_naive();
    let (year, month) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1).map_or(day + 31, |next| {
        day_of(next.and_time(Default::default()).and_utc())
    })
}

/// How a report's range is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Bucket {
    Hour,
    Day,
    /// Monday to Sunday.
    Week,
    /// Calendar months.
    Month,
}

/// One bucket of a range: where it starts (aligned: a Monday, the 1st) and the units of the range it covers,
/// `first..end` (hours for [`Bucket::Hour`], days otherwise; clipped to the range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub first: i64,
    pub end: i64,
}

/// The buckets covering `[from, to)`, in order; an empty or reversed range, or one with more than
/// [`MAX_BUCKETS`] buckets, is refused.
pub fn buckets(bucket: Bucket, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Span>> {
    if to <= from {
        return Err(invalid("`to` must be after `from`"));
    }
    if bucket == Bucket::Hour {
        let (first, end) = (hour_of(from), hour_of(to - Duration::nanoseconds(1)) + 1);
        if end - first > MAX_BUCKETS as i64 {
            return Err(invalid(format!("at most {MAX_BUCKETS} buckets per report")));
        }
        return Ok((first..end)
            .map(|hour| Span {
                start: hour_start(hour),
                first: hour,
                end: hour + 1,
            })
            .collect());
    }
    let (first, end) = (day_of(from), day_of(to - Duration::nanoseconds(1)) + 1);
    // A cheap upper bound before walking: days are the finest of these buckets.
    if bucket == Bucket::Day && end - first > MAX_BUCKETS as i64 {
        return Err(invalid(format!("at most {MAX_BUCKETS} buckets per report")));
    }
    let mut spans = Vec::new();
    let mut day = first;
    while day < end {
        let (start, next) = match bucket {
            Bucket::Day | Bucket::Hour => (day, day + 1),
            Bucket::Week => (week_start(day), week_start(day) + 7),
            Bucket::Month => (month_start(day), next_month(day)),
        };
        spans.push(Span {
            start: day_start(start),
            first: day,
            end: next.min(end),
        });
        if spans.len() > MAX_BUCKETS {
            return Err(invalid(format!("at most {MAX_BUCKETS} buckets per report")));
        }
        day = next;
    }
    Ok(spans)
}

/// The buckets covering `[from, to)` with their days starting at midnight in `tz`, as hour numbers
/// (`first..end` are hours): what reports over hourly counts use for a time zone. Exact for zones a whole
/// number of hours from UTC; in the others (India's +05:30) a day starts with the hour its midnight falls in.
pub fn local_buckets(
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
) -> Result<Vec<Span>> {
    if bucket == Bucket::Hour {
        return buckets(bucket, from, to);
    }
    if to <= from {
        return Err(invalid("`to` must be after `from`"));
    }
    let (from_hour, to_hour) = (hour_of(from), hour_of(to - Duration::nanoseconds(1)) + 1);
    let date = from.with_timezone(&tz).date_naive();
    let mut start = match bucket {
        Bucket::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        Bucket::Month => date.with_day(1).unwrap_or(date),
        Bucket::Day | Bucket::Hour => date,
    };
    let mut spans = Vec::new();
    loop {
        let next = match bucket {
            Bucket::Week => start + Duration::days(7),
            Bucket::Month => {
                let (year, month) = if start.month() == 12 {
                    (start.year() + 1, 1)
                } else {
                    (start.year(), start.month() + 1)
                };
                NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(start + Duration::days(31))
            }
            Bucket::Day | Bucket::Hour => start + Duration::days(1),
        };
        let begins = local_midnight(tz, start);
        let (first, end) = (
            hour_of(begins).max(from_hour),
            hour_of(local_midnight(tz, next)).min(to_hour),
        );
        if first >= to_hour {
            break;
        }
        if first < end {
            spans.push(Span {
                start: begins,
                first,
                end,
            });
        }
        if spans.len() > MAX_BUCKETS {
            return Err(invalid(format!("at most {MAX_BUCKETS} buckets per report")));
        }
        start = next;
    }
    Ok(spans)
}

/// Midnight of `date` in `tz`, in UTC (where a clock change skips midnight, the first moment of the day).
fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    (0..3)
        .find_map(|hour| {
            tz.from_local_datetime(&date.and_hms_opt(hour, 0, 0)?)
                .earliest()
        })
        .map_or_else(
            || date.and_time(Default::default()).and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

/// Analytics' time: the wall clock, or with the test clock on, the wall clock plus an offset moved ahead by
/// `POST /analytics/test-clock`; domain events are dated by it too ([`Clock::shift`]). The offset lives in
/// the process (the tests run one instance).
#[derive(Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    /// A time another clock gave (a domain event's), as analytics' clock reads it: the same, unless the test
    /// clock was moved.
    pub fn shift(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        t + Duration::seconds(self.offset_secs.load(Ordering::Relaxed))
    }

    /// Moves the clock ahead by `secs` (never back); returns the new time.
    pub fn advance(&self, secs: i64) -> DateTime<Utc> {
        self.offset_secs.fetch_add(secs.max(0), Ordering::Relaxed);
        self.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-11-30 is a Monday.
        let monday = day_of(at("2026-11-30T00:00:00Z"));
        assert_eq!(week_start(monday + 6), monday);
        assert_eq!(week_start(monday + 7), monday + 7);
        assert_eq!(week_first_day(week_of(monday + 6)), monday);
        let spans = buckets(
            Bucket::Week,
            at("2026-12-02T10:00:00Z"),
            at("2026-12-15T00:00:00Z"),
        )
        .expect("weeks");
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].start, at("2026-11-30T00:00:00Z"));
        assert_eq!(spans[0].first, monday + 2, "clipped to the range");
        assert_eq!(spans[2].end, monday + 15);
        let months = buckets(
            Bucket::Month,
            at("2026-11-15T00:00:00Z"),
            at("2027-01-02T00:00:00Z"),
        )
        .expect("months");
        let starts: Vec<_> = months.iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            [
                at("2026-11-01T00:00:00Z"),
                at("2026-12-01T00:00:00Z"),
                at("2027-01-01T00:00:00Z")
            ]
        );
        assert_eq!(months[1].end - months[1].first, 31);
    }

    #[test]
    fn local_days_start_at_local_midnight() {
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        // Winter: UTC+1, so the 2nd of December starts at 23:00 UTC on the 1st.
        let spans = local_buckets(
            Bucket::Day,
            at("2026-12-01T23:00:00Z"),
            at("2026-12-03T23:00:00Z"),
            berlin,
        )
        .expect("days");
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].start, at("2026-12-01T23:00:00Z"));
        assert_eq!(spans[0].end - spans[0].first, 24);
        // The day the clocks go forward has 23 hours.
        let spring = local_buckets(
            Bucket::Day,
            at("2026-03-28T23:00:00Z"),
            at("2026-03-29T22:00:00Z"),
            berlin,
        )
        .expect("day");
        assert_eq!(spring.len(), 1);
        assert_eq!(spring[0].end - spring[0].first, 23);
        let weeks = local_buckets(
            Bucket::Week,
            at("2026-12-02T10:00:00Z"),
            at("2026-12-15T00:00:00Z"),
            berlin,
        )
        .expect("weeks");
        assert_eq!(weeks[0].start, at("2026-11-29T23:00:00Z"), "Monday, Berlin");
    }

    #[test]
    fn ranges_are_bounded() {
        let from = at("2026-01-01T00:00:00Z");
        assert!(buckets(Bucket::Day, from, from).is_err());
        assert!(buckets(Bucket::Hour, from, from + Duration::days(60)).is_err());
        assert_eq!(
            buckets(Bucket::Hour, from, from + Duration::minutes(90))
                .expect("hours")
                .len(),
            2
        );
        assert!(buckets(Bucket::Day, from, from + Duration::days(2000)).is_err());
    }
}
