#!/usr/bin/env bash
# `make soak`: the long, large runs kept out of `make test` (which runs the
# same suites at a size that fits its time budget). Each step is bounded.
#
#   presence: 5,000 connections join one session while observers watch
#   (test/e2e/21-presence-load.test.mjs; `make test` runs it with 500 on
#   both builds and with 5,000 on the release build): every observer's last
#   count exact, presence messages bounded by time. Here with the size and
#   the binary of your choice, e.g.
#   PRESENCE_LOAD_CONNS=10000 HUBBUB_BIN=build-asan/hubbub make soak
#
# PRESENCE_LOAD_CONNS overrides the size; HUBBUB_BIN the server binary.
set -uo pipefail
cd "$(dirname "$0")/.."
export PRESENCE_LOAD_CONNS="${PRESENCE_LOAD_CONNS:-5000}"
echo "=== presence load: $PRESENCE_LOAD_CONNS connections (${HUBBUB_BIN:-build/hubbub})"
timeout --kill-after=10 900 node --test --test-reporter=spec --test-timeout=600000 test/e2e/21-presence-load.test.mjs
