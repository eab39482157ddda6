#!/usr/bin/env bash
# `make test`: every suite, release and sanitizer builds. Each step is bounded
# in time; the last line is "N passed, N failed" over the steps.
set -uo pipefail
cd "$(dirname "$0")/.."
export NODE_OPTIONS="${NODE_OPTIONS:-}"
# Sanitizers: any report fails the process; leaks are reported at exit.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
export LSAN_OPTIONS="suppressions=$PWD/test/lsan.supp:print_suppressions=0"
mkdir -p test-output

passed=0
failed=0
failed_names=()
step() {
  local name=$1 limit=$2
  shift 2
  echo
  echo "=== $name"
  local t0=$SECONDS
  if timeout --kill-after=10 "$limit" "$@"; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

# node_suite BIN DIR...: the node test runner against a given server binary.
node_suite() { local bin=$1; shift; echo env HUBBUB_BIN="$PWD/$bin" node --test --test-concurrency=2 --test-timeout=120000 "$@"; }

step "layer order (includes point down)" 60 node scripts/check-layers.mjs
# The unit tests in parallel, one per core: each starts what it needs (its own
# PostgreSQL, redis-server, ports), and most of their time is waiting on them.
jobs=$(nproc 2>/dev/null || echo 2)
step "unit tests (release)" 600 ctest --test-dir build --output-on-failure -j "$jobs"
step "unit tests (ASan+UBSan)" 900 ctest --test-dir build-asan --output-on-failure -j "$jobs"
step "docs (OpenAPI valid; error codes, routes and config keys match the server)" 120 $(node_suite build/hubbub test/docs/)
step "end-to-end (release)" 900 $(node_suite build/hubbub test/e2e/)
step "end-to-end (ASan+UBSan)" 1200 $(node_suite build-asan/hubbub test/e2e/)
# The e2e suites join 500 connections to one session (both builds); the
# issue's size, 5,000, on the release build (about 15 s).
step "presence load: 5,000 connections (release)" 300 env PRESENCE_LOAD_CONNS=5000 $(node_suite build/hubbub test/e2e/21-presence-load.test.mjs)
if [ -d sdk/js/test ]; then
  step "SDK (release server)" 600 $(node_suite build/hubbub sdk/js/test/)
fi
if [ -d test/browser ] && [ -x /usr/bin/chromium ]; then
  step "browser (Chromium)" 600 $(node_suite build/hubbub test/browser/)
fi
step "packaging (make install, make deb, dpkg -i and the unit's ExecStart, purge)" 240 test/packaging/deb.sh build
if [ -x fuzz/run.sh ] && command -v clang >/dev/null; then
  step "fuzz smoke" 900 bash -c 'make -s fuzz FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-10}'
fi
if [ -x bench/run.sh ]; then
  step "bench smoke" 600 bench/run.sh --smoke
fi
if [ -x scripts/tsan.sh ]; then
  step "ThreadSanitizer" 900 scripts/tsan.sh
fi

echo
if [ $failed -gt 0 ]; then echo "failed: ${failed_names[*]}"; fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
