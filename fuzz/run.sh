#!/usr/bin/env bash
# Fuzzes the router's request path (fuzz_targets/router_request.rs) with libFuzzer through cargo-fuzz.
#
#   fuzz/run.sh [SECONDS]      default 1800; installs cargo-fuzz if missing, builds on nightly with
#                              AddressSanitizer, starts from the checked-in seeds, prints libFuzzer's figures.
# New corpus entries go to fuzz/corpus/, crashing inputs to fuzz/artifacts/ (both ignored by git: a crash
# becomes a regression row in tests/fuzz_regressions.rs instead).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-1800}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/router_request
cargo +nightly fuzz build router_request
cargo +nightly fuzz run router_request corpus/router_request seeds/router_request -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1
