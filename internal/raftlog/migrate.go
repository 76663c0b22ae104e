package raftlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// OpenFrom opens the store in dir like Open, first moving into it the entries of old, another log store
// (rowboat's logs once lived in the bolt file that keeps term and vote), when dir does not exist yet. The
// entries are copied into a new store under a temporary name, which is renamed into place only when complete,
// and then deleted from old: a crash at any point leaves either the old log or the whole new one.
func OpenFrom(dir string, old raft.LogStore, opts Options) (*Store, error) {
	tmp := dir + ".migrating"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	first, err := old.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := old.LastIndex()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && last > 0 {
		if err := copyLog(tmp, old, first, last, opts); err != nil {
			return nil, fmt.Errorf("move the raft log into %s: %w", dir, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return nil, err
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
		if opts.Logger != nil {
			opts.Logger.Info("moved the raft log into its own store", "dir", dir, "first", first, "last", last)
		}
	}
	if last > 0 {
		// Moved now or by an earlier run that stopped before this deletion.
		if err := old.DeleteRange(first, last); err != nil {
			return nil, err
		}
	}
	return Open(dir, opts)
}

func copyLog(dir string, from raft.LogStore, first, last uint64, opts Options) error {
	to, err := Open(dir, opts)
	if err != nil {
		return err
	}
	defer to.Close()
	const chunk = 256
	batch := make([]*raft.Log, 0, chunk)
	for i := first; i <= last; i++ {
		l := new(raft.Log)
		if err := from.GetLog(i, l); err != nil {
			return fmt.Errorf("read index %d: %w", i, err)
		}
		batch = append(batch, l)
		if len(batch) == chunk || i == last {
			if err := to.StoreLogs(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return to.Close()
}
