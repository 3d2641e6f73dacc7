#!/usr/bin/env bash
# Parley's test command: installs what is missing, starts PostgreSQL, Redis, an S3 server and an SMTP server on loopback (data under
# target/test-services/, free ports), runs fmt, clippy and every test against them, and stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

install_missing
mkdir -p target/test-services
trap stop_services EXIT
PG_EXTRA_OPTS="-c fsync=off" start_postgres "$root/target/test-services/pg"
start_redis "$root/target/test-services/redis"
start_s3 "$root/target/test-services/s3"
start_smtp "$root/target/test-services/smtp"
export PARLEY_REQUIRE_SERVICES=1
# Tests make throw-away data dirs (SQLite files, their own PostgreSQL clusters) under $TMPDIR: keep them in
# target/, and start each run clean, so runs do not pile them up on the machine's disk.
export TMPDIR="$root/target/test-tmp"
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR" && chmod 755 "$TMPDIR"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The web example: typed operations generated from schema/supergraph.graphql, type-checked and built, so a
# schema change that breaks the app breaks this command.
log "web example: npm ci, codegen, typecheck, build"
(cd client-examples/web && npm ci --no-audit --no-fund --silent && npm run --silent build)
log "cargo test"
cargo test --workspace --no-fail-fast
log "web example in Chromium (alice and bob: live comments, chat, offline send)"
bash scripts/web-e2e.sh
