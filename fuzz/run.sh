#!/usr/bin/env bash
# Fuzzes the router's request path (fuzz_targets/router_request.rs) with libFuzzer through cargo-fuzz.
#
#   fuzz/run.sh [SECONDS]   default 1800; installs cargo-fuzz if missing, builds on nightly with
#                           AddressSanitizer, starts from the checked-in seeds, prints libFuzzer's figures.
#
# Two sanitizer settings, both for the engine's sake:
# - replace_intrin=0: the engine's JSON writer loads 16/32-byte SIMD chunks that run past the end of a
#   string's buffer by design (checked not to cross a page); ASan would stop at the first request. Instrumented
#   loads and stores are still checked; memcpy/memmove/memset ranges are not.
# - detect_leaks=0: the router keeps state for the life of the process on threads of its own (LeakSanitizer
#   would report its one-time allocations, per input and again at exit).
# New corpus entries go to fuzz/corpus/, crashing inputs to fuzz/artifacts/ (both ignored by git: a crash
# becomes a file in fuzz/regressions/, replayed by tests/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-1800}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/router_request artifacts/router_request
cargo +nightly fuzz build router_request
ASAN_OPTIONS=replace_intrin=0:detect_leaks=0 cargo +nightly fuzz run router_request corpus/router_request seeds/router_request -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=30 -rss_limit_mb=4096 -detect_leaks=0 -print_final_stats=1
