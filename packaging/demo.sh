#!/bin/sh
# make demo / make demo-stop: a throwaway Dovecot with sample mail on
# loopback, mounted at ./mnt by the freshly built mailfs (as a daemon,
# the way a user runs it).
set -eu
cd "$(dirname "$0")/.."
STATE=.demo
MNT=mnt

stop() {
	if [ -d "$MNT" ] && grep -q " $(pwd)/$MNT " /proc/self/mountinfo; then
		fusermount3 -u "$MNT" || fusermount3 -u -z "$MNT"
		echo "demo: unmounted ./$MNT"
	fi
	if [ -f "$STATE/server.json" ]; then
		pid=$(sed -n 's/.*"pid": \([0-9]*\).*/\1/p' "$STATE/server.json")
		if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
			while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
			echo "demo: mail server stopped"
		fi
	fi
	rm -rf "$STATE"
}

start() {
	stop >/dev/null 2>&1 || true
	mkdir -p "$STATE" "$MNT"
	chmod 700 "$STATE"
	setsid python3 packaging/demo_server.py "$STATE" \
		>"$STATE/server.log" 2>&1 </dev/null &
	i=0
	while [ ! -f "$STATE/server.json" ]; do
		i=$((i + 1))
		if [ $i -gt 300 ]; then
			echo "demo: the mail server did not start:" >&2
			cat "$STATE/server.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	port=$(sed -n 's/.*"imaps_port": \([0-9]*\).*/\1/p' "$STATE/server.json")
	ca=$(sed -n 's/.*"cafile": "\([^"]*\)".*/\1/p' "$STATE/server.json")
	./build/mailfs -o cafile="$ca" -o password_file="$STATE/password" \
		"imaps://alice@localhost:$port" "$MNT"
	cat <<EOT

demo: a local Dovecot with sample mail is mounted at ./$MNT
      (mailfs imaps://alice@localhost:$port ./$MNT, CA $ca)

Try:
  ls $MNT                                 folders are directories
  ls -l $MNT/INBOX | head                 messages are DATE-SIZE-HASH.eml files
  grep -rl invoice $MNT/INBOX | head      search with ordinary tools
  cat $MNT/Work/Projects/mailfs/*.eml | less
  getfattr -n user.mail.flags $MNT/INBOX/*.eml | head
  rsync -aX $MNT/ /tmp/mail-backup/       incremental backup
  du -sh $MNT/Newsletters

Stop it with: make demo-stop
EOT
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
