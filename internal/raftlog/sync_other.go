//go:build !linux

package raftlog

import "os"

// datasync flushes f (fsync; fdatasync is Linux only here).
func datasync(f *os.File) error {
	return f.Sync()
}

// preallocate does nothing here: appends extend the file.
func preallocate(f *os.File, size int64) {}
