#!/bin/sh
# Installs the Debian packages mailfs needs to build, test, package
# (make deb) and run its demo, skipping those already installed; then
# unpacks Cyrus IMAP for the tests (cyrus_deps below). Run as root (or
# with sudo).
set -eu

# The libraries Cyrus IMAP runs with (tests only): ordinary libraries
# that conflict with nothing, installed as such.
CYRUS_LIBS="libical3 libjansson4 libxapian30 libpq5 libwrap0 libsasl2-2
libsasl2-modules libsasl2-modules-db libicu72 libpcre3 libldap-2.5-0 libxml2"

PKGS="build-essential pkg-config libfuse3-dev fuse3 libssl-dev libsqlite3-dev zlib1g-dev uthash-dev
check dovecot-imapd dovecot-pop3d openssl python3 attr rsync isync procps clang
libclang-rt-14-dev psmisc debhelper dpkg-dev notmuch maildir-utils mblaze neomutt bsdutils
$CYRUS_LIBS"

# Cyrus IMAP 3.6 as a second test server (OBJECTID, COMPRESS=DEFLATE,
# DIGEST=SHA1): its packages conflict with Dovecot's (both provide
# imap-server), so they are never installed: fetched with apt-get
# download into CYRUS_DIR/debs and unpacked with dpkg-deb -x into
# CYRUS_DIR/root, which tests/harness/cyrus.py runs from. Done once: a
# later run finds the stamp and does nothing.
CYRUS_DIR="${MAILFS_CYRUS_DIR:-/var/cache/mailfs-test/cyrus}"
CYRUS_DEBS="cyrus-common cyrus-imapd sasl2-bin"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

cyrus_deps() {
	stamp="$CYRUS_DIR/root/.unpacked"
	if [ -e "$stamp" ] &&
		[ -x "$CYRUS_DIR/root/usr/lib/cyrus/bin/master" ]; then
		echo "deps: Cyrus IMAP is unpacked in $CYRUS_DIR"
		return 0
	fi
	echo "deps: fetching Cyrus IMAP into $CYRUS_DIR"
	$SUDO mkdir -p "$CYRUS_DIR/debs"
	$SUDO rm -rf "$CYRUS_DIR/root.new"
	$SUDO mkdir -p "$CYRUS_DIR/root.new"
	# apt's download sandbox user cannot write a root-owned folder.
	# shellcheck disable=SC2086
	if ! (cd "$CYRUS_DIR/debs" &&
		$SUDO apt-get download -q -o APT::Sandbox::User=root \
			$CYRUS_DEBS); then
		$SUDO apt-get update -qq
		# shellcheck disable=SC2086
		(cd "$CYRUS_DIR/debs" &&
			$SUDO apt-get download -q -o APT::Sandbox::User=root \
				$CYRUS_DEBS)
	fi
	for p in $CYRUS_DEBS; do
		# The newest of each, should several versions be there.
		deb=$(ls -t "$CYRUS_DIR/debs/${p}_"*.deb | head -n 1)
		$SUDO dpkg-deb -x "$deb" "$CYRUS_DIR/root.new"
	done
	$SUDO touch "$CYRUS_DIR/root.new/.unpacked"
	$SUDO rm -rf "$CYRUS_DIR/root"
	$SUDO mv "$CYRUS_DIR/root.new" "$CYRUS_DIR/root"
}

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "deps: everything is installed"
	cyrus_deps
	exit 0
fi
echo "deps: installing$missing"
# The packaged Dovecot service is not wanted: tests start their own.
if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
cyrus_deps
