//! The typed config of one subgraph process.
//!
//! Sources, later ones winning: built-in defaults (which work on one machine), the TOML file named by
//! `PARLEY_CONFIG` (if any), then environment variables. Every field names its variable.
//!
//! [`ServiceConfig`] holds what every subgraph has; a domain's own settings (users' mail and admins) are a
//! [`Settings`] type of that domain, read from the file's `[<name>]` table and its own variables.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid config file {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("invalid value for {0}: {1}")]
    Env(&'static str, String),
    #[error("invalid [{0}] section of the config file: {1}")]
    Section(String, toml::de::Error),
}

/// A domain's own settings: the `[<name>]` table of the `PARLEY_CONFIG` file, then its environment
/// variables (see [`ServiceConfig::settings`]).
pub trait Settings: Default + serde::de::DeserializeOwned + Send + Sync + 'static {
    /// Applies environment overrides read through `get`.
    fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError>;
}

/// The settings of a domain that has none of its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

impl Settings for NoSettings {
    fn apply_env(&mut self, _: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Config of one subgraph. Defaults work for `parley up` on one machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// The domain this process serves (`users`, `social`, …); also the SQLite file name.
    pub name: String,
    /// Address to bind. `PARLEY_HOST`, default `127.0.0.1`.
    pub host: String,
    /// Port to bind, 0 for any free port. `PARLEY_PORT`, default 0.
    pub port: u16,
    /// Folder for SQLite files, mail and media. `PARLEY_DATA_DIR`, default `./data`.
    pub data_dir: PathBuf,
    /// Store URL. `DATABASE_URL` (or `PARLEY_DATABASE_URL`); default `sqlite://<data_dir>/<name>.db`.
    pub database_url: Option<String>,
    /// Max pooled connections to the store. `PARLEY_DB_POOL`, default 10.
    pub db_pool: u32,
    /// Where the users subgraph publishes its signing keys. `PARLEY_JWKS_URL`,
    /// default `http://127.0.0.1:4001/.well-known/jwks.json`.
    pub jwks_url: String,
    /// Event feeds this subgraph consumes, `name=url` pairs (the producer's base URL).
    /// `PARLEY_EVENT_SOURCES=users=http://127.0.0.1:4001,social=…`. Default none.
    pub event_sources: Vec<EventSource>,
    /// Redis for the event bus and live fan-out across instances (`redis://host:6379`). `PARLEY_REDIS_URL`
    /// (or `REDIS_URL`); without it events stay in this process and other subgraphs pull `/events`.
    pub redis_url: Option<String>,
    /// How long an instance may go silent before another takes over its relay/consumer lease and re-claims
    /// the events it had been handed. `PARLEY_EVENT_TAKEOVER_MS`, default 15000.
    pub event_takeover_ms: u64,
    /// Failed deliveries of one event before it goes to the dead-letter stream. `PARLEY_EVENT_MAX_DELIVERIES`,
    /// default 5.
    pub event_max_deliveries: u32,
    /// Approximate number of events each Redis stream keeps. `PARLEY_EVENT_STREAM_MAXLEN`, default 500000.
    pub event_stream_maxlen: u64,
    /// The secret the router presents on its shared subscription connection, which then names each
    /// operation's caller (the router's `--router-key`). `PARLEY_ROUTER_KEY`; without it only clients' own
    /// connections are served and a connection claiming to be the router's is refused.
    pub router_key: Option<String>,
    /// The platform's public origin (the router's, as clients reach it): links in mails, upload and download
    /// URLs. `PARLEY_PUBLIC_URL`, default `http://127.0.0.1:4000`.
    pub public_url: String,
    /// The domains' own sections of the config file (`[users]`, …), read by [`Self::settings`].
    #[serde(skip)]
    pub sections: toml::Table,
}

/// One producer whose event feed a subgraph consumes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EventSource {
    pub name: String,
    pub url: String,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            host: "127.0.0.1".into(),
            port: 0,
            data_dir: PathBuf::from("data"),
            database_url: None,
            db_pool: 10,
            jwks_url: "http://127.0.0.1:4001/.well-known/jwks.json".into(),
            event_sources: Vec::new(),
            redis_url: None,
            event_takeover_ms: 15_000,
            event_max_deliveries: 5,
            event_stream_maxlen: 500_000,
            router_key: None,
            public_url: "http://127.0.0.1:4000".into(),
            sections: toml::Table::new(),
        }
    }
}

impl ServiceConfig {
    /// Defaults for `name`, then the TOML file in `PARLEY_CONFIG`, then the environment.
    pub fn load(name: &str) -> Result<Self, ConfigError> {
        let mut config = match std::env::var_os("PARLEY_CONFIG") {
            Some(path) => Self::from_file(Path::new(&path))?,
            None => Self::default(),
        };
        config.name = name.to_string();
        config.apply_env(|key| std::env::var(key).ok())?;
        Ok(config)
    }

    /// The file's top-level keys are the shared config; its tables are the domains' sections.
    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
        let parse = |e| ConfigError::Parse(path.to_path_buf(), e);
        let (sections, shared): (toml::Table, toml::Table) = toml::from_str::<toml::Table>(&text)
            .map_err(parse)?
            .into_iter()
            .partition(|(_, value)| value.is_table());
        let mut config: Self = toml::Value::Table(shared).try_into().map_err(parse)?;
        config.sections = sections;
        Ok(config)
    }

    /// This subgraph's own settings: its `[<name>]` table of the config file (defaults without one), then
    /// the environment.
    pub fn settings<S: Settings>(&self) -> Result<S, ConfigError> {
        let mut settings = match self.sections.get(&self.name) {
            Some(table) => table
                .clone()
                .try_into()
                .map_err(|e| ConfigError::Section(self.name.clone(), e))?,
            None => S::default(),
        };
        settings.apply_env(&|key| std::env::var(key).ok())?;
        Ok(settings)
    }

    /// Applies environment overrides read through `get` (a function so tests need not touch the process env).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("PARLEY_HOST") {
            self.host = v;
        }
        if let Some(v) = get("PARLEY_PORT") {
            self.port = v.parse().map_err(|_| ConfigError::Env("PARLEY_PORT", v))?;
        }
        if let Some(v) = get("PARLEY_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("PARLEY_DATABASE_URL").or_else(|| get("DATABASE_URL")) {
            self.database_url = Some(v);
        }
        if let Some(v) = get("PARLEY_DB_POOL") {
            self.db_pool = v
                .parse()
                .map_err(|_| ConfigError::Env("PARLEY_DB_POOL", v))?;
        }
        if let Some(v) = get("PARLEY_JWKS_URL") {
            self.jwks_url = v;
        }
        if let Some(v) = get("PARLEY_EVENT_SOURCES") {
            self.event_sources = parse_event_sources(&v)?;
        }
        if let Some(v) = get("PARLEY_REDIS_URL").or_else(|| get("REDIS_URL")) {
            self.redis_url = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("PARLEY_ROUTER_KEY") {
            self.router_key = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("PARLEY_PUBLIC_URL") {
            self.public_url = v.trim_end_matches('/').to_string();
        }
        parse_into(
            &get,
            "PARLEY_EVENT_TAKEOVER_MS",
            &mut self.event_takeover_ms,
        )?;
        parse_into(
            &get,
            "PARLEY_EVENT_MAX_DELIVERIES",
            &mut self.event_max_deliveries,
        )?;
        parse_into(
            &get,
            "PARLEY_EVENT_STREAM_MAXLEN",
            &mut self.event_stream_maxlen,
        )?;
        Ok(())
    }

    /// The store URL: the configured one, or a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join(format!("{}.db", self.name)).display()
            )
        })
    }
}

/// Sets `target` from variable `key` when it is present.
fn parse_into<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    target: &mut T,
) -> Result<(), ConfigError> {
    if let Some(v) = get(key) {
        *target = v.parse().map_err(|_| ConfigError::Env(key, v))?;
    }
    Ok(())
}

/// Parses `users=http://…,social=http://…`; in Redis mode a bare name (`users,social`) is enough.
pub fn parse_event_sources(text: &str) -> Result<Vec<EventSource>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, url)) if !name.is_empty() && !url.is_empty() => Ok(EventSource {
                name: name.to_string(),
                url: url.trim_end_matches('/').to_string(),
            }),
            None if pair.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                Ok(EventSource {
                    name: pair.to_string(),
                    url: String::new(),
                })
            }
            _ => Err(ConfigError::Env("PARLEY_EVENT_SOURCES", pair.to_string())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults() {
        let mut config = ServiceConfig {
            name: "social".into(),
            ..Default::default()
        };
        config
            .apply_env(|key| match key {
                "PARLEY_PORT" => Some("4100".into()),
                "PARLEY_EVENT_SOURCES" => Some("users=http://127.0.0.1:1/".into()),
                _ => None,
            })
            .expect("valid env");
        assert_eq!(config.port, 4100);
        assert_eq!(
            config.event_sources,
            vec![EventSource {
                name: "users".into(),
                url: "http://127.0.0.1:1".into()
            }]
        );
        assert!(config.database_url().ends_with("social.db?mode=rwc"));
    }

    /// A domain's `[<name>]` table is its own; the rest of the file is the shared config, still checked
    /// for unknown keys.
    #[test]
    fn the_file_holds_the_shared_config_and_each_domains_section() {
        let dir = std::env::temp_dir().join(format!("parley-config-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("parley.toml");
        std::fs::write(
            &path,
            "db_pool = 3\n[users]\nadmin_emails = [\"a@example.com\"]\n",
        )
        .expect("write");
        let mut config = ServiceConfig::from_file(&path).expect("file");
        assert_eq!(config.db_pool, 3);
        config.name = "users".into();
        #[derive(Default, Deserialize)]
        struct Users {
            admin_emails: Vec<String>,
        }
        impl Settings for Users {
            fn apply_env(&mut self, _: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
                Ok(())
            }
        }
        assert_eq!(
            config.settings::<Users>().expect("users").admin_emails,
            ["a@example.com"]
        );
        config.name = "chat".into();
        assert!(
            config.settings::<NoSettings>().is_ok(),
            "no section: defaults"
        );
        std::fs::write(&path, "db_poool = 3\n").expect("write");
        assert!(
            ServiceConfig::from_file(&path).is_err(),
            "a misspelt shared key"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let mut config = ServiceConfig::default();
        assert!(config
            .apply_env(|k| (k == "PARLEY_PORT").then(|| "x".into()))
            .is_err());
        assert!(parse_event_sources("users=").is_err());
        assert!(parse_event_sources("us ers").is_err());
        assert!(config
            .apply_env(|k| (k == "PARLEY_EVENT_TAKEOVER_MS").then(|| "soon".into()))
            .is_err());
    }
}
