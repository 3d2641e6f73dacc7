//! The analytics subgraph's own settings: `[analytics]` in the `PARLEY_CONFIG` file, then these variables.

use parley_kit::config::{ConfigError, Settings};
use serde::Deserialize;

/// The fewest days raw events are kept: client events may arrive up to [`crate::ingest::MAX_LATE_DAYS`]
/// late, and a late one must still find its day's activity to count against.
pub const MIN_RETENTION_DAYS: i64 = 8;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsSettings {
    /// Days raw events and per-day activity are kept (counts, sketches and first-seen days are kept for
    /// good). `PARLEY_ANALYTICS_RETENTION_DAYS`, default 30, at least 8.
    pub retention_days: i64,
    /// How often the retention job runs, in ms. `PARLEY_ANALYTICS_TICK_MS`, default 3,600,000 (hourly).
    pub tick_ms: u64,
    /// A test clock: `POST /analytics/test-clock` on the subgraph (never through the router) moves
    /// analytics' time ahead, so tests can seed weeks of activity. `PARLEY_ANALYTICS_TEST_CLOCK`. Never in
    /// production.
    pub test_clock: bool,
    /// The routers' Prometheus pages the performance report is made from (comma-separated).
    /// `PARLEY_ANALYTICS_SCRAPE_URLS`; `parley up` sets its router's; none by default.
    pub scrape_urls: Vec<String>,
    /// How often they are read, in ms. `PARLEY_ANALYTICS_SCRAPE_MS`, default 60,000.
    pub scrape_ms: u64,
    /// Signs report download links; every analytics instance needs the same. `PARLEY_ANALYTICS_EXPORT_KEY`,
    /// default a key kept in `<data dir>/analytics-export.key`.
    pub export_key: Option<String>,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            retention_days: 30,
            tick_ms: 3_600_000,
            test_clock: false,
            scrape_urls: Vec::new(),
            scrape_ms: 60_000,
            export_key: None,
        }
    }
}

impl AnalyticsSettings {
    pub fn retention_days(&self) -> i64 {
        self.retention_days.max(MIN_RETENTION_DAYS)
    }
}

impl Settings for AnalyticsSettings {
    fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("PARLEY_ANALYTICS_RETENTION_DAYS") {
            self.retention_days = v
                .parse()
                .map_err(|_| ConfigError::Env("PARLEY_ANALYTICS_RETENTION_DAYS", v))?;
        }
        if let Some(v) = get("PARLEY_ANALYTICS_TICK_MS") {
            self.tick_ms = v
                .parse()
                .map_err(|_| ConfigError::Env("PARLEY_ANALYTICS_TICK_MS", v))?;
        }
        if let Some(v) = get("PARLEY_ANALYTICS_SCRAPE_URLS") {
            self.scrape_urls = v
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = get("PARLEY_ANALYTICS_SCRAPE_MS") {
            self.scrape_ms = v
                .parse()
                .map_err(|_| ConfigError::Env("PARLEY_ANALYTICS_SCRAPE_MS", v))?;
        }
        if let Some(v) = get("PARLEY_ANALYTICS_EXPORT_KEY") {
            self.export_key = Some(v).filter(|k| !k.is_empty());
        }
        if let Some(v) = get("PARLEY_ANALYTICS_TEST_CLOCK") {
            self.test_clock = matches!(v.as_str(), "1" | "true");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_section_and_retention_has_a_floor() {
        let mut settings: AnalyticsSettings = toml::from_str("retention_days = 3").expect("toml");
        assert_eq!(settings.retention_days(), MIN_RETENTION_DAYS);
        settings
            .apply_env(&|key| (key == "PARLEY_ANALYTICS_RETENTION_DAYS").then(|| "90".into()))
            .expect("env");
        assert_eq!(settings.retention_days(), 90);
        assert!(settings
            .apply_env(&|key| (key == "PARLEY_ANALYTICS_TICK_MS").then(|| "soon".into()))
            .is_err());
        settings
            .apply_env(&|key| {
                (key == "PARLEY_ANALYTICS_SCRAPE_URLS")
                    .then(|| "http://a:4000/metrics, http://b:4000/metrics,".into())
            })
            .expect("env");
        assert_eq!(settings.scrape_urls.len(), 2);
        assert!(toml::from_str::<AnalyticsSettings>("nope = 1").is_err());
    }
}
