#!/usr/bin/env bash
# Search figures (issue 20): POSTS posts + COMMENTS comments (fixed seed) in the search store, the tantivy index
# built from them, the same rows in PostgreSQL full-text search (tsvector + GIN) and SQLite FTS5; then the same
# queries at concurrency 8 through the router (a release `parley up --processes`, SQLite, rate limits off) and
# straight to the two databases; post → searchable through the router; the search process's memory. Prints
# figures; asserts nothing.
#
#   benches/search.sh [POSTS] [COMMENTS] [SECONDS]   (default 1000000 2000000 10)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
posts=${1:-1000000}
comments=${2:-2000000}
seconds=${3:-10}
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
"$bin/searchload" build --dir "$dir/data" --posts "$posts" --comments "$comments" --postgres "$PARLEY_POSTGRES_URL"

port=$(free_port)
env -u PARLEY_POSTGRES_URL -u PARLEY_REDIS_URL "$bin/parley" up --processes --data-dir "$dir/data" --port "$port" \
  >"$dir/out" 2>"$dir/err" &
up=$!
until grep -q GraphiQL "$dir/out" 2>/dev/null; do
  kill -0 "$up" 2>/dev/null || { cat "$dir/err"; exit 1; }
  sleep 0.2
done
search_pid=$(pgrep -f "parley subgraph search" | head -1)
rss() { awk '/VmRSS/ { printf "%.0f MB", $2 / 1024 }' "/proc/$search_pid/status"; }
echo "parley up (release, one process per subgraph) on :$port; search process RSS at start: $(rss)"

"$bin/searchload" query --url "http://127.0.0.1:$port/graphql" --dir "$dir/data" --postgres "$PARLEY_POSTGRES_URL" \
  --concurrency 8 --seconds "$seconds"
echo "search process RSS after the queries: $(rss)"
"$bin/searchload" fresh --url "http://127.0.0.1:$port/graphql" --samples 100
