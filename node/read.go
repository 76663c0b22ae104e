package node

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/fsm"
	"github.com/rowboatdb/rowboat/logical"
)

// ReadIndex confirms that this node leads and returns its commit index: once a node's applied index reaches
// it, that node may serve a linearizable read locally. Leader only (ErrNotLeader / ErrNoLeader elsewhere).
//
// The commit index is read first, then leadership is confirmed by a round that starts after this call (see
// confirmLeadership), in the same term: a state that includes the index includes every write acknowledged
// before the read began. (A round in a later term would not do: had this node been deposed unawares when it
// read the index and elected again since, the index could miss writes of the leader in between.)
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	term := n.raft.CurrentTerm()
	if !n.IsLeader() {
		return 0, n.notLeaderErr()
	}
	idx := n.raft.CommitIndex()
	confirmed, err := n.confirmLeadership(ctx)
	if err != nil {
		return 0, err
	}
	if confirmed != term {
		return 0, fmt.Errorf("%w: leadership moved from term %d to %d during the read", ErrNotLeader, term, confirmed)
	}
	return idx, nil
}

// Peer is a voter this node may ask to confirm its leadership.
type Peer struct {
	ID       string
	HTTPAddr string
}

// Confirmation is a peer's answer of the term a Confirmer asked about.
type Confirmation struct {
	ID string
	// LeaderContact is how long before it answered the peer last heard from this node as its leader (Raft's
	// last contact), or -1 if it named another leader or none.
	LeaderContact time.Duration
}

// Confirmer asks peers (voters other than this node) for their current Raft term and leader, and returns the
// answers of those whose term was term. Every answer must be one the peer computed after the call began (an
// answer to a request the call sent). It may return once need of them have confirmed.
type Confirmer func(ctx context.Context, term uint64, peers []Peer, need int) []Confirmation

// SetConfirmer makes ReadIndex confirm leadership by asking the voters for their terms through c instead of
// with raft's VerifyLeader, and the lease behind level weak be renewed from their last contact with this node
// (see renewLease). The HTTP layer sets it; without it (in-process tests) VerifyLeader is used for both.
//
// Why not VerifyLeader: it votes with any acknowledgement that arrives after the call, including one of a
// heartbeat or append sent before it. A leader paused (SIGSTOP, a long GC) with an acknowledgement in flight
// can resume after the others elected a new leader and acknowledged writes, register a read's VerifyLeader,
// and have that old acknowledgement confirm it: a stale read. An answer to a request sent after the read
// began cannot be old; and a voter that answers this leader's term then had not voted in any later election.
func (n *Node) SetConfirmer(c Confirmer) { n.confirmer.Store(&c) }

// confirmLeadership returns the term in which, after the call began, a quorum of voters (this node and peers
// that answered its term) were at this node's term with this node leading, so that no later leader can have
// committed anything before then. Concurrent calls share rounds; a call joins one that starts after it. When
// the peers cannot be asked, or too few answer, a no-op through the log stands in (it commits only with a
// quorum at this term).
func (n *Node) confirmLeadership(ctx context.Context) (uint64, error) {
	c := n.confirmer.Load()
	if c == nil {
		term := n.raft.CurrentTerm()
		if err := n.verifyLeader(); err != nil {
			return 0, translate(err, false)
		}
		if n.raft.CurrentTerm() != term { // confirmed in some later term, not necessarily this one
			return 0, fmt.Errorf("%w: the term moved while confirming", ErrNotLeader)
		}
		return term, nil
	}
	n.stats.confirmedReads.Add(1)
	return n.confirms.Do(ctx, func(ctx context.Context) (uint64, error) { return n.confirmRound(ctx, *c) })
}

// voters returns the latest configuration's servers and, for a Confirmer, the voters other than this node.
func (n *Node) voters() ([]raft.Server, []Peer, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, nil, translate(err, false)
	}
	servers := cf.Configuration().Servers
	members := n.fsm.Members()
	var peers []Peer
	for _, s := range servers {
		if id := string(s.ID); s.Suffrage == raft.Voter && id != n.cfg.ID {
			peers = append(peers, Peer{ID: id, HTTPAddr: members[id].HTTPAddr})
		}
	}
	return servers, peers, nil
}

func (n *Node) confirmRound(ctx context.Context, confirm Confirmer) (uint64, error) {
	n.stats.confirmRounds.Add(1)
	term := n.raft.CurrentTerm()
	if !n.IsLeader() {
		return 0, n.notLeaderErr()
	}
	servers, peers, err := n.voters()
	if err != nil {
		return 0, err
	}
	if quorumOf(servers, n.cfg.ID, nil) { // the only voter
		if n.raft.CurrentTerm() != term || !n.IsLeader() {
			return 0, n.notLeaderErr()
		}
		return term, nil
	}
	// Peers answer in a round trip; one that cannot (down, cut off) must not hold the reads longer than an
	// election would take to move leadership anyway.
	cctx, cancel := context.WithTimeout(ctx, 2*n.cfg.ElectionTimeout)
	answers := confirm(cctx, term, peers, (len(peers)+1)/2) // a quorum is voters/2+1, this node included
	cancel()
	confirmed := make([]string, len(answers))
	for i, a := range answers {
		confirmed[i] = a.ID
	}
	if n.raft.State() == raft.Leader && n.raft.CurrentTerm() == term && quorumOf(servers, n.cfg.ID, confirmed) {
		return term, nil
	}
	if !n.IsLeader() || n.raft.CurrentTerm() != term {
		return 0, n.notLeaderErr()
	}
	if now := time.Now().UnixNano(); now-n.confirmWarned.Load() > int64(10*time.Second) {
		n.confirmWarned.Store(now)
		n.log.Warn("too few voters confirmed this leader's term over HTTP (GET /term); linearizable reads go through the log until they do",
			"confirmed", confirmed, "voters", len(peers)+1)
	}
	n.stats.logFallbacks.Add(1)
	if _, err := n.StrongIndex(ctx); err != nil {
		return 0, err
	}
	if n.raft.CurrentTerm() != term { // the no-op was committed, but perhaps by a later term of this node
		return 0, fmt.Errorf("%w: the term moved while confirming", ErrNotLeader)
	}
	return term, nil
}

// ReadIndexFor is ReadIndex for a read-index request that the member from sent while its Raft term was term
// (a follower or read replica serving linearizable reads). Leader only.
//
// The request can stand in for the confirmation round. From read its term after the reads it serves began,
// and a voter whose term was still this leader's had not voted in any later election by then. If this node
// and from are two voters that make a quorum of the latest configuration (at most three voters; single-server
// membership changes keep that quorum overlapping every quorum of the previous configuration), and this node
// still leads in that term, no later leader can have been elected, let alone have committed a write, before
// those reads began. So the commit index covers every write acknowledged before them: the guarantee
// confirmLeadership gives, without its round trip. Any other request (from a read replica, in a larger
// cluster, with another term or none) gets ReadIndex.
func (n *Node) ReadIndexFor(ctx context.Context, from string, term uint64) (uint64, error) {
	// The term first, as in ReadIndex: leading in cur both before and after the commit index is read means
	// the index is this leader's, in cur (a node leads at most once per term). Read the other way round, a
	// node deposed unawares could read its old term's index, then lead again in from's term and answer it.
	cur := n.raft.CurrentTerm()
	if !n.IsLeader() {
		return 0, n.notLeaderErr()
	}
	idx := n.raft.CommitIndex()
	if term != 0 && term == cur && n.raft.CurrentTerm() == cur && n.IsLeader() {
		if cf := n.raft.GetConfiguration(); cf.Error() == nil && quorumWith(cf.Configuration().Servers, n.cfg.ID, from) {
			return idx, nil
		}
	}
	return n.ReadIndex(ctx)
}

// quorumWith reports whether self and from, two different voters of servers, make a quorum of its voters.
func quorumWith(servers []raft.Server, self, from string) bool {
	return from != self && quorumOf(servers, self, []string{from})
}

// quorumOf reports whether self, if a voter of servers, and the voters among confirmed make a quorum of its
// voters. Ids count once; non-voters and strangers not at all.
func quorumOf(servers []raft.Server, self string, confirmed []string) bool {
	voters, votes := 0, 0
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if id := string(s.ID); id == self || slices.Contains(confirmed, id) {
			votes++
		}
	}
	return voters > 0 && votes >= voters/2+1
}

// StrongIndex orders a read through the Raft log: it commits a no-op and returns its index once applied here.
// Leader only.
func (n *Node) StrongIndex(ctx context.Context) (uint64, error) {
	if !n.IsLeader() {
		return 0, n.notLeaderErr()
	}
	f := n.raft.Apply(fsm.EncodeNoop(), n.cfg.ApplyTimeout)
	if err := n.await(ctx, f); err != nil {
		// The entry changes nothing, so whether it commits is no concern of the read's: losing leadership is
		// "not the leader", where a write's would be an unknown outcome.
		return 0, translate(err, false)
	}
	return f.Index(), nil
}

// LastContact is when this node last heard from the leader; now on the leader itself.
func (n *Node) LastContact() time.Time {
	if n.IsLeader() {
		return time.Now()
	}
	return n.raft.LastContact()
}

// CommitIndex is the highest log index this node knows to be committed (on a follower, as the leader last
// told it, up to the end of its own log).
func (n *Node) CommitIndex() uint64 { return n.raft.CommitIndex() }

// ApplyTimes returns when the leader appended the last entry applied here (the leader's clock) and when this
// node applied it (its own); zero when not known. See fsm.FSM.ApplyTimes.
func (n *Node) ApplyTimes() (appendedAt, appliedAt time.Time) { return n.fsm.ApplyTimes() }

// Position is a point in the log: an index and the term of the entry there (see fsm.Position).
type Position = fsm.Position

// Query runs read-only statements on the local database, as it is now; the caller decides whether that is
// fresh enough (see package followerread). It returns the applied position of the state read.
func (n *Node) Query(ctx context.Context, stmts []logical.Statement) ([]logical.Result, Position, error) {
	return n.fsm.Query(ctx, stmts)
}

// WriteBackup writes a consistent copy of the local database, as a SQLite file, to w.
func (n *Node) WriteBackup(w io.Writer) (Position, error) { return n.fsm.WriteBackup(w) }
