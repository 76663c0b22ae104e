#!/usr/bin/env bash
# Kill the leader of a fresh three-node rowboat cluster under write load and watch it fail over.
#
# Usage: scripts/failover-demo.sh [-- rowboat-failover flags...]
#
#   scripts/failover-demo.sh                          3s of writes, SIGKILL the leader, 5s more, then check
#                                                     that every acknowledged write is on both survivors
#   scripts/failover-demo.sh -- -clients 16 -after 10s -json failover.json
#
# It builds bin/rowboatd and bin/rowboat-failover when they are missing or older than the sources, starts a
# cluster (scripts/cluster.sh) in a new temporary directory, runs bin/rowboat-failover against it (see
# `bin/rowboat-failover -h`), and stops the cluster when it is done. The directory, with each node's log
# (nN.log), is deleted after a successful run and kept, and printed, after a failed one.
#
# Environment: ROWBOAT_BASE_PORT (n1's HTTP port; default 6001, so n1..n3 use 6001-6022), ROWBOATD (a
# rowboatd binary to run instead of building one).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CALLER=$PWD # file arguments (-json FILE) are relative to where the script was run
cd "$REPO"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'; }

if (($# > 0)); then
	case $1 in
	--) shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "failover-demo.sh: rowboat-failover flags go after --: $1" >&2; usage >&2; exit 2 ;;
	esac
fi

newest_go_change() {
	find "$REPO" \( -path "$REPO/.git" -o -path "$REPO/.cluster" -o -path "$REPO/bin" \) -prune -o \
		\( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$1" -print 2>/dev/null | head -n 1
}

# build NAME: go build ./cmd/NAME into bin/NAME unless it is newer than every Go source.
build() {
	local bin=$REPO/bin/$1
	if [[ ! -x $bin || -n $(newest_go_change "$bin") ]]; then
		echo "building bin/$1"
		go build -o "bin/$1" "./cmd/$1"
	fi
}

[[ -n ${ROWBOATD:-} ]] || build rowboatd
build rowboat-failover

export ROWBOAT_BASE_PORT=${ROWBOAT_BASE_PORT:-6001}
ROWBOAT_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rowboat-failover.XXXXXX")
export ROWBOAT_CLUSTER_DIR

cleanup() {
	local rc=$?
	echo
	scripts/cluster.sh stop || true
	if ((rc == 0)); then
		rm -rf -- "$ROWBOAT_CLUSTER_DIR"
	else
		echo "failover-demo.sh: failed (exit $rc); the nodes' logs are in $ROWBOAT_CLUSTER_DIR (n1.log, n2.log, n3.log)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT

scripts/cluster.sh start
echo

base=$ROWBOAT_BASE_PORT
urls="127.0.0.1:$base,127.0.0.1:$((base + 10)),127.0.0.1:$((base + 20))"
(cd "$CALLER" && "$REPO/bin/rowboat-failover" -urls "$urls" -pid-dir "$ROWBOAT_CLUSTER_DIR" "$@")
