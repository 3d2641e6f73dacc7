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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut server = RedisServer { port, child: None };
        if let Err(err) = server.restart() {
            let message = format!("redis-server unavailable ({err}): Redis tests did NOT run (use the README's test command)");
            if std::env::var("PARLEY_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!("{message}");
            }
            eprintln!("\n!!! {message} !!!\n");
            return None;
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
