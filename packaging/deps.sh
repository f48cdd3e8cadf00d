#!/bin/sh
# Installs the Debian packages mailfs needs to build, test, package
# (make deb) and run its demo, skipping those already installed. Run as
# root (or with sudo).
set -eu

PKGS="build-essential pkg-config libfuse3-dev fuse3 libssl-dev libsqlite3-dev zlib1g-dev uthash-dev
check dovecot-imapd dovecot-pop3d openssl python3 attr rsync isync procps clang
libclang-rt-14-dev psmisc debhelper dpkg-dev notmuch maildir-utils mblaze neomutt bsdutils"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "deps: everything is installed"
	exit 0
fi
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# The packaged Dovecot service is not wanted: tests start their own.
if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" -eq 0 ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
