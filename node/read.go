package node

import (
	"io"
	"time"

	"context"
	"github.com/rowboatdb/rowboat/logical"

	"github.com/rowboatdb/rowboat/fsm"
)

// ReadIndex confirms that this node leads and returns its commit index: once a node's applied index reaches
// it, that node may serve a linearizable read locally. Leader only (ErrNotLeader / ErrNoLeader elsewhere).
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if !n.IsLeader() {
		return 0, n.notLeaderErr()
	}
	// Read the commit index first, then confirm leadership: a state that includes it includes every write
	// acknowledged before this read began. Raft coalesces concurrent VerifyLeader calls into shared heartbeat
	// rounds, so concurrent reads share rounds without a batching layer of ours (measured: one of ours in
	// front halved the throughput, since a read arriving mid-round had to wait for the next one).
	// VerifyLeader answers within a heartbeat round or fails when leadership is lost, so it needs no ctx.
	idx := n.raft.CommitIndex()
	if err := n.verifyLeader(); err != nil {
		return 0, translate(err, false)
	}
	return idx, nil
}

// StrongIndex orders a read through the Raft log: it commits a no-op and returns its index once applied here.
// Leader only.
func (n *Node) StrongIndex(ctx context.Context) (uint64, error) {
	if !n.IsLeader() {
		return 0, n.notLeaderErr()
	}
	f := n.raft.Apply(fsm.EncodeNoop(), n.cfg.ApplyTimeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return 0, translate(err, true)
		}
		return f.Index(), nil
	case <-ctx.Done():
		return 0, translate(ctx.Err(), false)
	}
}

// LastContact is when this node last heard from the leader; now on the leader itself.
func (n *Node) LastContact() time.Time {
	if n.IsLeader() {
		return time.Now()
	}
	return n.raft.LastContact()
}

// Query runs read-only statements on the local database, as it is now; the caller decides whether that is
// fresh enough (see package followerread). It returns the applied index of the state read.
func (n *Node) Query(ctx context.Context, stmts []logical.Statement) ([]logical.Result, uint64, error) {
	return n.fsm.Query(ctx, stmts)
}

// WriteBackup writes a consistent copy of the local database, as a SQLite file, to w.
func (n *Node) WriteBackup(w io.Writer) (uint64, error) { return n.fsm.WriteBackup(w) }
