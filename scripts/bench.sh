#!/usr/bin/env bash
# Benchmark an rqlite-compatible cluster with rowboat-bench (cmd/rowboat-bench) and print a markdown table.
#
# Usage: scripts/bench.sh [URL...] [-- rowboat-bench flags...]
#
#   scripts/bench.sh                                  a fresh three-node rowboat cluster on 127.0.0.1:5001,
#                                                     5011, 5021 (ROWBOAT_BASE_PORT moves them) in a temporary
#                                                     dir, stopped and deleted after
#   scripts/bench.sh 127.0.0.1:4001 127.0.0.1:4011    an existing cluster (rowboat, rqlite, ...); its table
#                                                     "bench" is emptied and filled
#   BENCH_DURATION=2s scripts/bench.sh -- -scenarios insert,read -json out.json
#   scripts/bench.sh --replica                        then add a read replica (n4, scripts/cluster.sh
#                                                     add-replica) and measure the spread scenario again over
#                                                     both followers and it: does a replica add read capacity?
#   scripts/bench.sh 127.0.0.1:4001 -- -pids $(pgrep -d, rqlited)
#                                                     also report the servers' CPU per request (bench.sh
#                                                     passes its own cluster's PIDs by itself)
#
# Environment: BENCH_URLS (comma-separated, used when no URL argument is given), BENCH_DURATION (per measured
# run, default 5s). A fresh cluster's logs are kept, and their directory printed, when the run fails.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CALLER=$PWD # file arguments (-json FILE) are relative to where the script was run
cd "$REPO"

urls=()
started=()
replica=false
while (($# > 0)); do
	case $1 in
	--) shift; break ;;
	--replica) replica=true; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "bench.sh: rowboat-bench flags go after --: $1" >&2; exit 2 ;;
	*) urls+=("$1"); shift ;;
	esac
done
if ((${#urls[@]} == 0)) && [[ -n ${BENCH_URLS:-} ]]; then
	urls=("$BENCH_URLS")
fi

go build -o bin/rowboat-bench ./cmd/rowboat-bench

if $replica && ((${#urls[@]} > 0)); then
	echo "bench.sh: --replica needs the fresh cluster bench.sh starts (no URL arguments)" >&2
	exit 2
fi
if ((${#urls[@]} == 0)); then
	ROWBOAT_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rowboat-bench.XXXXXX")
	export ROWBOAT_CLUSTER_DIR
	export ROWBOAT_BASE_PORT=${ROWBOAT_BASE_PORT:-5001}
	cleanup() {
		local rc=$?
		if ((rc == 0)); then
			scripts/cluster.sh wipe >/dev/null || true
		else
			scripts/cluster.sh stop >/dev/null || true
			if compgen -G "$ROWBOAT_CLUSTER_DIR/*.log" >/dev/null; then
				echo "bench.sh: failed (exit $rc); the cluster's logs are in $ROWBOAT_CLUSTER_DIR" >&2
			else
				rm -rf -- "$ROWBOAT_CLUSTER_DIR"
			fi
		fi
		exit "$rc"
	}
	trap cleanup EXIT
	scripts/cluster.sh start >&2 # its progress and hints, not the table
	urls=("127.0.0.1:$ROWBOAT_BASE_PORT" "127.0.0.1:$((ROWBOAT_BASE_PORT + 10))" "127.0.0.1:$((ROWBOAT_BASE_PORT + 20))")
	started=(yes)
fi

# The PIDs of the cluster bench.sh started, so that rowboat-bench reports CPU per request.
pids() {
	[[ -n ${ROWBOAT_CLUSTER_DIR:-} ]] && ((${#started[@]} > 0)) || return 0
	local p list=()
	for p in "$ROWBOAT_CLUSTER_DIR"/n*.pid; do
		[[ -f $p ]] && list+=("$(<"$p")")
	done
	((${#list[@]} > 0)) && echo "-pids=$(IFS=,; echo "${list[*]}")"
}

joined=$(IFS=,; echo "${urls[*]}")
(cd "$CALLER" && "$REPO/bin/rowboat-bench" -urls "$joined" -duration "${BENCH_DURATION:-5s}" $(pids) "$@")

if $replica; then
	echo
	echo "adding a read replica; the spread scenario again, over both followers and the replica:"
	scripts/cluster.sh add-replica >/dev/null
	(cd "$CALLER" && "$REPO/bin/rowboat-bench" -urls "$joined,127.0.0.1:$((ROWBOAT_BASE_PORT + 30))" -duration "${BENCH_DURATION:-5s}" -scenarios spread $(pids) "$@")
fi
