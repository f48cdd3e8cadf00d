#!/bin/sh
# Runs every fuzz target (built by `make fuzz-build` in DIR) for SECONDS
# each, on a working corpus in DIR/corpus/TARGET seeded from
# tests/fuzz/corpus/TARGET (the seeds are only read). Findings (crashes,
# leaks, timeouts, out of memory) go to DIR/findings/TARGET-*; the run
# goes on with the next target and fails at the end if any target found
# something. Prints each target's executions per second.
#
# usage: tests/fuzz/run.sh DIR SECONDS [TARGET...]
set -u
cd "$(dirname "$0")/../.." || exit 1
dir=$1
secs=$2
shift 2

# target, -max_len, dictionary (or -)
table="fuzz_imap_parse 16384 imap
fuzz_names 512 -
fuzz_opts 512 -
fuzz_account 4096 -
fuzz_msgdate 2048 -
fuzz_imap_session 16384 imap
fuzz_pop3_session 8192 pop3
fuzz_msgstruct 16384 imap
fuzz_search 1024 -
fuzz_journal 4096 -"

# UBSan stops at the first report too (the build has
# -fno-sanitize-recover already; this also covers a build without it).
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export UBSAN_OPTIONS

mkdir -p "$dir/findings"
rm -f "$dir/findings/failed"
echo "$table" | while read -r t len dict; do
	if [ $# -gt 0 ]; then
		case " $* " in *" $t "*) ;; *) continue ;; esac
	fi
	mkdir -p "$dir/corpus/$t"
	log="$dir/$t.log"
	opt_dict=""
	[ "$dict" = - ] || opt_dict="-dict=tests/fuzz/$dict.dict"
	# shellcheck disable=SC2086
	"$dir/$t" -max_total_time="$secs" -max_len="$len" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 $opt_dict \
		-artifact_prefix="$dir/findings/$t-" \
		"$dir/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	if [ $rc -eq 0 ]; then
		echo "fuzz: $t: ok, ${runs:-?} runs, ${speed:-?} exec/s"
	else
		echo "fuzz: $t: FAILED (exit $rc), see $log:"
		grep -E "ERROR|SUMMARY|runtime error|^fuzz_|Test unit written" \
			"$log" | head -20 | sed 's/^/    /'
		echo "$t" >>"$dir/findings/failed"
	fi
done
if [ -s "$dir/findings/failed" ]; then
	echo "fuzz: findings in $dir/findings/ from: $(sort -u "$dir/findings/failed" | tr '\n' ' ')"
	rm -f "$dir/findings/failed"
	exit 1
fi
exit 0
