#!/usr/bin/env bash
# Snapshot and follower-bootstrap benchmark (issue 6): for each row count, a fresh three-node cluster is filled,
# snapshotted, joined by a new voter and a read replica, has a follower restarted, and takes a snapshot under
# write load. Prints a markdown table; never fails on time.
#
# Usage: scripts/bench-snapshot.sh [ROWS...]        (default: 200000 1000000)
#
#   scripts/bench-snapshot.sh                 200k and 1M rows
#   scripts/bench-snapshot.sh 50000           one quick run
#
# The full `go test -v` output goes to stderr as it runs and is kept in a temporary file (its path is printed);
# the results table (with per-node details and findings) is printed to stdout at the end.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

case ${1:-} in
-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit 0 ;;
esac

rows=("$@")
if ((${#rows[@]} == 0)); then
	rows=(200000 1000000)
fi
for r in "${rows[@]}"; do
	if ! [[ $r =~ ^[0-9]+$ ]] || ((r == 0)); then
		echo "bench-snapshot.sh: not a row count: $r" >&2
		exit 2
	fi
done
list=$(IFS=,; echo "${rows[*]}")

out=$(mktemp "${TMPDIR:-/tmp}/bench-snapshot.XXXXXX.log")
rc=0
ROWBOAT_SNAPSHOT_BENCH=$list go test -count=1 -timeout 60m -v -run 'TestSnapshotBench$' ./test/bench/ 2>&1 |
	tee "$out" >&2 || rc=$?

echo "bench-snapshot.sh: full output in $out" >&2
table=$(sed -n '/^==== snapshot bench results ====$/,/^==== end of snapshot bench results ====$/p' "$out" |
	sed -e '1d' -e '$d')
if [[ -z $table ]]; then
	echo "bench-snapshot.sh: no results table in the output (go test exit $rc)" >&2
	exit $((rc == 0 ? 1 : rc))
fi
echo
echo "$table"
if ((rc != 0)); then
	echo "bench-snapshot.sh: go test exited $rc (see FINDING / failures in $out)" >&2
fi
exit "$rc"
