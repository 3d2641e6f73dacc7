#!/usr/bin/env bash
# Production mode on one machine (issue: production): PostgreSQL + Redis (started here, under target/bench),
# `parley up --production` (router A, one instance of each subgraph) plus a second chat instance behind a
# second router B. Prints figures; asserts nothing.
#
#   benches/production.sh [SUBSCRIBERS]        (default 2000)
#
# 1. busload: the Redis bus alone — outbox → consumer events/s on PostgreSQL stores, redelivery after a
#    consumer dies, live tail latency between two instances.
# 2. chatload across instances: SUBSCRIBERS members of groups of 10 subscribe to `messageAdded` through
#    router B (chat instance 2); messages are sent through router A (chat instance 1) at a fixed rate; the
#    publish-to-delivery latency therefore covers router A → chat 1 → PostgreSQL → outbox relay → Redis →
#    chat 2's tail → router B → client.
set -euo pipefail
# The load comes from one address, far over the per-caller limits a real client meets.
export PARLEY_NO_RATE_LIMITS=true
cd "$(dirname "$0")/.."
subscribers=${1:-2000}
bench_dir="$PWD/target/bench"
bin=target/release
mkdir -p "$bench_dir"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
source scripts/services.sh
install_missing
cargo build --release -p parley -p parley-bench

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_services
}
trap cleanup EXIT
start_postgres "$bench_dir/pg-production"
start_redis "$bench_dir/redis-production"
redis_url=$PARLEY_TEST_REDIS_URL

log "busload (Redis bus, PostgreSQL stores)"
"$bin/busload" --redis-url "$redis_url" --postgres "$PARLEY_TEST_POSTGRES_URL" --events 50000 --live-rate 1000

log "seeding $subscribers chat members into PostgreSQL"
"$bin/seed" --postgres "$PARLEY_POSTGRES_URL" --data-dir "$bench_dir/production" --users "$subscribers" \
  --posts 0 --comments 0 --votes 0 --readers 0 --follows 0 \
  --chat-groups $((subscribers / 10)) --chat-size 10 | tail -1

port_a=4881
port_b=4882
PARLEY_POSTGRES_URL=$PARLEY_POSTGRES_URL PARLEY_REDIS_URL=$redis_url \
  "$bin/parley" up --production --data-dir "$bench_dir/production" --port "$port_a" > "$bench_dir/up-production.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do grep -q GraphiQL "$bench_dir/up-production.log" && break; sleep 0.1; done
grep -q GraphiQL "$bench_dir/up-production.log" || { cat "$bench_dir/up-production.log"; exit 1; }
router_cmd=$(tr '\0' '\n' < "/proc/$(pgrep -f "parley router .*--port $port_a" | head -1)/cmdline")
users_url=$(grep -o 'users=http://[^ ]*' <<< "$router_cmd" | cut -d= -f2)
users_url=${users_url%/graphql}

log "second chat instance and router B"
chat2_port=$(free_port)
DATABASE_URL="$PARLEY_POSTGRES_URL/parley_chat" PARLEY_REDIS_URL=$redis_url \
  PARLEY_JWKS_URL="$users_url/.well-known/jwks.json" \
  "$bin/parley" subgraph chat --port "$chat2_port" > "$bench_dir/chat2.log" 2>&1 &
pids+=($!)
router_b_args=()
while read -r pair; do
  case "$pair" in
    chat=*) router_b_args+=(--subgraph-url "chat=http://127.0.0.1:$chat2_port/graphql") ;;
    *) router_b_args+=(--subgraph-url "$pair") ;;
  esac
done < <(grep -A1 -- '--subgraph-url' <<< "$router_cmd" | grep '=http')
"$bin/parley" router --supergraph schema/supergraph.graphql --port "$port_b" --work-dir "$bench_dir/router-b" \
  --jwks-url "$users_url/.well-known/jwks.json" "${router_b_args[@]}" > "$bench_dir/router-b.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port_b/readiness" >/dev/null && break; sleep 0.1; done

log "chatload: subscribers on router B, sends through router A"
"$bin/chatload" --url "http://127.0.0.1:$port_b/graphql" --send-url "http://127.0.0.1:$port_a/graphql" \
  --postgres "$PARLEY_POSTGRES_URL" --subscribers "$subscribers" --rate 50 --seconds 15 --max-rate-seconds 0 \
  --chat-url "http://127.0.0.1:$chat2_port"
