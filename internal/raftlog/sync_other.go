//go:build !linux

package raftlog

import "os"

// datasync flushes f (fsync; fdatasync is Linux only here).
func datasync(f *os.File, noSync bool) error {
	if noSync {
		return nil
	}
	return f.Sync()
}
