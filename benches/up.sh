#!/usr/bin/env bash
# What `parley up` costs on one machine, idle: for each layout (every subgraph in one worker process, the
# default; and --processes, one process per subgraph) the time from start to the GraphiQL line and the
# resident memory of `up` and every process under it after 5 s idle. Release build; prints figures, asserts
# nothing.
#
#   benches/up.sh [RUNS]   (default 3 runs per layout)
set -euo pipefail
# The load comes from one address, far over the per-caller limits a real client meets.
export PARLEY_NO_RATE_LIMITS=true
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release -p parley
bin=target/release/parley

# Resident KiB of a process and all its descendants.
tree_rss() {
  local pid=$1 total=0 kid
  total=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  for kid in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
    total=$((total + $(tree_rss "$kid")))
  done
  echo "$total"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

printf '%-12s %4s %14s %14s %9s\n' layout run "start→GraphiQL" "idle RSS (MB)" processes
for layout in worker processes; do
  for run in $(seq 1 "$runs"); do
    dir=$(mktemp -d)
    port=$(free_port)
    args=(up --data-dir "$dir" --port "$port")
    [ "$layout" = processes ] && args+=(--processes)
    start=$(date +%s.%N)
    env -u PARLEY_POSTGRES_URL -u PARLEY_REDIS_URL "$bin" "${args[@]}" >"$dir/out" 2>"$dir/err" &
    pid=$!
    until grep -q GraphiQL "$dir/out" 2>/dev/null; do
      kill -0 "$pid" 2>/dev/null || { cat "$dir/err"; exit 1; }
      sleep 0.02
    done
    ready=$(date +%s.%N)
    sleep 5
    rss=$(tree_rss "$pid")
    procs=$(( $(cat /proc/"$pid"/task/*/children | wc -w) + 1 ))
    printf '%-12s %4s %13.2fs %14.1f %9s\n' "$layout" "$run" "$(echo "$ready - $start" | bc)" \
      "$(echo "scale=1; $rss / 1024" | bc)" "$procs"
    kill "$pid"; wait "$pid" || true
    rm -rf "$dir"
  done
done
