#!/usr/bin/env bash
# make-deb.sh [BUILD_DIR] - build BUILD_DIR/hubbub_<version>_<arch>.deb from
# the release build in BUILD_DIR (default build; `make deb` builds it first).
#
# The package is what `cmake --install --prefix /usr --strip` lays out
# (cmake/install-system.cmake: /usr/bin/hubbub, /lib/systemd/system/
# hubbub.service, /etc/hubbub/hubbub.json and /etc/default/hubbub as
# conffiles, /usr/share/doc/hubbub), plus packaging/deb/: the control file
# and the maintainer scripts. Its Depends are derived from the binary's
# libraries by dpkg-shlibdeps, so they follow whatever the build links.
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/hubbub
[ -x "$BIN" ] || { echo "make-deb: $BIN is not built (run make build)" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { echo "make-deb: $tool is missing (apt-get install dpkg-dev)" >&2; exit 1; }
done

VERSION=$("$BIN" version --json | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
ARCH=$(dpkg --print-architecture)
[ -n "$VERSION" ] || { echo "make-deb: cannot read the version from $BIN" >&2; exit 1; }
ROOT=$BUILD/deb-root
DEB=$BUILD/hubbub_${VERSION}_${ARCH}.deb
rm -rf "$ROOT" "$DEB"

DESTDIR=$PWD/$ROOT cmake --install "$BUILD" --prefix /usr --strip >/dev/null
mkdir -p "$ROOT/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$ROOT/DEBIAN/"
printf '%s\n' /etc/hubbub/hubbub.json /etc/default/hubbub >"$ROOT/DEBIAN/conffiles"

# dpkg-shlibdeps wants to run inside a source package: give it a stub one.
STUB=$(mktemp -d)
trap 'rm -rf "$STUB"' EXIT
mkdir -p "$STUB/debian"
printf 'Source: hubbub\n\nPackage: hubbub\nArchitecture: any\n' >"$STUB/debian/control"
SHLIBS=$(cd "$STUB" && dpkg-shlibdeps -O "$OLDPWD/$ROOT/usr/bin/hubbub" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || { echo "make-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# passwd: postinst's useradd.
DEPENDS="$SHLIBS, passwd"

SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@DEPENDS@/$DEPENDS/" \
  packaging/deb/control.in >"$ROOT/DEBIAN/control"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
  sort -z | xargs -0 md5sum) >"$ROOT/DEBIAN/md5sums"

# Files owned by root whoever builds; modes from the install (0755 binary,
# 0644 the rest); postinst narrows /etc/hubbub.
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
