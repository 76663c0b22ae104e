// Package system holds rowboat's end-to-end tests: real rowboatd processes on 127.0.0.1 (started by
// internal/cluster), real HTTP, real SQLite files.
//
// Run them with -count=1 (scripts/test.sh does): the harness builds rowboatd from source at run time, so go
// test's result cache does not see changes to the server and may replay an old result.
package system
