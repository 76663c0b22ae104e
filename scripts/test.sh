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
export ROWBOAT_RACE="${ROWBOAT_RACE:-1}"
go test -race -count=1 "$@" ./...
