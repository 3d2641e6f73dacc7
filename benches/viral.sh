#!/usr/bin/env bash
# Viral post (issue 23): many viewers of one post while comments and votes pour in, without shared live streams
# (every viewer its own engine subscription), with them for SSE viewers only (`PARLEY_LIVE_SHARING_WEBSOCKET=
# false`), and with WebSocket viewers served by the live front too (the default), side by side in one run. Prints
# figures; asserts nothing.
#
#   benches/viral.sh [SSE] [WS] [SECONDS]        (default 9000 anonymous SSE, 1000 WebSocket, 60 s)
#
# Builds in release; seeds one user per WebSocket viewer; for each mode starts `parley up --processes` (router
# and posts in processes of their own, so each one's memory and CPU are its own) and runs `fanout --seconds`:
# anonymous SSE viewers on `commentAdded`, signed-in WebSocket viewers on `commentAdded` and
# `postScoreChanged`, 5 comments/s and 50 votes/s.
# Figures: publish → each comment delivery p50/p99, deliveries missing, router and posts CPU and RSS.
set -euo pipefail
# The load comes from one address, far over the per-caller limits a real client meets.
export PARLEY_NO_RATE_LIMITS=true
cd "$(dirname "$0")/.."
sse=${1:-9000}
ws=${2:-1000}
seconds=${3:-60}
port=${PORT:-4792}
bench_dir="$PWD/target/bench"
bin=target/release
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$bench_dir"

cargo build --release -p parley -p parley-bench

up_pid=
stop_up() { if [ -n "$up_pid" ]; then kill "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; up_pid=; fi; }
trap stop_up EXIT

run() {
  local label=$1
  local data="$bench_dir/viral-$label"
  rm -rf "$data"
  "$bin/seed" --data-dir "$data" --users "$(( ws > 0 ? ws : 1 ))" --posts 0 --comments 0 --votes 0 --readers 0 --follows 0 | tail -1
  env -u PARLEY_POSTGRES_URL -u PARLEY_REDIS_URL "$bin/parley" up --processes --data-dir "$data" --port "$port" \
    > "$bench_dir/up-viral.log" 2>&1 &
  up_pid=$!
  for _ in $(seq 600); do grep -q GraphiQL "$bench_dir/up-viral.log" && break; sleep 0.1; done
  local router posts
  router=$(pgrep -f "parley router .*--port $port" | head -1)
  posts=$(pgrep -f "parley subgraph posts" | head -1)
  echo "== $label: $sse SSE + $ws WebSocket viewers of one post, $seconds s"
  "$bin/fanout" --url "http://127.0.0.1:$port/graphql" --sse "$sse" --ws "$ws" --ws-users "$ws" --seconds "$seconds" \
    --comments-per-sec 5 --votes-per-sec 50 --pids "router=$router,posts=$posts"
  stop_up
}

PARLEY_LIVE_SHARING=false run "per-viewer (before)"
PARLEY_LIVE_SHARING=true PARLEY_LIVE_SHARING_WEBSOCKET=false run "shared (SSE)"
PARLEY_LIVE_SHARING=true PARLEY_LIVE_SHARING_WEBSOCKET=true run "shared (SSE and WebSocket)"
