//! Performance from the routers' own numbers: every `scrape_ms` analytics reads each router's Prometheus
//! page, takes the request-duration histogram per GraphQL operation (`http_server_request_duration_seconds`,
//! split by `graphql_response_status`), and keeps one cumulative sample per router and operation. A report
//! bucket's figures are the differences between consecutive samples that fall in it (a router that
//! restarted starts again from zero), summed over routers: requests, their rate, the share that failed, and
//! p50/p95/p99 interpolated within the histogram's buckets as Prometheus' `histogram_quantile` does.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::error::Result;
use crate::store::perf_sample;
use chrono_tz::Tz;

use crate::time::{Bucket, Clock};

/// The histogram read from the routers' pages.
pub const HISTOGRAM: &str = "http_server_request_duration_seconds";
/// Operations kept per scrape at most (the busiest first): a client naming operations at random cannot fill
/// the store.
pub const MAX_OPERATIONS: usize = 200;
/// An operation without a name.
const ANONYMOUS: &str = "(anonymous)";

/// One operation's cumulative histogram on one router.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub count: f64,
    pub errors: f64,
    pub sum: f64,
    /// Cumulative counts per upper bound (seconds; the last is +Inf).
    pub buckets: BTreeMap<Bound, f64>,
}

/// A bucket's upper bound, ordered (`f64` is not `Ord`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound(pub f64);

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The per-operation histograms of one Prometheus text page.
pub fn parse(page: &str) -> HashMap<String, Histogram> {
    let mut operations: HashMap<String, Histogram> = HashMap::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(HISTOGRAM) else {
            continue;
        };
        let (series, rest) = match rest.find('{') {
            Some(0) | None => ("", rest),
            Some(i) => (&rest[..i], &rest[i..]),
        };
        let Some((labels, value)) = rest
            .strip_prefix('{')
            .and_then(|r| r.rsplit_once('}'))
            .map(|(labels, value)| (labels_of(labels), value))
        else {
            continue;
        };
        let Some(value) = value.split_whitespace().next().and_then(number) else {
            continue;
        };
        let operation = labels
            .get("graphql_operation_name")
            .filter(|name| !name.is_empty())
            .cloned()
            .unwrap_or_else(|| ANONYMOUS.to_string());
        let failed = labels.get("graphql_response_status").map(String::as_str) == Some("error");
        let histogram = operations.entry(operation).or_default();
        match series {
            "_count" => {
                histogram.count += value;
                if failed {
                    histogram.errors += value;
                }
            }
            "_sum" => histogram.sum += value,
            "_bucket" => {
                if let Some(le) = labels.get("le").and_then(|le| number(le)) {
                    *histogram.buckets.entry(Bound(le)).or_default() += value;
                }
            }
            _ => {}
        }
    }
    operations
}

fn number(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        _ => text.parse().ok(),
    }
}

/// `a="x",b="y"` (values escaped as the exposition format escapes them).
fn labels_of(text: &str) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() || chars.next() != Some('"') {
            return labels;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                c => value.push(c),
            }
        }
        labels.insert(name.trim().to_string(), value);
    }
}

/// Reads every router's page and keeps the samples; a router that does not answer is skipped (logged).
pub async fn scrape(
    db: &DatabaseConnection,
    http: &reqwest::Client,
    urls: &[String],
    at: DateTime<Utc>,
) -> Result<usize> {
    let mut kept = 0;
    for url in urls {
        let page = match http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
        {
            Ok(response) => match response.text().await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(%url, error = %e, "reading a router's metrics failed");
                    continue;
                }
            },
            Err(e) => {
                tracing::warn!(%url, error = %e, "scraping a router's metrics failed");
                continue;
            }
        };
        let mut operations: Vec<(String, Histogram)> = parse(&page).into_iter().collect();
        operations.sort_by(|a, b| b.1.count.total_cmp(&a.1.count));
        operations.truncate(MAX_OPERATIONS);
        for (operation, histogram) in operations {
            keep(db, url, &operation, &histogram, at).await?;
            kept += 1;
        }
    }
    Ok(kept)
}

async fn keep<C: ConnectionTrait>(
    db: &C,
    target: &str,
    operation: &str,
    h: &Histogram,
    at: DateTime<Utc>,
) -> Result<()> {
    let buckets: Vec<(f64, f64)> = h.buckets.iter().map(|(le, n)| (le.0, *n)).collect();
    perf_sample::Entity::insert(perf_sample::ActiveModel {
        taken_at: Set(at),
        target: Set(target.to_string()),
        operation: Set(operation.to_string()),
        count: Set(h.count),
        errors: Set(h.errors),
        sum: Set(h.sum),
        // +Inf does not survive JSON: the last bucket is written as null and read back as +Inf.
        buckets: Set(serde_json::to_string(&buckets)?),
    })
    .on_conflict_do_nothing_on([
        perf_sample::Column::TakenAt,
        perf_sample::Column::Target,
        perf_sample::Column::Operation,
    ])
    .exec_without_returning(db)
    .await?;
    Ok(())
}

fn histogram_of(sample: &perf_sample::Model) -> Histogram {
    let buckets: Vec<(Option<f64>, f64)> =
        serde_json::from_str(&sample.buckets).unwrap_or_default();
    Histogram {
        count: sample.count,
        errors: sample.errors,
        sum: sample.sum,
        buckets: buckets
            .into_iter()
            .map(|(le, n)| (Bound(le.unwrap_or(f64::INFINITY)), n))
            .collect(),
    }
}

/// What happened between two samples: the later minus the earlier, or the later alone after a restart.
fn delta(before: Option<&Histogram>, after: &Histogram) -> Histogram {
    match before {
        Some(before) if after.count >= before.count => Histogram {
            count: after.count - before.count,
            errors: (after.errors - before.errors).max(0.0),
            sum: (after.sum - before.sum).max(0.0),
            buckets: after
                .buckets
                .iter()
                .map(|(le, n)| (*le, (n - before.buckets.get(le).unwrap_or(&0.0)).max(0.0)))
                .collect(),
        },
        _ => after.clone(),
    }
}

fn add(total: &mut Histogram, more: &Histogram) {
    total.count += more.count;
    total.errors += more.errors;
    total.sum += more.sum;
    for (le, n) in &more.buckets {
        *total.buckets.entry(*le).or_default() += n;
    }
}

/// The `q` quantile in seconds, interpolated within its bucket (the last finite bound when it falls in +Inf).
pub fn quantile(h: &Histogram, q: f64) -> Option<f64> {
    let total = h
        .buckets
        .get(&Bound(f64::INFINITY))
        .copied()
        .unwrap_or(h.count);
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (le, cumulative) in &h.buckets {
        if *cumulative >= rank {
            if le.0.is_infinite() {
                return Some(lower);
            }
            let inside = cumulative - below;
            let share = if inside > 0.0 {
                (rank - below) / inside
            } else {
                1.0
            };
            return Some(lower + (le.0 - lower) * share);
        }
        (lower, below) = (le.0, *cumulative);
    }
    Some(lower)
}

/// One operation in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformancePoint {
    pub start: DateTime<Utc>,
    pub operation: String,
    pub requests: f64,
    pub request_rate: f64,
    pub error_rate: f64,
    /// Milliseconds.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Each operation's figures in each bucket of `[from, to)` (days from midnight in `tz`, UTC without one),
/// buckets in order, the busiest operation first.
pub async fn report<C: ConnectionTrait>(
    db: &C,
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Option<Tz>,
) -> Result<Vec<PerformancePoint>> {
    let (spans, hourly) = crate::reports::spans(bucket, from, to, tz)?;
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return Ok(Vec::new());
    };
    let unit = if hourly { 3_600 } else { 86_400 };
    let (start, end) = (first.first * unit, last.end * unit);
    // The sample before the range too: the first difference needs it.
    let since = DateTime::from_timestamp(start - unit, 0).unwrap_or(from);
    let until = DateTime::from_timestamp(end, 0).unwrap_or(to);
    let samples = perf_sample::Entity::find()
        .filter(perf_sample::Column::TakenAt.gte(since))
        .filter(perf_sample::Column::TakenAt.lt(until))
        .order_by_asc(perf_sample::Column::TakenAt)
        .all(db)
        .await?;
    let mut previous: HashMap<(String, String), Histogram> = HashMap::new();
    // When each router was first read here: its samples then only set the baseline. An operation first
    // seen later is new since the sample before: all of its counts are.
    let mut first_read: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut totals: BTreeMap<(usize, String), Histogram> = BTreeMap::new();
    for sample in &samples {
        let histogram = histogram_of(sample);
        let key = (sample.target.clone(), sample.operation.clone());
        let moved = delta(previous.get(&key), &histogram);
        previous.insert(key, histogram);
        let baseline = *first_read
            .entry(sample.target.clone())
            .or_insert(sample.taken_at)
            == sample.taken_at;
        let second = sample.taken_at.timestamp();
        if baseline || second < start {
            continue;
        }
        if let Some(i) = spans
            .iter()
            .position(|s| s.first * unit <= second && second < s.end * unit)
        {
            add(
                totals.entry((i, sample.operation.clone())).or_default(),
                &moved,
            );
        }
    }
    let mut points: Vec<PerformancePoint> = totals
        .into_iter()
        .filter(|(_, h)| h.count > 0.0)
        .map(|((i, operation), h)| {
            let span = &spans[i];
            let seconds = ((span.end - span.first) * unit) as f64;
            PerformancePoint {
                start: span.start,
                operation,
                requests: h.count,
                request_rate: h.count / seconds,
                error_rate: h.errors / h.count,
                p50: quantile(&h, 0.5).map(|s| s * 1000.0),
                p95: quantile(&h, 0.95).map(|s| s * 1000.0),
                p99: quantile(&h, 0.99).map(|s| s * 1000.0),
            }
        })
        .collect();
    points.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.requests.total_cmp(&a.requests))
            .then(a.operation.cmp(&b.operation))
    });
    Ok(points)
}

/// Scrapes every `every` until the process ends; samples older than the retention period go.
pub async fn run(
    db: DatabaseConnection,
    clock: Clock,
    urls: Vec<String>,
    every: Duration,
    retention_days: i64,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    loop {
        let now = clock.now();
        if let Err(e) = scrape(&db, &http, &urls, now).await {
            tracing::warn!(error = %e, "keeping router samples failed; retried next time");
        }
        let cutoff = now - chrono::Duration::days(retention_days);
        if let Err(e) = perf_sample::Entity::delete_many()
            .filter(perf_sample::Column::TakenAt.lt(cutoff))
            .exec(&db)
            .await
        {
            tracing::warn!(error = %e, "deleting old router samples failed");
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP http_server_request_duration_seconds Duration of HTTP server requests
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{graphql_operation_name="Feed",graphql_response_status="ok",le="0.005"} 2
http_server_request_duration_seconds_bucket{graphql_operation_name="Feed",graphql_response_status="ok",le="0.01"} 8
http_server_request_duration_seconds_bucket{graphql_operation_name="Feed",graphql_response_status="ok",le="+Inf"} 10
http_server_request_duration_seconds_sum{graphql_operation_name="Feed",graphql_response_status="ok"} 0.08
http_server_request_duration_seconds_count{graphql_operation_name="Feed",graphql_response_status="ok"} 10
http_server_request_duration_seconds_bucket{graphql_operation_name="Feed",graphql_response_status="error",le="0.005"} 0
http_server_request_duration_seconds_bucket{graphql_operation_name="Feed",graphql_response_status="error",le="0.01"} 2
http_server_request_duration_seconds_bucket{graphql_operation_name="Feed",graphql_response_status="error",le="+Inf"} 2
http_server_request_duration_seconds_count{graphql_operation_name="Feed",graphql_response_status="error"} 2
http_server_request_duration_seconds_count{http_route="/graphql",graphql_response_status="ok"} 5
parley_other_total{graphql_operation_name="Feed"} 99
"#;

    #[test]
    fn a_page_reads_as_histograms_per_operation() {
        let operations = parse(PAGE);
        let feed = &operations["Feed"];
        assert_eq!(feed.count, 12.0);
        assert_eq!(feed.errors, 2.0);
        assert_eq!(feed.buckets[&Bound(0.01)], 10.0);
        assert_eq!(feed.buckets[&Bound(f64::INFINITY)], 12.0);
        assert_eq!(operations[ANONYMOUS].count, 5.0);
        // Half of 12 is the 6th: 2 below 5 ms, 8 more up to 10 ms → 5 ms + 4/8 of 5 ms.
        let p50 = quantile(feed, 0.5).expect("p50");
        assert!((p50 - 0.0075).abs() < 1e-9, "{p50}");
        // In +Inf: the last finite bound.
        assert_eq!(quantile(feed, 0.99), Some(0.01));
        assert_eq!(labels_of(r#"a="x\"y",b="\\""#)["a"], "x\"y");
    }

    #[test]
    fn a_restart_counts_from_zero() {
        let mut before = Histogram {
            count: 100.0,
            ..Default::default()
        };
        before.buckets.insert(Bound(f64::INFINITY), 100.0);
        let mut after = Histogram {
            count: 7.0,
            ..Default::default()
        };
        after.buckets.insert(Bound(f64::INFINITY), 7.0);
        assert_eq!(delta(Some(&before), &after).count, 7.0);
        after.count = 130.0;
        assert_eq!(delta(Some(&before), &after).count, 30.0);
    }
}
