#!/usr/bin/env bash
# The gateway benchmark (issue: router): the bare Hive Router engine vs Parley's router in production config,
# side by side over the same four subgraphs (benches/gateway). Prints figures; asserts nothing.
#
#   benches/gateway.sh [SECONDS] [ROUNDS]   (default 60 per router, concurrency 50, after a 5 s warm-up;
#                                            2 rounds, (a) then (b) and (b) then (a), and the mean ratios)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
rounds=${2:-2}
source scripts/services.sh
install_missing
cargo build --release -p parley -p parley-gateway-bench
trap stop_services EXIT
start_redis "$PWD/target/bench/redis-gateway"
target/release/gatewaybench --seconds "$seconds" --rounds "$rounds" --redis-url "$PARLEY_TEST_REDIS_URL"
