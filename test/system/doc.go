// Package system holds rowboat's end-to-end tests: real rowboatd processes on 127.0.0.1 (started by
// internal/cluster), real HTTP, real SQLite files.
package system
