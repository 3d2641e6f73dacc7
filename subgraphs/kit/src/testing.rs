//! Test helpers (feature `testing`): throw-away data dirs and configs for subgraphs on port 0.

use std::path::PathBuf;

use crate::ServiceConfig;

/// A fresh, empty folder under the system temp dir.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parley-{label}-{}", uuid::Uuid::now_v7()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A config for subgraph `name` with its SQLite file in `data_dir`.
pub fn config(name: &str, data_dir: PathBuf) -> ServiceConfig {
    ServiceConfig {
        name: name.to_string(),
        data_dir,
        ..ServiceConfig::default()
    }
}
