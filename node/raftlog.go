package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/internal/raftlog"
)

// openLog opens the Raft log in dir. A data dir written by an older rowboat keeps its log in the bolt file
// next to the stable store; that log is copied into a new store under a temporary name, which is renamed into
// place only when complete, and then deleted from bolt. A crash at any point leaves either the old log or the
// whole new one.
func openLog(dir string, bolt raft.LogStore, logger *slog.Logger) (*raftlog.Store, error) {
	opts := raftlog.Options{Logger: logger.With("component", "raftlog")}
	tmp := dir + ".migrating"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	first, err := bolt.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := bolt.LastIndex()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && last > 0 {
		if err := migrateLog(tmp, bolt, first, last, opts); err != nil {
			return nil, fmt.Errorf("move the raft log out of bolt: %w", err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return nil, err
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return nil, err
		}
		logger.Info("moved the raft log out of the bolt file", "first", first, "last", last)
	}
	if last > 0 {
		if err := bolt.DeleteRange(first, last); err != nil {
			return nil, err
		}
	}
	return raftlog.Open(dir, opts)
}

func migrateLog(dir string, from raft.LogStore, first, last uint64, opts raftlog.Options) error {
	to, err := raftlog.Open(dir, opts)
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
