#!/usr/bin/env bash
# Notifications figures (issue 19): a burst of 100,000 comment events applied by the notifications subgraph
# in-process; comment → notificationAdded delivered through the router at 1,000 comments/s with 1,000 connected
# recipients (a release `parley up`, SQLite, rate limits off); digests to the SMTP server the test command
# uses. Prints figures; asserts nothing.
#
#   benches/notifications.sh [RECIPIENTS] [RATE] [SECONDS]   (default 1000 1000 10)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
recipients=${1:-1000}
rate=${2:-1000}
seconds=${3:-10}
export PARLEY_NO_RATE_LIMITS=true
install_missing
cargo build --release -p parley -p parley-bench
bin=target/release

dir=$(mktemp -d)
chmod 755 "$dir"
start_smtp "$dir/smtp"
port=$(free_port)
env -u PARLEY_POSTGRES_URL -u PARLEY_REDIS_URL "$bin/parley" up --data-dir "$dir/data" --port "$port" \
  >"$dir/out" 2>"$dir/err" &
up=$!
trap 'kill $up 2>/dev/null; wait $up 2>/dev/null; stop_services; rm -rf "$dir"' EXIT
until grep -q GraphiQL "$dir/out" 2>/dev/null; do
  kill -0 "$up" 2>/dev/null || { cat "$dir/err"; exit 1; }
  sleep 0.1
done
echo "parley up (release) on :$port; $(nproc) cores"

"$bin/notifyload" generate --events 100000 --users 1000
"$bin/notifyload" mail --smtp "$PARLEY_TEST_SMTP_URL" --users 2000
"$bin/notifyload" live --url "http://127.0.0.1:$port/graphql" --recipients "$recipients" --rate "$rate" \
  --seconds "$seconds"
