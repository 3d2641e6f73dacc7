#!/usr/bin/env bash
# Analytics figures (issue 24): domain events through the consumer path into rollups (events/s); then USERS
# users' EVENTS raw events over 90 days written into the store (bytes per million events), and
# activeUsers(MONTH) over the 90 days from merged daily sketches (p50/p99) side by side with the exact
# COUNT(DISTINCT) over the raw events, timed in the same run, and the sketches' error against it. SQLite, a
# release build, 2 cores. Prints figures; asserts nothing.
#
#   benches/analytics.sh [USERS] [EVENTS] [INGEST_EVENTS]   (default 1000000 50000000 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-1000000}
events=${2:-50000000}
ingest=${3:-200000}
cargo build --release -p parley-bench --bin analyticsload
bin=target/release
dir=$(mktemp -d -p "$PWD/target")
trap 'rm -rf "$dir"' EXIT
echo "$(nproc) cores"
"$bin/analyticsload" ingest --dir "$dir/ingest" --events "$ingest"
"$bin/analyticsload" seed --dir "$dir/seed" --users "$users" --events "$events" --days 90
"$bin/analyticsload" query --dir "$dir/seed" --days 90
