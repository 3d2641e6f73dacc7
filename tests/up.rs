//! `parley up` as a user runs it: prints the GraphiQL URL once everything is healthy, serves a joined query,
//! stops cleanly on SIGTERM, restarts what dies (the worker, or with `--processes` one subgraph), and stops
//! naming a subgraph that cannot start.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parley_harness::{free_port, Client, Platform};
use serde_json::json;

/// A GraphQL client of the router `up` started on `port`.
fn router(port: u16) -> Client {
    Platform::client_of(&format!("http://127.0.0.1:{port}"))
}

/// Registers `nickname` through the router; returns the access token.
async fn register(router: &Client, nickname: &str) -> String {
    let query = format!(
        r#"mutation {{ register(input: {{email: "{nickname}@example.com", password: "correct horse 1", name: "N", nickname: "{nickname}"}}) {{ accessToken }} }}"#
    );
    let (_, body) = router.gql(&query, json!({}), None).await;
    body["data"]["register"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("a token, got {body}"))
        .to_string()
}

/// `parley up` with extra arguments and environment variables.
fn start_up_with(port: u16, args: &[&str], env: &[(&str, &str)]) -> (Child, Stderr) {
    start_up_in(&parley_kit::testing::temp_dir("up"), port, args, env)
}

/// Starts `parley up` on `data_dir` and waits for its GraphiQL line; returns it with its stderr so far
/// and to come.
fn start_up_in(
    data_dir: &std::path::Path,
    port: u16,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, Stderr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["up", "--port", &port.to_string()])
        .args(args)
        // The embedded default (SQLite files) unless `env` says otherwise, whatever servers the test
        // command started.
        .env_remove("PARLEY_POSTGRES_URL")
        .env_remove("PARLEY_REDIS_URL")
        .envs(env.iter().copied())
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start parley up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = drain_stderr(&mut child);
    let expected = format!("GraphiQL: http://127.0.0.1:{port}/");
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|err| {
            // Whatever `up` and its children said before it stopped (or stalled) is the diagnosis.
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "up prints a line within a minute ({err}); stderr:\n{}",
                stderr.lock().unwrap_or_else(|p| p.into_inner())
            )
        });
    assert_eq!(line, expected);
    (child, stderr)
}

/// Child processes of `pid` whose command line contains `needle`.
fn children_matching(pid: u32, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
    {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        // Field 4 (after the parenthesised command) is the parent pid.
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read_to_string(format!("/proc/{child}/cmdline"))
            .unwrap_or_default()
            .replace('\0', " ");
        if ppid == Some(pid) && cmdline.contains(needle) {
            found.push(child);
        }
    }
    found
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(started.elapsed() < within, "parley up did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn up_serves_then_stops_cleanly() {
    let port = free_port();
    // An existing folder, as a user's `./data` may be: up makes it owner-only.
    let data_dir = parley_kit::testing::temp_dir("up-serves");
    let (mut up, _stderr) = start_up_in(&data_dir, port, &[], &[]);
    let router = router(port);
    let token = register(&router, "upper").await;
    let (_, me) = router
        .gql(
            "{ me { nickname followingCount } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(me["data"]["me"]["nickname"], "upper", "{me}");
    // The data dir (the signing key in users.db) and its mail folder (reset tokens) are owner-only.
    for dir in [data_dir.clone(), data_dir.join("mail")] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
    }
    assert_eq!(me["data"]["me"]["followingCount"], 0, "{me}");

    let kids = children_matching(up.id(), "parley");
    assert_eq!(
        kids.len(),
        2,
        "one worker for every subgraph, and the router"
    );
    assert_eq!(children_matching(up.id(), "parley worker").len(), 1);
    signal(up.id(), "-TERM");
    assert!(wait_exit(&mut up, Duration::from_secs(30)).success());
    for kid in kids {
        assert!(
            !std::path::Path::new(&format!("/proc/{kid}/cmdline")).exists()
                || std::fs::read_to_string(format!("/proc/{kid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z"),
            "child {kid} left running"
        );
    }
}

/// A child's stderr, collected as it comes.
type Stderr = std::sync::Arc<std::sync::Mutex<String>>;

/// Collects a child's stderr as it comes (so a chatty child never blocks on a full pipe).
fn drain_stderr(child: &mut Child) -> Stderr {
    let stderr = child.stderr.take().expect("stderr");
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut text = sink.lock().unwrap_or_else(|p| p.into_inner());
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// The worker holding every subgraph, killed under `up`, comes back on the same ports (one line says so)
/// and serves again; `up` itself goes on, and stops cleanly afterwards.
#[tokio::test]
async fn up_restarts_the_worker_when_it_dies() {
    restarts_after_kill(&[], "parley worker", "subgraphs exited").await;
}

/// With `--processes`, one subgraph killed comes back alone.
#[tokio::test]
async fn up_restarts_a_subgraph_process_that_dies() {
    restarts_after_kill(&["--processes"], "subgraph chat", "chat exited").await;
}

/// Starts `up` with `args`, kills its child whose command line holds `victim`, and waits for chat to
/// answer again from a new process; `line` is what `up` must have said.
async fn restarts_after_kill(args: &[&str], victim: &str, line: &str) {
    let port = free_port();
    let (mut up, stderr) = start_up_with(port, args, &[]);
    let router = router(port);
    let token = register(&router, "kilo").await;
    let chat = children_matching(up.id(), victim);
    assert_eq!(chat.len(), 1);
    signal(chat[0], "-KILL");

    let started = Instant::now();
    loop {
        let (_, answer) = router
            .gql(
                "{ chats { edges { node { id } } } }",
                json!({}),
                Some(&token),
            )
            .await;
        let back = children_matching(up.id(), victim);
        if answer["errors"].is_null() && back.len() == 1 && back[0] != chat[0] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chat is not back: {answer}; stderr: {}",
            stderr.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        up.try_wait().expect("wait").is_none(),
        "up is still running"
    );
    signal(up.id(), "-TERM");
    assert!(wait_exit(&mut up, Duration::from_secs(30)).success());
    let stderr = stderr.lock().expect("lock").clone();
    assert!(
        stderr.contains(line) && stderr.contains("restarting"),
        "{stderr}"
    );
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
}

/// A subgraph that cannot start at all (its SQLite file is a folder) stops `up` with a line naming it and
/// why, and no backtrace.
#[test]
fn up_stops_naming_a_subgraph_that_cannot_start() {
    let data_dir = parley_kit::testing::temp_dir("up-broken");
    std::fs::create_dir_all(data_dir.join("chat.db")).expect("a folder where chat's file goes");
    let mut up = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["up", "--port", &free_port().to_string()])
        .arg("--data-dir")
        .arg(&data_dir)
        .env_remove("PARLEY_POSTGRES_URL")
        .env_remove("PARLEY_REDIS_URL")
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start parley up");
    let stderr = drain_stderr(&mut up);
    let status = wait_exit(&mut up, Duration::from_secs(60));
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(200));
    let stderr = stderr.lock().expect("lock").clone();
    assert!(
        stderr.contains("subgraph chat:") && stderr.contains("(exit status: 1) could not start"),
        "{stderr}"
    );
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
}

#[test]
fn up_production_says_which_server_is_missing() {
    let output = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["up", "--production", "--port", &free_port().to_string()])
        .env_remove("PARLEY_POSTGRES_URL")
        .env_remove("PARLEY_REDIS_URL")
        .output()
        .expect("run parley up");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PARLEY_POSTGRES_URL and PARLEY_REDIS_URL"),
        "{stderr}"
    );
}

#[tokio::test]
async fn up_production_runs_on_postgres_and_redis() {
    let (Some(pg), Some(redis)) = (
        parley_kit::testing::PostgresServer::start(),
        parley_kit::testing::RedisServer::start(),
    ) else {
        return;
    };
    let port = free_port();
    let postgres = pg.url().trim_end_matches("/postgres").to_string();
    let redis_url = redis.url();
    let (mut up, _stderr) = start_up_with(
        port,
        &["--production"],
        &[
            ("PARLEY_POSTGRES_URL", postgres.as_str()),
            ("PARLEY_REDIS_URL", redis_url.as_str()),
        ],
    );
    let router = router(port);
    let token = register(&router, "prod").await;
    // A query joined across users and social.
    let (_, me) = router
        .gql("{ me { nickname followerCount } }", json!({}), Some(&token))
        .await;
    assert_eq!(me["data"]["me"]["nickname"], "prod", "{me}");
    // Production answers clients only: no introspection, no GraphiQL page.
    let (_, schema) = router
        .gql("{ __schema { queryType { name } } }", json!({}), None)
        .await;
    assert_eq!(
        schema["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{schema}"
    );
    let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .expect("router")
        .text()
        .await
        .unwrap_or_default();
    assert!(!page.contains("GraphiQL"), "GraphiQL served in production");
    // The users subgraph's tables live in PostgreSQL database parley_users, and its events in Redis.
    let users_db = sea_orm::Database::connect(format!("{postgres}/parley_users"))
        .await
        .expect("parley_users database");
    use sea_orm::ConnectionTrait;
    let rows = users_db
        .query_one_raw(sea_orm::Statement::from_string(
            users_db.get_database_backend(),
            "SELECT count(*) AS n FROM parley_outbox",
        ))
        .await
        .expect("outbox")
        .expect("row");
    assert!(rows.try_get::<i64>("", "n").expect("n") >= 1);
    let client = redis::Client::open(redis_url.as_str()).expect("redis");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis conn");
    let length: i64 = redis::cmd("XLEN")
        .arg("parley:events:users")
        .query_async(&mut conn)
        .await
        .expect("xlen");
    assert!(length >= 1, "users' events went through Redis");
    signal(up.id(), "-TERM");
    assert!(wait_exit(&mut up, Duration::from_secs(30)).success());
}
