#!/usr/bin/env bash
# Fuzzes the router's request path (fuzz_targets/router_request.rs) with libFuzzer through cargo-fuzz.
#
#   fuzz/run.sh [SECONDS] [SANITIZER]   default 1800 s and `none`; installs cargo-fuzz if missing, builds on
#                                       nightly, starts from the checked-in seeds, prints libFuzzer's figures.
# Why no AddressSanitizer by default: the engine's JSON writer loads 16/32-byte SIMD chunks that may run past
# the end of a string's buffer (by design, checked not to cross a page), and ASan stops at the first request.
# Without it, Rust's own checks and debug assertions (on in fuzz builds) still catch panics and overflows.
# New corpus entries go to fuzz/corpus/, crashing inputs to fuzz/artifacts/ (both ignored by git: a crash
# becomes a regression row in tests/fuzz_regressions.rs instead).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-1800}
sanitizer=${2:-none}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/router_request
cargo +nightly fuzz build -s "$sanitizer" router_request
cargo +nightly fuzz run -s "$sanitizer" router_request corpus/router_request seeds/router_request -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1
