//! The media subgraph's own settings: `[media]` in the `PARLEY_CONFIG` file, then these variables.

use parley_kit::config::{ConfigError, Settings};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// The key download and upload links are signed with. `PARLEY_MEDIA_KEY`; every instance of the
    /// subgraph needs the same one. Without it a key is made once and kept in `<data_dir>/media.key`
    /// (owner-only), which suits one machine.
    pub signing_key: Option<String>,
}

impl Settings for MediaSettings {
    fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("PARLEY_MEDIA_KEY") {
            self.signing_key = Some(v).filter(|v| !v.is_empty());
        }
        Ok(())
    }
}

/// The configured key, or the one kept in `dir/media.key` (made on first use, readable by its owner only).
pub fn signing_key(settings: &MediaSettings, dir: &std::path::Path) -> std::io::Result<Vec<u8>> {
    if let Some(key) = &settings.signing_key {
        return Ok(key.as_bytes().to_vec());
    }
    let path = dir.join("media.key");
    if let Ok(key) = std::fs::read(&path) {
        if key.len() >= 32 {
            return Ok(key);
        }
    }
    parley_kit::store::private_dir(dir)?;
    let key: Vec<u8> = (0..64)
        .map(|_| {
            let byte: u8 = rand::random();
            b"0123456789abcdef"[usize::from(byte % 16)]
        })
        .collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options.open(&path)?.write_all(&key)?;
    Ok(key)
}
