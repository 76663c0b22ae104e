package raftlog

import (
	"os"
	"syscall"
)

// datasync flushes f's data and the metadata needed to read it back (its size), not its timestamps.
func datasync(f *os.File, noSync bool) error {
	if noSync {
		return nil
	}
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
