//! Leadership among the instances of one subgraph: work that must run once at a time (the outbox relay, a
//! consumer group's reader, so events stay in order) runs only on the instance holding a Redis lease.
//!
//! The lease is a key set with `NX` and a TTL, renewed every third of it by its holder (a Lua check-and-extend,
//! so an instance never extends a lease another one took after it expired). An instance that cannot renew —
//! it lost the key or cannot reach Redis — stops the work at once; another takes over once the TTL has run
//! out. With one process (no Redis) the work simply runs.

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;

/// Who may run once-at-a-time work.
#[derive(Clone)]
pub enum Leadership {
    /// The only instance: always the leader.
    Alone,
    /// Instances compete for leases in Redis.
    Redis {
        conn: ConnectionManager,
        /// This instance's token (unique per process).
        instance: String,
        ttl: Duration,
    },
}

const RENEW: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1]) else return 0 end";

impl Leadership {
    /// Runs the work `start` makes whenever this instance holds lease `name`, forever: the work is dropped
    /// (cancelled at its next await) when the lease is lost, and started afresh when it is won again.
    pub async fn run<F, Fut>(self, name: &str, mut start: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let (mut conn, instance, ttl) = match self {
            Leadership::Alone => loop {
                start().await;
            },
            Leadership::Redis {
                conn,
                instance,
                ttl,
            } => (conn, instance, ttl),
        };
        let key = format!("parley:lease:{name}");
        let ttl_ms = ttl.as_millis() as u64;
        let mut tick = tokio::time::interval(ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let won: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&instance)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut conn)
                .await
                .unwrap_or(None);
            if won.is_none() {
                continue;
            }
            tracing::info!(lease = %key, "took the lease");
            let work = start();
            tokio::pin!(work);
            loop {
                tokio::select! {
                    () = &mut work => break,
                    _ = tick.tick() => {
                        let renewed: i64 = redis::Script::new(RENEW)
                            .key(&key)
                            .arg(&instance)
                            .arg(ttl_ms)
                            .invoke_async(&mut conn)
                            .await
                            .unwrap_or(0);
                        if renewed != 1 {
                            tracing::warn!(lease = %key, "lost the lease; stopping its work");
                            break;
                        }
                    }
                }
            }
            let _: Result<i64, _> = redis::Script::new(RELEASE)
                .key(&key)
                .arg(&instance)
                .invoke_async(&mut conn)
                .await;
        }
    }
}
