package raftlog

import (
	"os"
	"syscall"
)

// datasync flushes f's data and the metadata needed to read it back (its size), not its timestamps.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// preallocate reserves size bytes for f (reading as zeros), so that appends within them do not extend the
// file. It is only an optimisation: failure (a file system without fallocate) is ignored.
func preallocate(f *os.File, size int64) {
	for {
		err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
		if err != syscall.EINTR {
			return
		}
	}
}
