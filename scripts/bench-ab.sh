#!/usr/bin/env bash
# Compare two rowboatd binaries on this machine: rounds of interleaved runs (A, B, A, B, ...), each on a fresh
# three-node cluster, so that a noisy machine's drift falls on both alike. Prints one line per run with each
# measured figure and its server CPU per request, then the mean of each over the rounds.
#
# Usage: scripts/bench-ab.sh A_BINARY B_BINARY [ROUNDS] [-- rowboat-bench flags...]
#
#   go build -o /tmp/a ./cmd/rowboatd; (make a change); go build -o /tmp/b ./cmd/rowboatd
#   scripts/bench-ab.sh /tmp/a /tmp/b 5 -- -scenarios read -read-levels linearizable -duration 4s
#
# Defaults: 3 rounds; rowboat-bench flags -scenarios read -read-levels none,linearizable -duration 4s.
# Environment: ROWBOAT_BASE_PORT (default 5001) for the clusters; their data goes to a temporary directory.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }
(($# >= 2)) || { usage >&2; exit 2; }
a=$1 b=$2
shift 2
rounds=3
if (($# > 0)) && [[ $1 != -- ]]; then
	rounds=$1
	shift
fi
[[ ${1:-} != -- ]] || shift
flags=("$@")
((${#flags[@]} > 0)) || flags=(-scenarios read -read-levels none,linearizable -duration 4s)
for bin in "$a" "$b"; do
	[[ -x $bin ]] || { echo "bench-ab.sh: $bin is not an executable" >&2; exit 2; }
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench-ab.sh: ROUNDS must be a positive number, not $rounds" >&2; exit 2; }

go build -o bin/rowboat-bench ./cmd/rowboat-bench
ROWBOAT_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rowboat-ab.XXXXXX")
export ROWBOAT_CLUSTER_DIR
export ROWBOAT_BASE_PORT=${ROWBOAT_BASE_PORT:-5001}
results=$(mktemp)
trap 'scripts/cluster.sh wipe >/dev/null 2>&1 || true; rm -f "$results"' EXIT

base=$ROWBOAT_BASE_PORT
urls="127.0.0.1:$base,127.0.0.1:$((base + 10)),127.0.0.1:$((base + 20))"
for ((r = 1; r <= rounds; r++)); do
	for label in A B; do
		bin=$a
		[[ $label == A ]] || bin=$b
		scripts/cluster.sh wipe >/dev/null 2>&1 || true
		ROWBOATD=$bin scripts/cluster.sh start >/dev/null
		pids=$(cat "$ROWBOAT_CLUSTER_DIR"/n*.pid | paste -sd, -)
		# One "figure ops/s cpu" line per table row: scenario, node, level and concurrency name the figure.
		bin/rowboat-bench -urls "$urls" -pids "$pids" -q "${flags[@]}" |
			awk -F'|' -v label="$label" '
				function trim(s) { gsub(/^ +| +$/, "", s); return s }
				/^\| (insert|batch|read|spread) / {
					split(trim($3), node, " ")
					printf "%s %s/%s/%s/c%s %s %s\n", label, trim($2), node[1], trim($4), trim($5), trim($6), trim($11)
				}' | tee -a "$results" |
			awk -v r="$r" '{ printf "round %d %s %-34s %8s ops/s  %5s µs/op\n", r, $1, $2, $3, $4 }'
	done
done
echo
echo "means over $rounds rounds (ops/s, server CPU µs/op):"
awk '{ n[$1" "$2]++; ops[$1" "$2] += $3; cpu[$1" "$2] += $4; names[$2] = 1 }
	END { for (k in names) printf "%-34s A %8.0f %5.0f   B %8.0f %5.0f   B/A %+.1f%%\n", k,
		ops["A "k]/n["A "k], cpu["A "k]/n["A "k], ops["B "k]/n["B "k], cpu["B "k]/n["B "k],
		100 * (ops["B "k]/n["B "k]) / (ops["A "k]/n["A "k]) - 100 }' "$results" | sort
