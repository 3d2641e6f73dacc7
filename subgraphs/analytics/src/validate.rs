//! Input rules, checked before any read or write: event names, properties, dates, anonymous ids, batch
//! sizes, report ranges and funnel steps.

use chrono::{DateTime, Duration, Utc};

use crate::error::{invalid, Result};
use crate::ingest::MAX_LATE_DAYS;

/// The longest event name.
pub const MAX_NAME: usize = 64;
/// A client event's properties, as JSON, at most.
pub const MAX_PROPERTIES_BYTES: usize = 4 * 1024;
/// The longest anonymous id.
pub const MAX_ANONYMOUS_ID: usize = 64;
/// Events one `trackEvents` may carry.
pub const MAX_BATCH: usize = 100;
/// The longest range a report covers (reports read rollups, not raw events).
pub const MAX_REPORT_DAYS: i64 = 732;
/// Funnels read raw events: their range is at most this.
pub const MAX_FUNNEL_DAYS: i64 = 92;
/// Steps a funnel has, at least and at most.
pub const MIN_STEPS: usize = 2;
pub const MAX_STEPS: usize = 10;
/// The longest funnel window, in hours.
pub const MAX_WINDOW_HOURS: i64 = 30 * 24;
/// How far in the future a client's clock may be.
const MAX_EARLY_SECS: i64 = 300;

/// A client event's name: a lowercase letter, then lowercase letters, digits, `_ . : -`. Domain events
/// are named in CamelCase, so a client cannot count as a post or a sign-up.
pub fn client_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !first_ok
        || name.len() > MAX_NAME
        || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c))
    {
        return Err(invalid(format!(
            "an event name is 1 to {MAX_NAME} characters: a lowercase letter, then lowercase \
             letters, digits, `_`, `.`, `:` or `-`"
        )));
    }
    Ok(())
}

/// A funnel step: a client event's name or a domain event's (`PostCreated`).
pub fn step_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
    {
        return Err(invalid(format!(
            "a step is an event name of 1 to {MAX_NAME} letters, digits, `_`, `.`, `:` or `-`"
        )));
    }
    Ok(())
}

/// Properties: a JSON object of at most [`MAX_PROPERTIES_BYTES`]; returned as the text kept.
pub fn properties(value: Option<&serde_json::Value>) -> Result<Option<String>> {
    let Some(value) = value else {
        return Ok(None);
    };
    if !value.is_object() {
        return Err(invalid("properties must be a JSON object"));
    }
    let text = value.to_string();
    if text.len() > MAX_PROPERTIES_BYTES {
        return Err(invalid(format!(
            "properties are at most {MAX_PROPERTIES_BYTES} bytes as JSON"
        )));
    }
    Ok(Some(text))
}

/// When the event happened: now if not given; at most [`MAX_LATE_DAYS`] ago and not in the future.
pub fn occurred_at(given: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let at = given.unwrap_or(now);
    if at < now - Duration::days(MAX_LATE_DAYS) {
        return Err(invalid(format!(
            "occurredAt is at most {MAX_LATE_DAYS} days ago"
        )));
    }
    if at > now + Duration::seconds(MAX_EARLY_SECS) {
        return Err(invalid("occurredAt is in the future"));
    }
    Ok(at)
}

/// An anonymous id: 1 to [`MAX_ANONYMOUS_ID`] letters, digits, `-` or `_` (a UUID fits).
pub fn anonymous_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > MAX_ANONYMOUS_ID
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(format!(
            "anonymousId is 1 to {MAX_ANONYMOUS_ID} letters, digits, `-` or `_`"
        )));
    }
    Ok(())
}

pub fn batch(len: usize) -> Result<()> {
    if len > MAX_BATCH {
        return Err(invalid(format!("at most {MAX_BATCH} events per call")));
    }
    Ok(())
}

/// A time zone's IANA name (`Europe/Berlin`); `UTC` is none.
pub fn time_zone(name: &str) -> Result<Option<chrono_tz::Tz>> {
    if name == "UTC" {
        return Ok(None);
    }
    if name.len() > MAX_NAME {
        return Err(invalid(
            "timeZone is an IANA zone name, such as Europe/Berlin",
        ));
    }
    name.parse()
        .map(Some)
        .map_err(|_| invalid("timeZone is an IANA zone name, such as Europe/Berlin"))
}

/// A report's range: `from` before `to`, at most `max_days` apart.
pub fn range(from: DateTime<Utc>, to: DateTime<Utc>, max_days: i64) -> Result<()> {
    if to <= from {
        return Err(invalid("`to` must be after `from`"));
    }
    if to - from > Duration::days(max_days) {
        return Err(invalid(format!("a range is at most {max_days} days")));
    }
    Ok(())
}

/// A funnel's steps and window.
pub fn funnel(steps: &[String], window_hours: i64) -> Result<()> {
    if !(MIN_STEPS..=MAX_STEPS).contains(&steps.len()) {
        return Err(invalid(format!(
            "a funnel has {MIN_STEPS} to {MAX_STEPS} steps"
        )));
    }
    steps.iter().try_for_each(|s| step_name(s))?;
    if !(1..=MAX_WINDOW_HOURS).contains(&window_hours) {
        return Err(invalid(format!("windowHours is 1 to {MAX_WINDOW_HOURS}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_properties_and_dates_are_bounded() {
        assert!(client_name("signup_started").is_ok());
        assert!(client_name("screen:home.open-1").is_ok());
        for bad in ["", "PostCreated", "1st", "has space", &"a".repeat(65)] {
            assert!(client_name(bad).is_err(), "{bad:?}");
        }
        assert!(step_name("PostCreated").is_ok());
        assert!(step_name("a b").is_err());
        assert_eq!(
            properties(Some(&json!({ "plan": "pro" }))).expect("ok"),
            Some(r#"{"plan":"pro"}"#.to_string())
        );
        assert!(properties(Some(&json!([1, 2]))).is_err());
        assert!(properties(Some(&json!({ "x": "y".repeat(MAX_PROPERTIES_BYTES) }))).is_err());
        let now = Utc::now();
        assert!(occurred_at(Some(now - Duration::days(8)), now).is_err());
        assert!(occurred_at(Some(now + Duration::hours(1)), now).is_err());
        assert_eq!(occurred_at(None, now).expect("now"), now);
        assert!(anonymous_id("0b6f1c1e-3d0a-4a8e-9d0e-5f1b2c3d4e5f").is_ok());
        assert!(anonymous_id("<script>").is_err());
        assert!(time_zone("UTC").expect("utc").is_none());
        assert!(time_zone("Asia/Kolkata").expect("zone").is_some());
        assert!(time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn ranges_and_funnels_are_bounded() {
        let now = Utc::now();
        assert!(range(now, now, 10).is_err());
        assert!(range(now, now + Duration::days(11), 10).is_err());
        assert!(range(now, now + Duration::days(10), 10).is_ok());
        let steps = |n: usize| (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>();
        assert!(funnel(&steps(1), 24).is_err());
        assert!(funnel(&steps(11), 24).is_err());
        assert!(funnel(&steps(3), 0).is_err());
        assert!(funnel(&steps(3), 24).is_ok());
    }
}
