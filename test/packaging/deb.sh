#!/usr/bin/env bash
# deb.sh [BUILD_DIR] - the packaging, end to end (scripts/test.sh runs it):
#   1. `make install` into a DESTDIR: the files, the unit rewritten to the
#      prefix, an operator's config kept on reinstall;
#   2. `make deb`: dpkg-deb --info (fields, Depends derived from the binary)
#      and --contents; systemd-analyze verify of its unit (no warning);
#   3. as root: dpkg -i for real, then the installed binary started the way
#      the unit's ExecStart does (its User=, Environment=, EnvironmentFile=,
#      WorkingDirectory=, UMask=; systemd does not run in this container),
#      GET /healthz = 200 (also through the image's healthcheck script), the
#      admin CLI as the service user, SIGTERM; a reinstall keeps the edited
#      config and the store; dpkg -r keeps config and state; dpkg --purge
#      removes both. The machine is left as found.
# Skips (with the reason) what cannot run here: not root, no systemd-analyze,
# or a hubbub package or state that is not this test's own.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
REPO=$PWD
TMP=$(mktemp -d /tmp/hb_pkg.XXXXXX)
LOCK=/tmp/hubbub-package-test.lock
MARKER=/var/lib/hubbub/.hubbub-package-test
SERVER_PID=""
INSTALLED=""
CREATED_USER=""

die() { echo "packaging: FAIL: $*" >&2; exit 1; }
note() { echo "packaging: $*"; }
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ -n "$INSTALLED" ]; then dpkg --purge hubbub >/dev/null 2>&1 || true; fi
  if [ -n "$CREATED_USER" ] && getent passwd hubbub >/dev/null; then userdel hubbub 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for FILE TEXT SECONDS: poll FILE for TEXT (a log line), bounded.
wait_for() {
  local end=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.05
  done
}
# unit_key KEY FILE: the values of KEY= in a unit file, one per line.
unit_key() { sed -n "s/^$1=//p" "$2"; }

# --- 1. make install into a DESTDIR
D=$TMP/destdir
make -s install BUILD="$BUILD" DESTDIR="$D" PREFIX=/opt/hb >/dev/null
for f in /opt/hb/bin/hubbub /opt/hb/lib/systemd/system/hubbub.service /opt/hb/etc/hubbub/hubbub.json \
  /opt/hb/etc/default/hubbub /opt/hb/share/doc/hubbub/operations.md /opt/hb/share/doc/hubbub/upgrading.md \
  /opt/hb/share/doc/hubbub/openapi.yaml /opt/hb/share/doc/hubbub/examples/hubbub.json; do
  [ -f "$D$f" ] || die "make install did not install $f"
done
U=$D/opt/hb/lib/systemd/system/hubbub.service
[ "$(unit_key ExecStart "$U")" = "/opt/hb/bin/hubbub serve" ] || die "ExecStart not rewritten: $(unit_key ExecStart "$U")"
unit_key Environment "$U" | grep -qx "HUBBUB_CONFIG=/opt/hb/etc/hubbub/hubbub.json" || die "HUBBUB_CONFIG not rewritten"
[ "$(unit_key EnvironmentFile "$U")" = "-/opt/hb/etc/default/hubbub" ] || die "EnvironmentFile not rewritten"
echo '{"listen":"127.0.0.1:9999"}' >"$D/opt/hb/etc/hubbub/hubbub.json"
DESTDIR="$D" cmake --install "$BUILD" --prefix /opt/hb >/dev/null # what make install runs
grep -q 9999 "$D/opt/hb/etc/hubbub/hubbub.json" || die "make install overwrote an edited config"
"$D/opt/hb/bin/hubbub" version | grep -q '^hubbub ' || die "the installed binary does not run"
note "make install: ok"

# --- 2. make deb (what it runs once the binary is built; `make install`
# above already checked that build)
DEB=$(scripts/make-deb.sh "$BUILD" | tail -1)
[ -f "$DEB" ] || die "make deb printed '$DEB', not a file"
VERSION=$("$BUILD/hubbub" version --json | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
[ "$(basename "$DEB")" = "hubbub_${VERSION}_$(dpkg --print-architecture).deb" ] || die "deb name $(basename "$DEB")"
INFO=$(dpkg-deb --info "$DEB")
for field in "Package: hubbub" "Version: $VERSION" "Architecture: $(dpkg --print-architecture)" "Maintainer: " \
  "Installed-Size: " "Description: "; do
  grep -q "^ $field" <<<"$INFO" || die "control lacks '$field'"
done
DEPENDS=$(dpkg-deb --field "$DEB" Depends)
for lib in libc6 libuv1 libjansson4 libsqlite3-0 libssl3 libhiredis0.14 libhttp-parser2.9 libwslay1 passwd; do
  grep -q "\b$lib\b" <<<"$DEPENDS" || die "Depends lacks $lib: $DEPENDS"
done
# Every library the binary loads belongs to a package named in Depends.
for so in $(ldd "$BUILD/hubbub" | awk '/=> \//{print $3}'); do
  pkg=$(dpkg -S "$(readlink -f "$so")" 2>/dev/null | head -1 | cut -d: -f1) ||
    pkg=$(dpkg -S "$so" 2>/dev/null | head -1 | cut -d: -f1) || true
  [ -z "$pkg" ] || grep -q "\b$pkg\b" <<<"$DEPENDS" || die "$so ($pkg) is not in Depends: $DEPENDS"
done
for s in postinst prerm postrm conffiles md5sums; do grep -q " $s" <<<"$INFO" || die "no $s in the package"; done
dpkg-deb --field "$DEB" Package >/dev/null
CONTENTS=$(dpkg-deb --contents "$DEB")
grep -Eq '^-rwxr-xr-x root/root .* \./usr/bin/hubbub$' <<<"$CONTENTS" || die "no root-owned 0755 /usr/bin/hubbub"
for f in ./lib/systemd/system/hubbub.service ./etc/hubbub/hubbub.json ./etc/default/hubbub \
  ./usr/share/doc/hubbub/upgrading.md; do
  grep -q " $f$" <<<"$CONTENTS" || die "the package lacks $f"
done
dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | grep -qx /etc/hubbub/hubbub.json || die "conffiles"
readelf -S "$BUILD/deb-root/usr/bin/hubbub" | grep -qE '\.(debug_info|symtab)' && die "the packaged binary is not stripped"
note "make deb: ok ($(basename "$DEB"), $(stat -c %s "$DEB") bytes; Depends: $DEPENDS)"

# systemd-analyze verify: the packaged unit, pointed at the packaged binary.
if command -v systemd-analyze >/dev/null; then
  sed "s|^ExecStart=/usr/bin/hubbub|ExecStart=$REPO/$BUILD/deb-root/usr/bin/hubbub|" \
    "$BUILD/deb-root/lib/systemd/system/hubbub.service" >"$TMP/hubbub.service"
  OUT=$(systemd-analyze verify "$TMP/hubbub.service" 2>&1) || die "systemd-analyze verify: $OUT"
  [ -z "$OUT" ] || die "systemd-analyze verify warns: $OUT"
  note "systemd-analyze verify: ok"
else
  note "SKIP systemd-analyze verify: systemd-analyze is not installed"
fi

# --- 3. install for real
if [ "$(id -u)" != 0 ]; then
  note "SKIP dpkg -i: not root (CI runs as root)"
  exit 0
fi
exec 9>"$LOCK"
flock -w 120 9 || die "another package test holds $LOCK"
if dpkg-query -W -f='${Status}' hubbub 2>/dev/null | grep -q installed || [ -e /etc/hubbub ] || [ -e /var/lib/hubbub ]; then
  if [ -e "$MARKER" ]; then
    note "a previous run left its package installed: purging it"
    dpkg --purge hubbub >/dev/null
  else
    note "SKIP dpkg -i: a hubbub package, /etc/hubbub or /var/lib/hubbub is already here and not this test's"
    exit 0
  fi
fi
getent passwd hubbub >/dev/null || CREATED_USER=1
INSTALLED=1
dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1 || die "dpkg -i: $(cat "$TMP/dpkg.log")"
touch "$MARKER"
[ "$(dpkg-query -W -f='${Status} ${Version}' hubbub)" = "install ok installed $VERSION" ] || die "dpkg status"
getent passwd hubbub | grep -q ':/usr/sbin/nologin$' || die "no hubbub system user with nologin"
[ "$(stat -c '%U %a' /var/lib/hubbub)" = "hubbub 700" ] || die "state dir: $(stat -c '%U %a' /var/lib/hubbub)"
[ "$(stat -c '%U:%G %a' /etc/hubbub/hubbub.json)" = "root:hubbub 640" ] || die "config: $(stat -c '%U:%G %a' /etc/hubbub/hubbub.json)"
/usr/bin/hubbub version | grep -qx "hubbub $VERSION" || die "/usr/bin/hubbub version"
if command -v systemd-analyze >/dev/null; then
  OUT=$(systemd-analyze verify /lib/systemd/system/hubbub.service 2>&1) || die "systemd-analyze verify (installed): $OUT"
  [ -z "$OUT" ] || die "systemd-analyze verify (installed) warns: $OUT"
fi

# Start it the way the unit does, listening on a free port (an operator would
# put HUBBUB_LISTEN in /etc/default/hubbub; the variable wins over the file).
UNIT=/lib/systemd/system/hubbub.service
USER_=$(unit_key User "$UNIT")
GROUP_=$(unit_key Group "$UNIT")
ENVS=()
while read -r kv; do [ -n "$kv" ] && ENVS+=("$kv"); done < <(unit_key Environment "$UNIT")
EF=$(unit_key EnvironmentFile "$UNIT")
EF=${EF#-}
[ -f "$EF" ] && while read -r kv; do ENVS+=("$kv"); done < <(grep -E '^[A-Z_]+=' "$EF" || true)
read -ra EXEC <<<"$(unit_key ExecStart "$UNIT")"
PORT=$(free_port)
ENVS+=("HUBBUB_LISTEN=127.0.0.1:$PORT")
# as_service CMD...: exec CMD as the unit would. It replaces the calling
# shell: call it in a subshell, `( as_service ... )` or `as_service ... &`
# (then $! is the server itself, not a shell around it).
as_service() {
  cd "$(unit_key WorkingDirectory "$UNIT")" && umask "$(unit_key UMask "$UNIT")" &&
    exec setpriv --reuid="$USER_" --regid="$GROUP_" --init-groups \
      env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${ENVS[@]}" "$@"
}
as_service "${EXEC[@]}" 2>"$TMP/server.log" &
SERVER_PID=$!
wait_for "$TMP/server.log" "listening on http://127.0.0.1:$PORT" 10 || die "the installed server did not start: $(cat "$TMP/server.log")"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")
[ "$CODE" = 200 ] || die "GET /healthz answered $CODE"
HUBBUB_LISTEN=127.0.0.1:$PORT packaging/docker-healthcheck.sh || die "the image's healthcheck script failed"
HUBBUB_LISTEN=127.0.0.1:$(free_port) packaging/docker-healthcheck.sh 2>/dev/null && die "the healthcheck passed with no server"
# The admin CLI as the service user, with the config as documented.
(as_service /usr/bin/hubbub org create pkgtest --config /etc/hubbub/hubbub.json --json) >/dev/null ||
  die "the admin CLI as $USER_ failed"
kill -TERM "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
[ $rc = 0 ] || die "the server exited $rc after SIGTERM: $(cat "$TMP/server.log")"
[ "$(stat -c '%U %a' /var/lib/hubbub/hubbub.db)" = "hubbub 600" ] || die "store: $(stat -c '%U %a' /var/lib/hubbub/hubbub.db)"
note "dpkg -i, start as the unit does, /healthz 200: ok"

# Reinstall (the upgrade path): an edited config and the store are kept.
echo '{"listen":"127.0.0.1:8080","data_dir":"/var/lib/hubbub","log_level":"warn"}' >/etc/hubbub/hubbub.json
dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1 || die "dpkg -i (again): $(cat "$TMP/dpkg.log")"
grep -q '"warn"' /etc/hubbub/hubbub.json || die "the reinstall replaced the edited config"
(as_service /usr/bin/hubbub org list --config /etc/hubbub/hubbub.json --json) | grep -q pkgtest ||
  die "the store did not survive the reinstall"

# Remove: the binary goes, config and state stay. Purge: they go too.
dpkg -r hubbub >"$TMP/dpkg.log" 2>&1 || die "dpkg -r: $(cat "$TMP/dpkg.log")"
[ ! -e /usr/bin/hubbub ] && [ ! -e "$UNIT" ] || die "dpkg -r left the binary or the unit"
[ -f /etc/hubbub/hubbub.json ] && [ -f /var/lib/hubbub/hubbub.db ] || die "dpkg -r removed config or state"
[ "$(dpkg-query -W -f='${Status}' hubbub)" = "deinstall ok config-files" ] || die "status after dpkg -r"
dpkg --purge hubbub >"$TMP/dpkg.log" 2>&1 || die "dpkg --purge: $(cat "$TMP/dpkg.log")"
INSTALLED=""
[ ! -e /etc/hubbub ] && [ ! -e /etc/default/hubbub ] && [ ! -e /var/lib/hubbub ] || die "dpkg --purge left files"
if dpkg-query -W -f='${Status}' hubbub 2>/dev/null | grep -q .; then
  [ "$(dpkg-query -W -f='${Status}' hubbub)" = "unknown ok not-installed" ] || die "hubbub is still known to dpkg"
fi
note "dpkg -r / --purge: ok"
echo "packaging: ok"
