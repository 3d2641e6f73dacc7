#!/usr/bin/env bash
# Parley's content benchmark (issue: posts, feed, live comments). Prints figures; asserts nothing.
#
#   benches/run.sh [sqlite|postgres|both]        (default: both)
#
# For each store: builds in release, seeds 100k users with 100k posts (200k comments, 500k votes), then again
# with 1M posts (2M comments, 5M votes); each time starts `parley up` on that data and measures through the
# router, at fixed concurrencies (CONCURRENCY, default "8 16"):
#   posts(sort: HOT, first: 25) { title author { nickname } score commentCount }   (anonymous)
#   feed(first: 25) { title author { nickname } score }                             (100 seeded readers)
# and, at 1M posts, a new comment fanned out to 500 WebSocket + 500 SSE subscribers.
# Everything runs on loopback; every phase is bounded in time.
set -euo pipefail
# The load comes from one address, far over the per-caller limits a real client meets.
export PARLEY_NO_RATE_LIMITS=true
cd "$(dirname "$0")/.."
source scripts/services.sh

stores=${1:-both}
concurrencies=${CONCURRENCY:-8 16}
duration=${DURATION:-20}
port=${PORT:-4790}
bench_dir="$root/target/bench"
bin=target/release
mkdir -p "$bench_dir"

cargo build --release -p parley -p parley-bench

up_pid=
stop_up() { if [ -n "$up_pid" ]; then kill "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; up_pid=; fi; }
trap 'stop_up; stop_services' EXIT

# start_up DATA STORE: `parley up` on the seeded data (PostgreSQL databases parley_<name> for postgres).
start_up() {
  local data=$1 store=$2
  if [ "$store" = postgres ]; then
    "$bin/parley" up --data-dir "$data" --port "$port" > "$bench_dir/up.log" 2>&1 &
  else
    env -u PARLEY_POSTGRES_URL "$bin/parley" up --data-dir "$data" --port "$port" > "$bench_dir/up.log" 2>&1 &
  fi
  up_pid=$!
  for _ in $(seq 600); do grep -q GraphiQL "$bench_dir/up.log" && return 0; sleep 0.1; done
  echo "parley up did not start"; cat "$bench_dir/up.log"; exit 1
}

# Resident memory of `parley up` and its children, idle.
rss_report() {
  sleep 2
  local pids
  pids=$(echo "$up_pid" $(pgrep -P "$up_pid") | tr ' ' ',')
  ps -o rss=,args= -p "$pids" | awk '{ total += $1; printf "  RSS %7.1f MB  %s %s %s\n", $1/1024, $2, $3, $4 } END { printf "  RSS %7.1f MB  total\n", total/1024 }' || true
}

# Each query at each concurrency: anonymous posts(HOT) would be flattered by the router's deduplication of
# identical in-flight subgraph requests, so it also runs with 100 users' tokens.
measure() {
  local label=$1 c
  for c in $concurrencies; do
    "$bin/load" --url "http://127.0.0.1:$port/graphql" --label "$label posts(HOT) anonymous c$c" \
      --concurrency "$c" --duration "$duration" \
      --query '{ posts(sort: HOT, first: 25) { edges { node { title author { nickname } score commentCount } } } }'
    "$bin/load" --url "http://127.0.0.1:$port/graphql" --label "$label posts(HOT) signed-in c$c" --login 100 \
      --concurrency "$c" --duration "$duration" \
      --query '{ posts(sort: HOT, first: 25) { edges { node { title author { nickname } score commentCount } } } }'
    "$bin/load" --url "http://127.0.0.1:$port/graphql" --label "$label feed c$c" --login 100 \
      --concurrency "$c" --duration "$duration" \
      --query '{ feed(first: 25) { edges { node { title author { nickname } score } } } }'
  done
}

run_store() {
  local store=$1
  for posts in 100000 1000000; do
    local data="$bench_dir/$store-$posts"
    rm -rf "$data"
    local seed_args=(--users 100000 --posts "$posts" --comments $((posts * 2)) --votes $((posts * 5)) --data-dir "$data")
    if [ "$store" = postgres ]; then
      seed_args+=(--postgres "$PARLEY_POSTGRES_URL")
    fi
    log "$store: seeding $posts posts"
    time "$bin/seed" "${seed_args[@]}"
    start_up "$data" "$store"
    rss_report
    measure "$store $posts posts:"
    if [ "$posts" = 1000000 ]; then
      "$bin/fanout" --url "http://127.0.0.1:$port/graphql" --ws 500 --sse 500 --rounds 20
    fi
    stop_up
  done
}

if [ "$stores" = sqlite ] || [ "$stores" = both ]; then run_store sqlite; fi
if [ "$stores" = postgres ] || [ "$stores" = both ]; then
  install_missing
  start_postgres "$bench_dir/pg"
  run_store postgres
fi
