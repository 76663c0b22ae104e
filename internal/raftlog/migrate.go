package raftlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/internal/durable"
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
	if last == 0 {
		return Open(dir, opts)
	}
	_, err = os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// Not moved yet.
	case err != nil:
		return nil, err
	default:
		// The store exists. Either an earlier run moved the log and stopped before deleting it from old (the
		// store then holds old's entries), or an older rowboat, which logs into old, ran since (old then holds
		// entries the store lacks, and is the log to keep).
		same, err := holds(dir, old, last, opts)
		if err != nil {
			return nil, err
		}
		if !same {
			if opts.Logger != nil {
				opts.Logger.Warn("the old raft log holds entries its own store lacks (an older version ran since it was moved): moving it again",
					"dir", dir, "first", first, "last", last)
			}
			if err := os.RemoveAll(dir); err != nil {
				return nil, err
			}
		}
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := copyLog(tmp, old, first, last, opts); err != nil {
			return nil, fmt.Errorf("move the raft log into %s: %w", dir, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return nil, err
		}
		if err := durable.SyncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
		if opts.Logger != nil {
			opts.Logger.Info("moved the raft log into its own store", "dir", dir, "first", first, "last", last)
		}
	}
	if err := old.DeleteRange(first, last); err != nil {
		return nil, err
	}
	return Open(dir, opts)
}

// holds reports whether the store in dir ends with old's last entry (the same index and term).
func holds(dir string, old raft.LogStore, last uint64, opts Options) (bool, error) {
	store, err := Open(dir, opts)
	if err != nil {
		return false, err
	}
	defer store.Close()
	if storeLast, _ := store.LastIndex(); storeLast != last {
		return false, nil
	}
	var a, b raft.Log
	if err := old.GetLog(last, &a); err != nil {
		return false, err
	}
	if err := store.GetLog(last, &b); err != nil {
		return false, nil
	}
	return a.Term == b.Term, nil
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
