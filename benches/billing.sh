#!/usr/bin/env bash
# Billing figures (issue 21): `subscribe` through the router with the local provider (a release `parley up`,
# SQLite, rate limits off), first calls and the same keys again; the reconciliation of 1,000 payments whose
# answer was lost; a fault-injection run of 1,000 subscribes and renewals cut off at random points, audited for
# double charges and entitlements without payment — on SQLite and on PostgreSQL. Prints figures; asserts
# nothing.
#
#   benches/billing.sh [USERS] [PAYMENTS] [OPERATIONS]   (default 1000 1000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
users=${1:-1000}
payments=${2:-1000}
operations=${3:-1000}
export PARLEY_NO_RATE_LIMITS=true
install_missing
cargo build --release -p parley -p parley-bench
bin=target/release

dir=$(mktemp -d -p "$PWD/target")
chmod 755 "$dir"
start_postgres "$dir/pg"
trap 'kill $up 2>/dev/null; wait $up 2>/dev/null; stop_services; rm -rf "$dir"' EXIT
up=
echo "$(nproc) cores"
"$bin/billingload" reconcile --payments "$payments"
"$bin/billingload" reconcile --payments "$payments" --postgres "$PARLEY_POSTGRES_URL"
"$bin/billingload" faults --operations "$operations"
"$bin/billingload" faults --operations "$operations" --postgres "$PARLEY_POSTGRES_URL"

port=$(free_port)
env -u PARLEY_POSTGRES_URL -u PARLEY_REDIS_URL "$bin/parley" up --data-dir "$dir/data" --port "$port" \
  >"$dir/out" 2>"$dir/err" &
up=$!
until grep -q GraphiQL "$dir/out" 2>/dev/null; do
  kill -0 "$up" 2>/dev/null || { cat "$dir/err"; exit 1; }
  sleep 0.2
done
"$bin/billingload" subscribe --url "http://127.0.0.1:$port/graphql" --users "$users"
