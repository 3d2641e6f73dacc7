//! CSV downloads of the reports: an admin asks for one (`exportReport`) and gets a signed link that works
//! for [`LINK_MINUTES`] without a session (`/analytics/exports/report.csv?token=…` on the router's origin,
//! forwarded here). The token carries the report's arguments, checked when it was made; the report is run
//! when the link is opened, so the file is what the report says then.

use chrono::{DateTime, Duration, Utc};
use parley_kit::signed::Signer;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::time::Bucket;
use crate::{perf, reports, validate};

/// How long a download link works.
pub const LINK_MINUTES: i64 = 15;
/// The path (under the public origin, forwarded by the router) of downloads.
pub const PATH: &str = "/analytics/exports/report.csv";

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report {
    ActiveUsers,
    Retention,
    Funnel,
    Content,
    Performance,
}

/// A report and its arguments, as a link carries them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub report: Report,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: Bucket,
    #[serde(default)]
    pub steps: Vec<String>,
    pub window_hours: i64,
    /// Content and performance: days from midnight in this zone (UTC when absent).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// When the link stops working.
    pub expires: DateTime<Utc>,
}

impl Request {
    /// The report's own rules, as the query applies them.
    pub fn check(&self) -> Result<()> {
        if let Some(zone) = &self.time_zone {
            validate::time_zone(zone)?;
        }
        match self.report {
            Report::Funnel => {
                validate::funnel(&self.steps, self.window_hours)?;
                validate::range(self.from, self.to, validate::MAX_FUNNEL_DAYS)
            }
            Report::ActiveUsers if self.bucket == Bucket::Hour => {
                Err(invalid("active users are counted by DAY, WEEK or MONTH"))
            }
            _ => validate::range(self.from, self.to, validate::MAX_REPORT_DAYS),
        }
    }
}

/// What links are signed with and where they point.
#[derive(Clone)]
pub struct Links {
    pub signer: Signer,
    pub public_url: String,
}

/// The link for `request`.
pub fn link(signer: &Signer, public_url: &str, request: &Request) -> Result<String> {
    let token = signer.sign(&serde_json::to_string(request)?);
    Ok(format!(
        "{}{PATH}?token={token}",
        public_url.trim_end_matches('/')
    ))
}

/// The request a token carries, if this subgraph signed it and it has not expired at `now`.
pub fn open(signer: &Signer, token: &str, now: DateTime<Utc>) -> Option<Request> {
    let request: Request = serde_json::from_str(&signer.open(token)?).ok()?;
    (request.expires > now).then_some(request)
}

/// The report as CSV: a header row, then one row per point (cohorts: one column per week).
pub async fn csv(db: &DatabaseConnection, request: &Request, now: DateTime<Utc>) -> Result<String> {
    let (from, to) = (request.from, request.to);
    let tz = match &request.time_zone {
        Some(zone) => validate::time_zone(zone)?,
        None => None,
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    match request.report {
        Report::ActiveUsers => {
            rows.push(vec!["start".into(), "active_users".into()]);
            for p in reports::active_users(db, request.bucket, from, to, now, tz).await? {
                rows.push(vec![time(p.start), p.active_users.to_string()]);
            }
        }
        Report::Retention => {
            let cohorts = reports::retention(db, from, to, tz).await?;
            let weeks = cohorts.iter().map(|c| c.retained.len()).max().unwrap_or(0);
            let mut header = vec!["start".to_string(), "size".to_string()];
            header.extend((0..weeks).map(|k| format!("week_{k}")));
            rows.push(header);
            for c in cohorts {
                let mut row = vec![time(c.start), c.size.to_string()];
                row.extend(c.retained.iter().map(i64::to_string));
                rows.push(row);
            }
        }
        Report::Funnel => {
            rows.push(vec!["step".into(), "name".into(), "users".into()]);
            let window = Duration::hours(request.window_hours);
            for (i, s) in reports::funnel(db, &request.steps, from, to, window)
                .await?
                .into_iter()
                .enumerate()
            {
                rows.push(vec![(i + 1).to_string(), s.name, s.actors.to_string()]);
            }
        }
        Report::Content => {
            rows.push(
                [
                    "start", "posts", "comments", "votes", "messages", "uploads", "signups",
                ]
                .map(String::from)
                .to_vec(),
            );
            for p in reports::content(db, request.bucket, from, to, tz).await? {
                rows.push(vec![
                    time(p.start),
                    p.posts.to_string(),
                    p.comments.to_string(),
                    p.votes.to_string(),
                    p.messages.to_string(),
                    p.uploads.to_string(),
                    p.signups.to_string(),
                ]);
            }
        }
        Report::Performance => {
            rows.push(
                [
                    "start",
                    "operation",
                    "requests",
                    "request_rate",
                    "error_rate",
                    "p50_ms",
                    "p95_ms",
                    "p99_ms",
                ]
                .map(String::from)
                .to_vec(),
            );
            let optional = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
            for p in perf::report(db, request.bucket, from, to, tz).await? {
                rows.push(vec![
                    time(p.start),
                    p.operation,
                    p.requests.round().to_string(),
                    p.request_rate.to_string(),
                    p.error_rate.to_string(),
                    optional(p.p50),
                    optional(p.p95),
                    optional(p.p99),
                ]);
            }
        }
    }
    Ok(rows
        .iter()
        .map(|row| row.iter().map(|f| field(f)).collect::<Vec<_>>().join(","))
        .map(|line| line + "\r\n")
        .collect())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. A field a spreadsheet
/// would read as a formula (`=`, `+`, `-`, `@` first: names come from clients) is prefixed with `'`.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '@'])
        || (text.starts_with('-') && text.parse::<f64>().is_err())
    {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        let now = Utc::now();
        Request {
            report: Report::Funnel,
            from: now - Duration::days(1),
            to: now,
            bucket: Bucket::Day,
            steps: vec!["a".into(), "b".into()],
            window_hours: 24,
            time_zone: None,
            expires: now + Duration::minutes(LINK_MINUTES),
        }
    }

    #[test]
    fn links_carry_their_request_until_they_expire() {
        let signer = Signer::new(b"key".to_vec());
        let request = request();
        let url = link(&signer, "https://parley.example/", &request).expect("link");
        let token = url
            .strip_prefix("https://parley.example/analytics/exports/report.csv?token=")
            .expect("path");
        let now = Utc::now();
        assert_eq!(open(&signer, token, now), Some(request.clone()));
        assert_eq!(open(&signer, token, request.expires), None);
        assert_eq!(open(&Signer::new(b"other".to_vec()), token, now), None);
    }

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("-1.5"), "-1.5");
        assert_eq!(field("-cmd"), "'-cmd");
    }
}
