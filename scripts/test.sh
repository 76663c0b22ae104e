#!/usr/bin/env bash
# The one test command: formatting, vet, and every test with the race detector on, including in the rowboatd
# processes the system tests start (a data race or runtime fatal error in a node's log fails the test that ran
# it; ROWBOAT_RACE=0 builds those without the detector).
# Usage: scripts/test.sh [go test flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
# The race detector needs cgo and a C compiler. Without them the tests still run, without the detector, and
# say so.
race=(-race)
cc=$(go env CC)
if [[ $(go env CGO_ENABLED) != 1 ]] || ! command -v "${cc%% *}" >/dev/null 2>&1; then
	echo "scripts/test.sh: no C compiler for cgo (CC=${cc:-unset}, CGO_ENABLED=$(go env CGO_ENABLED)): running without the race detector; install gcc for it" >&2
	race=()
	export ROWBOAT_RACE=0
fi
export ROWBOAT_RACE="${ROWBOAT_RACE:-1}"
go test "${race[@]}" -count=1 "$@" ./...
