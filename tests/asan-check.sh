#!/bin/sh
# Runs the unit tests and the integration suite against the sanitizer
# build in DIR (DIR/unit_tests, DIR/mailfs; see `make asan-check`).
#
# Every AddressSanitizer, LeakSanitizer and UBSan report fails the run:
# the first report stops the process (halt_on_error, and the build has
# -fno-sanitize-recover), leaks are looked for at every exit, and each
# report goes to a file in DIR/reports/ instead of stderr: a daemonized
# mailfs has lost its stderr, and a test may pass although the daemon
# died reporting. The directory must be empty at the end; what is in it
# is printed.
#
# usage: tests/asan-check.sh DIR
set -u
cd "$(dirname "$0")/.." || exit 1
dir=$(cd "$1" && pwd) || exit 1
reports=$dir/reports
PYTHON=${PYTHON:-python3}

rm -rf "$reports"
mkdir -p "$reports"
# log_path: one file per reporting process (report.PID), absolute since
# the daemon changes to /; the same for both (the runtime they share
# takes one). No suppressions are needed.
ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:\
detect_stack_use_after_return=1:log_path=$reports/report"
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/report"
export ASAN_OPTIONS UBSAN_OPTIONS

start=$(date +%s)
status=0
echo "asan-check: unit tests ($dir/unit_tests)"
"$dir/unit_tests" || status=1
echo "asan-check: integration tests (MAILFS=$dir/mailfs)"
MAILFS=$dir/mailfs "$PYTHON" -m unittest discover -s tests/integration \
	-t . -v || status=1

found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
	echo "asan-check: sanitizer reports:"
	for f in $found; do
		echo "==== $f"
		cat "$f"
	done
	status=1
fi
echo "asan-check: $([ $status -eq 0 ] && echo passed || echo FAILED)" \
	"in $(($(date +%s) - start)) s"
exit $status
