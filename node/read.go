package node

import (
	"context"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/fsm"
	"github.com/rowboatdb/rowboat/logical"
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

// ReadIndexFor is ReadIndex for a read-index request that the member from sent while its Raft term was term
// (a follower or read replica serving linearizable reads). Leader only.
//
// The request can stand in for the heartbeat round. From read its term after the reads it serves began, and a
// voter whose term was still this leader's had not voted in any later election by then. If this node and
// from are two voters that make a quorum of the latest configuration (at most three voters; single-server
// membership changes keep that quorum overlapping every quorum of the previous configuration), and this node
// still leads in that term, no later leader can have been elected, let alone have committed a write, before
// those reads began. So the commit index covers every write acknowledged before them: the guarantee
// VerifyLeader gives, without its round trip. Any other request (from a read replica, in a larger cluster,
// with another term or none) gets ReadIndex.
func (n *Node) ReadIndexFor(ctx context.Context, from string, term uint64) (uint64, error) {
	if !n.IsLeader() {
		return 0, n.notLeaderErr()
	}
	idx := n.raft.CommitIndex()
	if term != 0 && term == n.raft.CurrentTerm() && n.IsLeader() {
		if cf := n.raft.GetConfiguration(); cf.Error() == nil && quorumWith(cf.Configuration().Servers, n.cfg.ID, from) {
			return idx, nil
		}
	}
	return n.ReadIndex(ctx)
}

// quorumWith reports whether self and from, two different voters of servers, make a quorum of its voters.
func quorumWith(servers []raft.Server, self, from string) bool {
	voters := 0
	var selfVotes, fromVotes bool
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		selfVotes = selfVotes || s.ID == raft.ServerID(self)
		fromVotes = fromVotes || s.ID == raft.ServerID(from)
	}
	return self != from && selfVotes && fromVotes && 2 >= voters/2+1
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
