#!/bin/sh
# make deb: builds the Debian package from a copy of the source tree
# (packaging/debian/ becomes debian/ there) with dpkg-buildpackage, and
# leaves the .deb in the build directory.
#   usage: packaging/mkdeb.sh VERSION BUILD_DIR
set -eu
version=$1
out=$2
cd "$(dirname "$0")/.."
top=$(pwd)

pkgversion=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
if [ "${pkgversion%-*}" != "$version" ]; then
	echo "deb: packaging/debian/changelog is at $pkgversion but the" \
		"Makefile's VERSION is $version: add a changelog entry" >&2
	exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/deb
src=$work/mailfs-$version
rm -rf "$work"
mkdir -p "$src"

# The files of the tree, without build products: what git tracks plus new
# files it does not ignore (uncommitted work is packaged as it is), else
# everything but the usual build and demo directories.
case "$out/" in
"$top"/*) inside=${out#"$top"/} ;;
*) inside= ;;
esac
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	if [ -n "$inside" ]; then
		set -- ":(exclude)$inside"
	else
		set --
	fi
	git ls-files -z --cached --others --exclude-standard -- . "$@" |
		tar --null -T - --ignore-failed-read -cf - |
		tar -xf - -C "$src"
else
	tar --exclude=./build --exclude=./mnt --exclude=./.demo \
		${inside:+--exclude="./$inside"} -cf - . | tar -xf - -C "$src"
fi
cp -R "$src/packaging/debian" "$src/debian"

# The package's own make must not inherit this one's settings: variables
# given to `make deb` on its command line reach sub-makes through
# MAKEFLAGS (B=... would make its `make clean` remove this very build).
unset MAKEFLAGS MFLAGS MAKEOVERRIDES MAKELEVEL B PREFIX BINDIR MANDIR \
	USERUNITDIR DESTDIR
start=$(date +%s)
(cd "$src" && dpkg-buildpackage -us -uc -b -Jauto)
deb=mailfs_${pkgversion}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
cp "$work/$deb" "$out/$deb"
echo "deb: $out/$deb ($(($(date +%s) - start)) s)"
