#!/usr/bin/env bash
# The client examples against one `parley up` (SQLite, fresh data dir): the curl walk-through
# (client-examples/curl/flow.sh), then the web example in headless Chromium — built against a free router port,
# served with `vite preview`, driven by client-examples/web/e2e/run.mjs (an admin address is configured and its
# welcome mail read from the data dir, for the analytics page). Stops everything.
# Access tokens live 20 s here (the shortest allowed is 10), so the run also proves the silent refresh.
# Needs a built `target/debug/parley`, curl and jq, Debian's chromium and the app's npm packages (`npm ci`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
api_port=$(free_port)
app_port=$(free_port)
data=$(mktemp -d)
ttl=20
pids=()
# `parley up` stops its subgraphs on SIGTERM: wait for it before removing their data.
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$data"
}
trap cleanup EXIT

admin_email=analyst@example.com
env -u PARLEY_POSTGRES_URL -u PARLEY_REDIS_URL PARLEY_CORS_ORIGINS="http://127.0.0.1:$app_port" \
  PARLEY_ACCESS_TOKEN_TTL_SECS=$ttl PARLEY_ADMIN_EMAILS=$admin_email PARLEY_ANALYTICS_SCRAPE_MS=1000 \
  "$root/target/debug/parley" up --port "$api_port" \
  --data-dir "$data" > "$data/up.log" 2>&1 &
pids+=($!)
cd client-examples/web
VITE_PARLEY_URL="http://127.0.0.1:$api_port/graphql" npm run --silent build > /dev/null
node node_modules/vite/bin/vite.js preview --port "$app_port" --strictPort --host 127.0.0.1 > "$data/preview.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do
  grep -q GraphiQL "$data/up.log" && curl -sf "http://127.0.0.1:$app_port/" > /dev/null && break
  sleep 0.5
done
# The curl walk-through first: the same API, no browser.
# On a failure, what the platform logged (its warnings and errors name what an INTERNAL hid).
platform_log() { echo "--- parley up (warnings and errors) ---"; grep -iE "warn|error" "$data/up.log" | tail -60 || true; }
PARLEY_URL="http://127.0.0.1:$api_port/graphql" bash "$root/client-examples/curl/flow.sh" > "$data/curl.log" 2>&1 ||
  { cat "$data/curl.log"; platform_log; exit 1; }
echo "curl example: ok"
APP_URL="http://127.0.0.1:$app_port/" API_URL="http://127.0.0.1:$api_port/graphql" TOKEN_TTL_SECS=$ttl \
  ADMIN_EMAIL=$admin_email MAIL_DIR="$data/mail" \
  node e2e/run.mjs || { platform_log; exit 1; }
