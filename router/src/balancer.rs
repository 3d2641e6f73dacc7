//! Several instances behind one subgraph name. The engine sends each subgraph's traffic to one URL, so for a
//! subgraph given several, the router puts a small TCP balancer of its own on a loopback port and points the
//! engine there. It works below HTTP, so queries, mutations and subscription WebSockets all pass through it.
//!
//! - Each new connection goes to the healthy instance with the fewest open connections (round-robin among
//!   equals); the engine pools connections, so its traffic spreads over the instances.
//! - Health: `GET /health` on every instance each second; an instance that fails it, or refuses a connection,
//!   is skipped until it answers again. When none looks healthy, all are tried in turn.
//! - An instance that dies takes its open connections with it; the engine reconnects, through the balancer,
//!   to one that lives.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::RouterError;

const HEALTH_EVERY: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

struct Instance {
    /// `host:port`.
    addr: String,
    healthy: AtomicBool,
    open: AtomicUsize,
}

struct Pool {
    name: String,
    instances: Vec<Instance>,
    next: AtomicUsize,
}

/// Splits `http://host:port/path` into (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String), RouterError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        RouterError::Config(format!("{url}: only http:// instance URLs can be balanced"))
    })?;
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    if addr.is_empty() {
        return Err(RouterError::Config(format!("{url}: no host")));
    }
    let addr = if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:80")
    };
    Ok((addr, format!("/{path}")))
}

/// Starts a balancer for every subgraph with more than one URL (on a thread of its own) and returns the URL
/// the engine should use for each subgraph.
pub fn start(
    urls: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<std::collections::BTreeMap<String, String>, RouterError> {
    let mut engine_urls = std::collections::BTreeMap::new();
    let mut pools = Vec::new();
    for (name, list) in urls {
        match list.as_slice() {
            [] => continue,
            [one] => {
                engine_urls.insert(name.clone(), one.clone());
            }
            many => {
                let mut instances = Vec::new();
                let mut path = String::from("/graphql");
                for url in many {
                    let (addr, p) = split_url(url)?;
                    path = p;
                    instances.push(Instance {
                        addr,
                        healthy: AtomicBool::new(true),
                        open: AtomicUsize::new(0),
                    });
                }
                let listener = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|e| RouterError::Config(format!("balancer for {name}: {e}")))?;
                let local = listener
                    .local_addr()
                    .map_err(|e| RouterError::Config(e.to_string()))?;
                engine_urls.insert(name.clone(), format!("http://{local}{path}"));
                let pool = Arc::new(Pool {
                    name: name.clone(),
                    instances,
                    next: AtomicUsize::new(0),
                });
                pools.push((pool, listener));
            }
        }
    }
    if pools.is_empty() {
        return Ok(engine_urls);
    }
    std::thread::Builder::new()
        .name("parley-balancer".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    tracing::error!(error = %err, "balancer runtime failed to start");
                    return;
                }
            };
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for (pool, listener) in pools {
                    tasks.push(tokio::spawn(check_health(pool.clone())));
                    tasks.push(tokio::spawn(serve(pool, listener)));
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
        })
        .map_err(|e| RouterError::Config(format!("balancer thread: {e}")))?;
    Ok(engine_urls)
}

async fn serve(pool: Arc<Pool>, listener: std::net::TcpListener) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(subgraph = %pool.name, error = %err, "balancer cannot listen");
            return;
        }
    };
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let _ = client.set_nodelay(true);
        tokio::spawn(forward(pool.clone(), client));
    }
}

/// The instances to try, best first: healthy ones by fewest open connections (rotating among equals), then
/// the rest.
fn candidates(pool: &Pool) -> Vec<usize> {
    let n = pool.instances.len();
    let start = pool.next.fetch_add(1, Ordering::Relaxed);
    let mut order: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
    order.sort_by_key(|&i| {
        let instance = &pool.instances[i];
        (
            !instance.healthy.load(Ordering::Relaxed),
            instance.open.load(Ordering::Relaxed),
        )
    });
    order
}

async fn forward(pool: Arc<Pool>, mut client: TcpStream) {
    for i in candidates(&pool) {
        let instance = &pool.instances[i];
        let connected =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&instance.addr)).await;
        let mut upstream = match connected {
            Ok(Ok(stream)) => stream,
            _ => {
                if instance.healthy.swap(false, Ordering::Relaxed) {
                    tracing::warn!(subgraph = %pool.name, instance = %instance.addr, "instance refused a connection; skipping it");
                }
                continue;
            }
        };
        let _ = upstream.set_nodelay(true);
        instance.open.fetch_add(1, Ordering::Relaxed);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        instance.open.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    tracing::warn!(subgraph = %pool.name, "no instance reachable");
}

async fn check_health(pool: Arc<Pool>) {
    let mut tick = tokio::time::interval(HEALTH_EVERY);
    loop {
        tick.tick().await;
        for instance in &pool.instances {
            let ok = healthy(&instance.addr).await;
            let was = instance.healthy.swap(ok, Ordering::Relaxed);
            if was != ok {
                tracing::info!(subgraph = %pool.name, instance = %instance.addr, healthy = ok, "instance health changed");
            }
        }
    }
}

/// `GET /health` answered 200 within a second.
async fn healthy(addr: &str) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0_u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    tokio::time::timeout(Duration::from_secs(1), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_urls_split_into_address_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:4005/graphql").expect("valid"),
            ("127.0.0.1:4005".into(), "/graphql".into())
        );
        assert_eq!(
            split_url("http://chat").expect("valid"),
            ("chat:80".into(), "/".into())
        );
        assert!(split_url("https://chat/graphql").is_err());
    }

    #[test]
    fn unhealthy_and_busy_instances_come_last() {
        let pool = Pool {
            name: "chat".into(),
            instances: (0..3)
                .map(|i| Instance {
                    addr: format!("127.0.0.1:{i}"),
                    healthy: AtomicBool::new(i != 0),
                    open: AtomicUsize::new(if i == 1 { 5 } else { 0 }),
                })
                .collect(),
            next: AtomicUsize::new(0),
        };
        assert_eq!(candidates(&pool), vec![2, 1, 0]);
    }
}
