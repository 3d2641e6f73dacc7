//! parley-fuzz: drives Parley's router in this process with fuzzer input, over plain HTTP on loopback.
//!
//! [`Harness`] starts the router once (Parley's config and plugin over the checked-in supergraph; every
//! subgraph pointed at a closed port, so fetches fail fast) and keeps one keep-alive connection to it. The
//! input shapes and the answer contract are the router's own ([`parley_router::fuzzing`]), so the
//! regression tests replay findings the same way. The fuzz target is `fuzz_targets/router_request.rs`;
//! `fuzz/run.sh` builds and runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use parley_router::fuzzing::{check, request_from, Request};

/// What the router answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The router under test, started once per process.
pub struct Harness {
    addr: SocketAddr,
    connection: Mutex<Option<TcpStream>>,
}

/// How long one request may take before it counts as a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

impl Harness {
    pub fn get() -> &'static Harness {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(Harness::start)
    }

    fn start() -> Harness {
        // A panic on any router thread must end the process, so libFuzzer records the input.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            std::process::abort();
        }));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let closed = vec!["http://127.0.0.1:1/graphql".to_string()];
        let options = parley_router::RouterOptions {
            supergraph: root.join("schema/supergraph.graphql"),
            host: "127.0.0.1".into(),
            port,
            subgraph_urls: ["chat", "feed", "posts", "social", "users"]
                .into_iter()
                .map(|name| (name.to_string(), closed.clone()))
                .collect(),
            jwks_url: None,
            introspection: true,
            persisted_documents: None,
            redis_url: None,
            router_key: None,
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            rate_limits: false,
            live_sharing: true,
            live_sharing_websocket: false,
            extra_config: None,
            work_dir: std::env::temp_dir().join(format!("parley-fuzz-{}", std::process::id())),
        };
        std::thread::spawn(move || {
            if let Err(err) = parley_router::run(&options) {
                eprintln!("router stopped: {err}");
                std::process::abort();
            }
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let harness = Harness {
            addr,
            connection: Mutex::new(None),
        };
        // Ready once it answers a query: its health check answers before the supergraph is loaded.
        let probe = Request::Post(br#"{"query":"{ __typename }"}"#.to_vec());
        let deadline = Instant::now() + Duration::from_secs(60);
        while harness.try_send(&probe).ok().map(|a| a.status) != Some(200) {
            assert!(Instant::now() < deadline, "router did not start on {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
        harness
    }

    /// Sends `request`; panics if the router drops the connection without an answer or hangs.
    pub fn send(&self, request: &Request) -> Answer {
        self.try_send(request)
            .unwrap_or_else(|err| panic!("no answer to {request:?}: {err}"))
    }

    fn try_send(&self, request: &Request) -> std::io::Result<Answer> {
        let (head, body) = match request {
            Request::Post(body) => (
                format!(
                    "POST /graphql HTTP/1.1\r\nhost: fuzz\r\ncontent-type: application/json\r\n\
                     accept: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                ),
                body.as_slice(),
            ),
            Request::Get(query) => (
                format!(
                    "GET /graphql?query={query} HTTP/1.1\r\nhost: fuzz\r\naccept: application/json\r\n\r\n"
                ),
                &[][..],
            ),
        };
        self.exchange(head.as_bytes(), body)
    }

    /// One request/answer on the kept connection, or on a new one when there is none or the router had
    /// closed the kept one in the meantime (idle or after its last answer: not a finding).
    fn exchange(&self, head: &[u8], body: &[u8]) -> std::io::Result<Answer> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(kept) = slot.take() {
            if let Ok((answer, stream)) = Self::exchange_on(kept, head, body) {
                *slot = stream;
                return Ok(answer);
            }
        }
        let stream = TcpStream::connect(self.addr)?;
        stream.set_read_timeout(Some(ANSWER_WITHIN))?;
        stream.set_nodelay(true)?;
        let (answer, stream) = Self::exchange_on(stream, head, body)?;
        *slot = stream;
        Ok(answer)
    }

    /// Sends on `stream`, reads the answer, and gives the stream back if it stays open.
    fn exchange_on(
        stream: TcpStream,
        head: &[u8],
        body: &[u8],
    ) -> std::io::Result<(Answer, Option<TcpStream>)> {
        let mut writer = stream.try_clone()?;
        writer.write_all(head)?;
        writer.write_all(body)?;
        let mut reader = BufReader::new(stream);
        let (answer, keep) = read_answer(&mut reader)?;
        let stream = (keep && reader.buffer().is_empty()).then(|| reader.into_inner());
        Ok((answer, stream))
    }
}

/// Reads one HTTP/1.1 response; also says whether the connection stays open.
fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<(Answer, bool)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(bad("connection closed before an answer"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let (mut length, mut chunked, mut keep) = (0usize, false, true);
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(bad("malformed header"));
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().map_err(|_| bad("content-length"))?,
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => keep = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(|_| bad("chunk size"))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok((Answer { status, body }, keep))
}
