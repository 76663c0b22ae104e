package node

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// snapshotBySize takes a snapshot when the log applied since the last one grows past SnapshotLogBytes. Raft
// itself snapshots by entry count (SnapshotThreshold, checked every SnapshotInterval); large entries (bulk
// loads, 100-statement batches) fill the disk long before the count is reached.
func (n *Node) snapshotBySize() {
	defer n.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if n.fsm.LogBytesSinceSnapshot() < n.cfg.SnapshotLogBytes {
				continue
			}
			if err := n.Snapshot(); err != nil {
				n.log.Warn("snapshot by log size", "err", err)
			}
		}
	}
}

// Snapshot takes a snapshot now and compacts the log behind it.
func (n *Node) Snapshot() error {
	start := time.Now()
	err := n.await(nil, n.raft.Snapshot())
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	if err != nil {
		return translate(err, false)
	}
	n.log.Info("snapshot taken", "applied_index", n.fsm.AppliedIndex(), "took", time.Since(start))
	return nil
}
