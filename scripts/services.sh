# Shared by scripts/test.sh and benches/run.sh (sourced, not run): install what is missing, start PostgreSQL 15,
# Redis, an S3-compatible server and an SMTP server on free loopback ports with their data under target/, stop
# them again. Sets PARLEY_TEST_POSTGRES_URL (a database URL), PARLEY_POSTGRES_URL (the server),
# PARLEY_TEST_REDIS_URL, PARLEY_TEST_S3_URL (with PARLEY_TEST_S3_BUCKET, _ACCESS_KEY, _SECRET_KEY),
# PARLEY_TEST_SMTP_URL (with PARLEY_TEST_SMTP_DIR, where it writes what it receives).

root=$(pwd)
pg_bin=/usr/lib/postgresql/15/bin
# Tools built from crates.io, kept between runs (outside the clone, so a clean clone does not rebuild them).
tools=${PARLEY_TOOLS_DIR:-$HOME/.cache/parley/tools}
s3s_version=0.14.1

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
  # The curl example's walk-through reads answers with jq.
  if ! command -v jq >/dev/null 2>&1; then
    log "installing jq"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
  fi
  # The web example's browser tests drive Debian's Chromium (playwright-core never downloads a browser).
  if [ ! -x /usr/bin/chromium ]; then
    log "installing chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  # The S3-compatible server: s3s-fs (crates.io) checks SigV4 signatures, presigned URLs included, as S3
  # does — a wrong presign or a body longer than the signed length is refused, not stored.
  if [ "$("$tools/bin/s3s-fs" --version 2>/dev/null)" != "s3s-fs $s3s_version" ]; then
    log "installing s3s-fs $s3s_version"
    cargo install s3s-fs --version "$s3s_version" --features binary --locked --root "$tools" --quiet
  fi
  if [ ! -d compose/node_modules/@theguild/federation-composition ] || [ ! -d compose/node_modules/@apollo/composition ]; then
    log "npm ci (composition)"
    (cd compose && npm ci --no-audit --no-fund --silent)
  fi
  # The SMTP server (nodemailer's smtp-server, run by tests/support/smtp.js) and the OpenID Connect provider
  # the sign-in tests start (oidc-provider, run by tests/support/oidc.mjs): npm packages.
  if [ ! -d tests/support/node_modules/smtp-server ] || [ ! -d tests/support/node_modules/oidc-provider ]; then
    log "npm ci (test servers)"
    (cd tests/support && npm ci --no-audit --no-fund --silent)
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

# start_s3 DIR: s3s-fs serving DIR (one bucket, `parley`) with a fresh key pair.
start_s3() {
  local dir=$1
  rm -rf "$dir" && mkdir -p "$dir/data/parley"
  S3_PORT=$(free_port)
  local key secret
  key=parley$(free_port)
  secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  "$tools/bin/s3s-fs" --host 127.0.0.1 --port "$S3_PORT" --access-key "$key" --secret-key "$secret" \
    "$dir/data" >"$dir/server.log" 2>&1 &
  S3_PID=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break; sleep 0.1; done
  export PARLEY_TEST_S3_URL="http://127.0.0.1:$S3_PORT" PARLEY_TEST_S3_BUCKET=parley
  export PARLEY_TEST_S3_ACCESS_KEY="$key" PARLEY_TEST_S3_SECRET_KEY="$secret"
  log "S3 (s3s-fs) on 127.0.0.1:$S3_PORT"
}

# start_smtp DIR: an SMTP server on loopback writing each message it accepts to DIR/<n>.eml.
start_smtp() {
  local dir=$1
  rm -rf "$dir" && mkdir -p "$dir"
  SMTP_PORT=$(free_port)
  node tests/support/smtp.js "$SMTP_PORT" "$dir/mail" >"$dir/server.log" 2>&1 &
  SMTP_PID=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && break; sleep 0.1; done
  export PARLEY_TEST_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" PARLEY_TEST_SMTP_DIR="$dir/mail"
  log "SMTP (smtp-server) on 127.0.0.1:$SMTP_PORT"
}

stop_services() {
  if [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$PG_DIR" -m fast stop >/dev/null 2>&1 || true
  fi
  if [ -n "${REDIS_PORT:-}" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  if [ -n "${S3_PID:-}" ]; then
    kill "$S3_PID" >/dev/null 2>&1 || true
  fi
  if [ -n "${SMTP_PID:-}" ]; then
    kill "$SMTP_PID" >/dev/null 2>&1 || true
  fi
}
