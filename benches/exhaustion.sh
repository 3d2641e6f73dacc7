#!/usr/bin/env bash
# Exhaustion attempts against `parley up --processes` (one process per subgraph), each for SECONDS (default
# 600): an APQ flood, a failed-login flood with random emails and a WebSocket subscription flood, printing the
# router's and the users subgraph's resident memory every minute (`flood`, benches/src/bin/flood.rs). The
# platform runs with the per-caller rate limits and connection caps off, as if the flood came from many
# addresses, so what is measured is the bound of each cache and map behind them. Prints figures; asserts
# nothing.
#
#   benches/exhaustion.sh [SECONDS] [PROFILE]   (PROFILE: release, the default, or debug)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
profile=${2:-release}
export PARLEY_NO_RATE_LIMITS=true
# The login flood comes from ever new addresses through "a proxy" on loopback.
export PARLEY_TRUSTED_PROXIES=127.0.0.1/32
if [ "$profile" = release ]; then
  cargo build --release -p parley -p parley-bench
  bin=target/release
else
  cargo build -p parley -p parley-bench
  bin=target/debug
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

dir=$(mktemp -d)
port=$(free_port)
env -u PARLEY_POSTGRES_URL -u PARLEY_REDIS_URL "$bin/parley" up --processes --data-dir "$dir" --port "$port" \
  >"$dir/out" 2>"$dir/err" &
up=$!
trap 'kill $up 2>/dev/null; wait $up 2>/dev/null; rm -rf "$dir"' EXIT
until grep -q GraphiQL "$dir/out" 2>/dev/null; do
  kill -0 "$up" 2>/dev/null || { cat "$dir/err"; exit 1; }
  sleep 0.1
done
router=$(pgrep -f "parley router .*--port $port" | head -1)
users=$(pgrep -f "parley subgraph users" | head -1)
echo "parley up ($profile) on :$port — router pid $router, users pid $users"
for kind in apq login subscribe; do
  "$bin/flood" --router "http://127.0.0.1:$port" --kind "$kind" --seconds "$seconds" \
    --pid "router=$router" --pid "users=$users"
done
