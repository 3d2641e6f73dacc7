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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Says loudly that `what` did not run (a panic when `PARLEY_REQUIRE_SERVICES=1`, which the test command
/// sets, so CI cannot pass without them).
fn missing<T>(what: &str) -> Option<T> {
    let message = format!("{what} did NOT run (use the README's test command)");
    if std::env::var("PARLEY_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{message}");
    }
    eprintln!("\n!!! {message} !!!\n");
    None
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
            port: free_port(),
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

    /// Starts the server again (empty: it keeps nothing) on the same port; waits until it answers.
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
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(std::io::Error::other("redis-server did not start"))
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
            port: free_port(),
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
