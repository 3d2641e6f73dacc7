#!/usr/bin/env bash
# Chat fan-out benchmark (issue: chat). Prints figures; asserts nothing.
#
#   benches/chat.sh [SUBSCRIBERS]        (default 10000; SCENARIOS="groups big", MODES="ws sse shared-sse shared-ws")
#
# Builds in release; seeds 10,000 users and (1) group chats of 10, (2) one chat of 10,000 members, in SQLite;
# starts `parley up` on each and runs `chatload`: one subscription per member to `messageAdded` through the
# router, a fixed-rate phase (latency) and a max-rate phase (throughput), with the router's and chat's resident
# memory and CPU. Four modes side by side on the same seed (issue 23): every member its own engine
# subscription over WebSocket (before shared streams: `PARLEY_LIVE_SHARING=false`), the same over SSE, and
# shared streams (the default: one upstream per chat, each message judged once by chat for all its members)
# over SSE and over WebSocket (the live front relaying the rest over one link to the engine per worker).
#
# Each subscriber holds one client socket in the router (`parley up` gives the router and subgraphs a router key,
# so the router's subscriptions to chat share one upstream connection); the load generator needs one descriptor
# per subscriber too, within the container's hard open-files limit of 20,000.
set -euo pipefail
# The load comes from one address, far over the per-caller limits a real client meets.
export PARLEY_NO_RATE_LIMITS=true
cd "$(dirname "$0")/.."
subscribers=${1:-10000}
port=${PORT:-4791}
bench_dir="$PWD/target/bench"
bin=target/release
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release -p parley -p parley-bench

up_pid=
stop_up() { if [ -n "$up_pid" ]; then kill "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; up_pid=; fi; }
trap stop_up EXIT

run() {
  local label=$1 groups=$2 size=$3 rate=$4 senders=$5
  local seeded="$bench_dir/chat-$label-seed"
  rm -rf "$seeded"
  "$bin/seed" --data-dir "$seeded" --users 10000 --posts 0 --comments 0 --votes 0 --readers 0 --follows 0 \
    --chat-groups "$groups" --chat-size "$size" | tail -1
  for m in ${MODES:-ws sse shared-sse shared-ws}; do
    case $m in
      ws) PARLEY_LIVE_SHARING=false mode "$label" "per viewer, WebSocket (before)" "$rate" "$senders" ;;
      sse) PARLEY_LIVE_SHARING=false mode "$label" "per viewer, SSE" "$rate" "$senders" --sse ;;
      shared-sse) PARLEY_LIVE_SHARING=true mode "$label" "shared, SSE" "$rate" "$senders" --sse --shared ;;
      shared-ws) PARLEY_LIVE_SHARING=true PARLEY_LIVE_SHARING_WEBSOCKET=true \
        mode "$label" "shared, WebSocket" "$rate" "$senders" --shared ;;
    esac
  done
}

mode() {
  local label=$1 how=$2 rate=$3 senders=$4
  shift 4
  local data="$bench_dir/chat-$label"
  rm -rf "$data" && cp -r "$bench_dir/chat-$label-seed" "$data"
  env -u PARLEY_POSTGRES_URL PARLEY_LIVE_SHARING_WEBSOCKET="${PARLEY_LIVE_SHARING_WEBSOCKET:-false}" "$bin/parley" up --data-dir "$data" --port "$port" \
    > "$bench_dir/up-chat.log" 2>&1 &
  up_pid=$!
  for _ in $(seq 600); do grep -q GraphiQL "$bench_dir/up-chat.log" && break; sleep 0.1; done
  local chat_url
  chat_url=$(tr '\0' ' ' < "/proc/$(pgrep -f 'parley router' | head -1)/cmdline" | grep -o 'chat=http://[^ ]*' | cut -d= -f2)
  chat_url=${chat_url%/graphql}
  echo "== $label, $how: $subscribers subscribers"
  "$bin/chatload" --url "http://127.0.0.1:$port/graphql" --data-dir "$data" --subscribers "$subscribers" \
    --rate "$rate" --seconds 15 --senders "$senders" --chat-url "$chat_url" "$@"
  stop_up
}

for scenario in ${SCENARIOS:-groups big}; do
  case $scenario in
    groups) run groups 1000 10 50 4 ;;
    big) run big 1 10000 1 1 ;;
  esac
done
