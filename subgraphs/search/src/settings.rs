//! The search subgraph's own settings: `[search]` in the `PARLEY_CONFIG` file, then these variables.

use std::path::PathBuf;

use parley_kit::config::{ConfigError, Settings};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchSettings {
    /// Where this instance keeps its index (each instance its own). `PARLEY_SEARCH_INDEX_DIR`, default
    /// `<data_dir>/search/<port>`.
    pub index_dir: Option<PathBuf>,
    /// How often an instance looks for changes another instance applied (milliseconds; the instance that
    /// applied them indexes at once). `PARLEY_SEARCH_POLL_MS`, default 200.
    pub poll_ms: Option<u64>,
}

impl SearchSettings {
    pub fn poll(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.poll_ms.unwrap_or(200).max(10))
    }
}

impl Settings for SearchSettings {
    fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("PARLEY_SEARCH_INDEX_DIR") {
            self.index_dir = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
        }
        if let Some(v) = get("PARLEY_SEARCH_POLL_MS") {
            self.poll_ms = Some(
                v.parse()
                    .map_err(|_| ConfigError::Env("PARLEY_SEARCH_POLL_MS", v))?,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_section() {
        let mut settings: SearchSettings = toml::from_str("poll_ms = 50").expect("toml");
        assert_eq!(settings.poll(), std::time::Duration::from_millis(50));
        settings
            .apply_env(&|key| (key == "PARLEY_SEARCH_POLL_MS").then(|| "500".into()))
            .expect("env");
        assert_eq!(settings.poll_ms, Some(500));
        assert!(settings
            .apply_env(&|key| (key == "PARLEY_SEARCH_POLL_MS").then(|| "soon".into()))
            .is_err());
        assert!(toml::from_str::<SearchSettings>("nope = 1").is_err());
    }
}
