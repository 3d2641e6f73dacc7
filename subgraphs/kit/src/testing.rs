//! Test helpers (feature `testing`): throw-away data dirs and configs for subgraphs on port 0.

use std::path::PathBuf;

use crate::ServiceConfig;

/// A store with only the kit's own event tables (outbox, inbox, positions, dead letters):
/// `store::connect_url::<EventTables>(url, n)`.
pub type EventTables = crate::events::tables::NoTables;

/// The payload of [`tick`]'s events, for tests that append them.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Tick {
    pub n: i64,
}

impl crate::events::Event for Tick {
    const KIND: crate::events::EventKind = crate::events::EventKind {
        name: "Tick",
        source: "producer",
    };
}

/// `event` as its producer's log would carry it, at `position`, about `aggregate`.
pub fn envelope<E: crate::events::Event>(
    position: i64,
    aggregate: impl std::fmt::Display,
    event: E,
) -> crate::events::EventEnvelope {
    crate::events::EventEnvelope {
        position,
        id: uuid::Uuid::now_v7(),
        source: E::KIND.source.into(),
        kind: E::KIND.name.into(),
        aggregate_id: aggregate.to_string(),
        occurred_at: chrono::Utc::now(),
        payload: serde_json::to_value(event).unwrap_or_default(),
    }
}

/// An event of no domain (`Tick` on aggregate `clock` from `producer`) at `position`, payload `{"n": position}`.
pub fn tick(position: i64) -> crate::events::EventEnvelope {
    crate::events::EventEnvelope {
        position,
        id: uuid::Uuid::now_v7(),
        source: "producer".into(),
        kind: "Tick".into(),
        aggregate_id: "clock".into(),
        occurred_at: chrono::Utc::now(),
        payload: serde_json::json!({ "n": position }),
    }
}

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A free port below the kernel's ephemeral range, for a server a test stops and starts again on the same
/// port: in the ephemeral range, while the server is down, another test's `bind(0)` — or a client
/// reconnecting to that very port, which can connect to itself — may take it.
/// Each call starts further along (tests of one process ask at the same time, before anything binds).
pub fn restartable_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let offset = (std::process::id() * 37 + NEXT.fetch_add(50, Ordering::Relaxed)) % SPAN;
    (0..SPAN)
        .map(|i| (LOW + (offset + i) % SPAN) as u16)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .unwrap_or_else(free_port)
}

/// Says loudly that `what` did not run (a panic when `PARLEY_REQUIRE_SERVICES=1`, which the test command
/// sets, so CI cannot pass without them).
pub fn missing<T>(what: &str) -> Option<T> {
    let message = format!("{what} did NOT run (use the README's test command)");
    if std::env::var("PARLEY_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{message}");
    }
    eprintln!("\n!!! {message} !!!\n");
    None
}

/// The PostgreSQL server the test command started (`PARLEY_TEST_POSTGRES_URL`, its admin database), or `None`
/// after saying so.
pub fn postgres_url() -> Option<String> {
    std::env::var("PARLEY_TEST_POSTGRES_URL")
        .ok()
        .or_else(|| missing("PARLEY_TEST_POSTGRES_URL is not set: PostgreSQL tests"))
}

/// The S3-compatible server the test command started, or `None` after saying so.
#[derive(Debug, Clone)]
pub struct S3Server {
    pub url: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The test command's S3 server (`PARLEY_TEST_S3_URL`, `_BUCKET`, `_ACCESS_KEY`, `_SECRET_KEY`).
pub fn s3_server() -> Option<S3Server> {
    let var = |name: &str| std::env::var(name).ok();
    match (
        var("PARLEY_TEST_S3_URL"),
        var("PARLEY_TEST_S3_BUCKET"),
        var("PARLEY_TEST_S3_ACCESS_KEY"),
        var("PARLEY_TEST_S3_SECRET_KEY"),
    ) {
        (Some(url), Some(bucket), Some(access_key), Some(secret_key)) => Some(S3Server {
            url,
            bucket,
            access_key,
            secret_key,
        }),
        _ => missing("PARLEY_TEST_S3_URL is not set: S3 tests"),
    }
}

/// The test command's SMTP server: its URL and the folder it writes each message it accepts to.
#[derive(Debug, Clone)]
pub struct SmtpServer {
    pub url: String,
    pub dir: PathBuf,
}

impl SmtpServer {
    /// The messages it accepted for `address` (raw, headers and body), oldest first.
    pub fn received(&self, address: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .filter(|eml| {
                std::fs::read_to_string(eml.with_extension("rcpt"))
                    .is_ok_and(|to| to.lines().any(|l| l.eq_ignore_ascii_case(address)))
            })
            .filter_map(|eml| std::fs::read_to_string(eml).ok())
            .collect()
    }
}

/// The test command's SMTP server (`PARLEY_TEST_SMTP_URL`, `PARLEY_TEST_SMTP_DIR`).
pub fn smtp_server() -> Option<SmtpServer> {
    match (
        std::env::var("PARLEY_TEST_SMTP_URL"),
        std::env::var("PARLEY_TEST_SMTP_DIR"),
    ) {
        (Ok(url), Ok(dir)) => Some(SmtpServer {
            url,
            dir: PathBuf::from(dir),
        }),
        _ => missing("PARLEY_TEST_SMTP_URL is not set: mail tests"),
    }
}

/// Creates a fresh database on the server at `admin_url`; returns its URL.
pub async fn fresh_postgres_db(admin_url: &str, label: &str) -> String {
    use sea_orm::ConnectionTrait;
    let name = format!("parley_{label}_{}", uuid::Uuid::now_v7().simple());
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .expect("connect to test PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create test database");
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    format!("{base}/{name}")
}

/// A Redis server of a test's own (so the test may stop and restart it): `redis-server` on a free loopback
/// port, no persistence, killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    /// Starts one, or returns `None` (after saying so; a panic when `PARLEY_REQUIRE_SERVICES=1`, which the
    /// test command sets) when `redis-server` is not installed.
    pub fn start() -> Option<RedisServer> {
        let mut server = RedisServer {
            port: restartable_port(),
            child: None,
        };
        if let Err(err) = server.restart() {
            return missing(&format!("redis-server unavailable ({err}): Redis tests"));
        }
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again (empty: it keeps nothing) on the same port; waits until it answers `PING`
    /// (not merely until something accepts on the port).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        self.child = Some(child);
        for _ in 0..100 {
            if self.answers_ping() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(std::io::Error::other("redis-server did not start"))
    }

    fn answers_ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Kills the server (as if it crashed).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL 15 server of a test's own (so the test may restart it): a fresh cluster in a temp dir on a
/// free loopback port, run as the `postgres` user when the test runs as root; stopped on drop.
pub struct PostgresServer {
    pub port: u16,
    dir: PathBuf,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(program: &str) -> std::process::Command {
    let path = format!("{PG_BIN}/{program}");
    // Whether we are root, asked of `id` (keeps the kit free of libc).
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--", &path]);
        command
    } else {
        std::process::Command::new(path)
    }
}

impl PostgresServer {
    /// Creates and starts a cluster, or returns `None` (after saying so; a panic when
    /// `PARLEY_REQUIRE_SERVICES=1`) when PostgreSQL 15 is not installed.
    pub fn start() -> Option<PostgresServer> {
        let dir = temp_dir("pg");
        let server = PostgresServer {
            port: restartable_port(),
            dir,
        };
        let created = std::process::Command::new("chmod")
            .args(["777"])
            .arg(&server.dir)
            .status()
            .is_ok_and(|s| s.success())
            && as_postgres("initdb")
                .args(["-D"])
                .arg(server.dir.join("data"))
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if !created || server.pg_ctl("start").is_err() {
            return missing("PostgreSQL 15 unavailable: tests with a PostgreSQL of their own");
        }
        Some(server)
    }

    /// The admin database's URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, action: &str) -> std::io::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let ok = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-m", "fast", "-o", &options, action])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()?
            .success();
        if ok {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("pg_ctl {action} failed")))
        }
    }

    /// Stops the server (fast shutdown: open sessions are cut).
    pub fn stop(&self) -> std::io::Result<()> {
        self.pg_ctl("stop")
    }

    /// Starts it again on the same port and data.
    pub fn resume(&self) -> std::io::Result<()> {
        self.pg_ctl("start")
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
