#!/usr/bin/env bash
# Install what hubbub needs to build, run and test, when it is missing.
# Debian packages through apt-get, npm packages through `npm ci` from the
# committed lockfile. Fast (no network) when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# What to install: "build" (server only) or "all" (tests, browser, bench peers).
# python3: test/unit/cli_smoke.sh reads JSON with it, and the conformance
# suite posts bodies with Python's http.client (a client that writes first).
what="${1:-build}"

pkgs=(build-essential cmake pkg-config libuv1-dev libhttp-parser-dev libwslay-dev
      libjansson-dev libssl-dev libsqlite3-dev libhiredis-dev libpq-dev uthash-dev libcmocka-dev
      nodejs npm sqlite3 python3)
if [ "$what" = all ]; then
  # postgresql: the tests start a private server of their own (test/pg-harness.sh).
  pkgs+=(postgresql redis-server chromium clang libclang-rt-14-dev wrk nginx-light libnginx-mod-nchan liburing-dev
         fonts-noto-color-emoji
         # test/packaging/deb.sh: dpkg-shlibdeps, systemd-analyze verify (systemd is
         # only installed, never started: harmless in a container), curl.
         dpkg-dev systemd curl)
fi

missing=()
for p in "${pkgs[@]}"; do
  # nodejs/npm may come from elsewhere on a developer machine: accept the commands.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages (ws for the end-to-end tests, playwright-core for the browser,
# typescript for the SDK's type test).
if [ "$what" = all ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "install-deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
