#!/usr/bin/env bash
# scripts/tsan.sh - build with ThreadSanitizer (-DHB_TSAN=ON) and run the
# end-to-end suites that exercise several I/O threads at once (fan-out
# across threads, cross-thread inboxes, the Redis broker's thread answering
# and delivering to them, presence between nodes applied on that thread while
# the I/O threads join and leave, shutdown, hostile input).
#
# Any ThreadSanitizer report fails the run: the server exits with 66 on the
# first report (halt_on_error), the harness's stop() asserts exit code 0 and
# no "ThreadSanitizer" in the server's stderr, and this script also greps the
# test output. Exit status: 0 clean, non-zero on a report or a failed test.
#
# Environment: TSAN_BUILD (default build-tsan), JOBS (default 2),
# TSAN_SUITES (space-separated test files, default below).
set -uo pipefail
cd "$(dirname "$0")/.."

build=${TSAN_BUILD:-build-tsan}
case $build in /*) ;; *) build="$PWD/$build" ;; esac
jobs=${JOBS:-2}
suites=${TSAN_SUITES:-"test/e2e/05-scopes-fanout.test.mjs test/e2e/06-isolation.test.mjs test/e2e/10-keepalive-shutdown.test.mjs test/e2e/22-cluster-admin.test.mjs test/e2e/31-redis-history.test.mjs test/e2e/30-redis-presence.test.mjs test/e2e/40-hostile-isolation.test.mjs test/e2e/40-hostile-ws.test.mjs"}

if ! cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DHB_TSAN=ON >/dev/null; then
  echo "tsan: cmake configure failed" >&2
  exit 2
fi
if ! cmake --build "$build" -j "$jobs" --target hubbub >/dev/null; then
  echo "tsan: build failed" >&2
  exit 2
fi

# Suppressions only for uninstrumented system libraries: libuv's own
# threads and OpenSSL/SQLite internals are not built with -fsanitize=thread,
# so TSan cannot see their synchronisation. Our code is never suppressed.
supp=$(mktemp)
log=$(mktemp)
trap 'rm -f "$supp" "$log"' EXIT
cat >"$supp" <<'EOF'
called_from_lib:libuv.so
called_from_lib:libcrypto.so
called_from_lib:libsqlite3.so
EOF
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:history_size=4:suppressions=$supp"

# Linux 6.x with high mmap ASLR entropy breaks TSan's shadow mapping
# ("FATAL: ThreadSanitizer: unexpected memory mapping"): run without ASLR.
runner=()
if command -v setarch >/dev/null && setarch "$(uname -m)" -R true 2>/dev/null; then
  runner=(setarch "$(uname -m)" -R)
fi

# shellcheck disable=SC2086
HUBBUB_BIN="$build/hubbub" "${runner[@]}" node --test --test-concurrency=1 --test-timeout=180000 $suites 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if grep -q "ThreadSanitizer" "$log"; then
  echo "tsan: ThreadSanitizer report(s) above" >&2
  exit 1
fi
if [ "$rc" -ne 0 ]; then
  echo "tsan: test failures (exit $rc)" >&2
  exit "$rc"
fi
echo "tsan: clean"
