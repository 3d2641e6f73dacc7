# Shared by scripts/test.sh and benches/run.sh (sourced, not run): install what is missing, start PostgreSQL 15
# and Redis on free loopback ports with their data under target/, stop them again.
# Sets PARLEY_TEST_POSTGRES_URL (a database URL), PARLEY_POSTGRES_URL (the server), PARLEY_TEST_REDIS_URL.

root=$(pwd)
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
  if [ ! -d compose/node_modules/@theguild/federation-composition ] || [ ! -d compose/node_modules/@apollo/composition ]; then
    log "npm ci (composition)"
    (cd compose && npm ci --no-audit --no-fund --silent)
  fi
}

# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres DIR: a fresh cluster in DIR (under target/).
start_postgres() {
  local dir=$1
  rm -rf "$dir" && mkdir -p "$dir" "$dir-socket"
  chmod 755 "$root/target" "$(dirname "$dir")"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir" "$dir-socket"; fi
  as_pg "$pg_bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
  PG_PORT=$(free_port)
  PG_DIR=$dir
  as_pg "$pg_bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $PG_PORT -k $dir-socket -c listen_addresses=127.0.0.1 -c max_connections=300 ${PG_EXTRA_OPTS:-}" start >/dev/null
  export PARLEY_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT"
  export PARLEY_TEST_POSTGRES_URL="$PARLEY_POSTGRES_URL/postgres"
  log "PostgreSQL on 127.0.0.1:$PG_PORT"
}

# start_redis DIR
start_redis() {
  local dir=$1
  mkdir -p "$dir"
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --daemonize yes --logfile "$dir/server.log" >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export PARLEY_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  log "Redis on 127.0.0.1:$REDIS_PORT"
}

stop_services() {
  if [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$PG_DIR" -m fast stop >/dev/null 2>&1 || true
  fi
  if [ -n "${REDIS_PORT:-}" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
}
