#!/usr/bin/env bash
# Parley's test command: installs what is missing, starts PostgreSQL and Redis on loopback (data under
# target/test-services/, free ports), runs fmt, clippy and every test against them, and stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
services="$root/target/test-services"
pg_bin=/usr/lib/postgresql/15/bin

log() { printf '\n==> %s\n' "$*"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

install_missing() {
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  if [ ! -x "$pg_bin/initdb" ]; then
    log "installing postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  if ! command -v node >/dev/null 2>&1; then
    log "installing nodejs"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  if [ ! -d compose/node_modules/@theguild/federation-composition ]; then
    log "npm ci (composition)"
    (cd compose && npm ci --no-audit --no-fund --silent)
  fi
}

stop_services() {
  if [ -f "$services/pg/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$services/pg" -m fast stop >/dev/null 2>&1 || true
  fi
  if [ -n "${REDIS_PORT:-}" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
}

# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  rm -rf "$services/pg" && mkdir -p "$services"
  chmod 755 "$root/target" "$services"
  mkdir -p "$services/pg" "$services/pg-socket"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$services/pg" "$services/pg-socket"; fi
  as_pg "$pg_bin/initdb" -D "$services/pg" -U postgres --auth=trust -E UTF8 >/dev/null
  PG_PORT=$(free_port)
  as_pg "$pg_bin/pg_ctl" -D "$services/pg" -l "$services/pg/server.log" -w \
    -o "-p $PG_PORT -k $services/pg-socket -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
  export PARLEY_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  log "PostgreSQL on 127.0.0.1:$PG_PORT"
}

start_redis() {
  mkdir -p "$services/redis"
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$services/redis" --daemonize yes --logfile "$services/redis/server.log" >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export PARLEY_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  log "Redis on 127.0.0.1:$REDIS_PORT"
}

install_missing
mkdir -p target
trap stop_services EXIT
start_postgres
start_redis
export PARLEY_REQUIRE_SERVICES=1

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "cargo test"
cargo test --workspace --no-fail-fast
