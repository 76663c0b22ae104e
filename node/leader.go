package node

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/fsm"
)

// watchLeadership reacts to this node gaining leadership: before it executes a write or serves a leader read
// it commits a no-op of its own and waits until that is applied, so its database holds every write earlier
// leaders committed (without this a new leader could, for example, hand out AUTOINCREMENT ids already
// acknowledged by its predecessor). Then it records its own metadata if the cluster does not have it.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	ch := n.raft.LeaderCh()
	for {
		select {
		case <-n.stop:
			return
		case isLeader := <-ch:
			if !isLeader {
				n.readyTerm.Store(0)
				if stop := n.executing.Load(); stop != nil && !n.noDeposeInterrupt.Load() {
					(*stop)(errDeposed)
				}
				continue
			}
			term := n.raft.CurrentTerm()
			if n.leaderBarrier(term) {
				n.readyTerm.Store(term)
				n.events.publish(Event{Type: EventLeaderReady, Node: n.cfg.ID, Term: term, Index: n.fsm.AppliedIndex()})
				n.log.Info("leader ready", "term", term, "applied_index", n.fsm.AppliedIndex())
				n.recordSelf()
				n.pruneMembers()
			}
		}
	}
}

// leaderBarrier applies a CmdNoop; unlike raft.Barrier, the FSM sees it, so the applied index reaches the
// commit index.
func (n *Node) leaderBarrier(term uint64) bool {
	for {
		if n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term {
			return false
		}
		err := n.await(nil, n.raft.Apply(fsm.EncodeNoop(), n.cfg.ApplyTimeout))
		if err == nil {
			return true
		}
		n.log.Warn("leader barrier", "err", err)
		select {
		case <-n.stop:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// recordSelf makes sure the replicated member table has this node's current addresses.
func (n *Node) recordSelf() {
	want := fsm.Member{ID: n.cfg.ID, HTTPAddr: n.cfg.HTTPAdvertise, RaftAddr: string(n.transport.LocalAddr()), Voter: true}
	if m, ok := n.fsm.Members()[n.cfg.ID]; ok && m == want {
		return
	}
	if err := n.await(nil, n.raft.Apply(fsm.EncodeMember(fsm.CmdSetMember, want), n.cfg.ApplyTimeout)); err != nil {
		n.log.Warn("record own metadata", "err", err)
	}
}

// pruneMembers forgets the metadata of members no longer in the Raft configuration: a leader that removed
// itself stepped down before it could forget its own. Metadata is recorded after a member is added, never
// before, so a member being added is in the configuration already.
func (n *Node) pruneMembers() {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return
	}
	in := map[string]bool{}
	for _, s := range cf.Configuration().Servers {
		in[string(s.ID)] = true
	}
	for id := range n.fsm.Members() {
		if in[id] || n.inConfiguration(id) { // a member may have joined since the configuration was read
			continue
		}
		if err := n.await(nil, n.raft.Apply(fsm.EncodeMember(fsm.CmdRemoveMember, fsm.Member{ID: id}), n.cfg.ApplyTimeout)); err != nil {
			n.log.Warn("forget a removed member's metadata", "member", id, "err", err)
			return
		}
		n.log.Info("forgot the metadata of a member no longer in the cluster", "member", id)
	}
}

// inConfiguration reports whether id is in the latest Raft configuration.
func (n *Node) inConfiguration(id string) bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return true // when in doubt, keep the metadata
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == id {
			return true
		}
	}
	return false
}

// leaseFraction of the heartbeat timeout is how long a lease lasts from the contacts behind it (renewLease).
// Followers refuse to vote while they heard from their leader within the heartbeat timeout, so no other
// leader can be elected sooner; the margin covers a read that passed HasLease and is still running.
const leaseFraction = 0.6

// verifyLeader asks a quorum to confirm this node's leadership with raft's VerifyLeader and extends the lease
// when it does. VerifyLeader may count an acknowledgement of a message sent long before the call (see
// SetConfirmer), so it only stands in for renewLease's round where no Confirmer is set (in-process tests).
func (n *Node) verifyLeader() error {
	start := time.Since(n.started)
	if err := n.await(nil, n.raft.VerifyLeader()); err != nil {
		return err
	}
	n.extendLease(start)
	return nil
}

// extendLease moves the lease's start to from, if that is later.
func (n *Node) extendLease(from time.Duration) {
	for {
		cur := n.leaseStart.Load()
		if int64(from) <= cur || n.leaseStart.CompareAndSwap(cur, int64(from)) {
			return
		}
	}
}

// noLease is leaseStart before any quorum confirmed this node (so long ago that no lease can be left).
const noLease = math.MinInt64 / 2

// errNoLease is returned by renewLease when too few voters vouched for this leader recently.
var errNoLease = errors.New("too few voters heard from this leader recently")

// renewLease extends the lease from what the voters say. A voter that names this node as its leader and last
// heard from it d before answering will not vote for another candidate until its heartbeat timeout has run
// from that contact, which was at or after (the round's start - d) here. So when this node and such voters
// make a quorum, no other leader can be elected until the heartbeat timeout after the oldest of their
// contacts; HasLease keeps a margin below that. (Raft's followers refuse votes while they know a leader, except
// for a leadership transfer, which this node starts itself after IsLeader, and so HasLease, turned false.)
// Unlike VerifyLeader, a voter's answer cannot be left over from before the round: a leader that was paused
// finds its followers' contacts as old as the pause.
func (n *Node) renewLease(ctx context.Context) error {
	c := n.confirmer.Load()
	if c == nil {
		return n.verifyLeader()
	}
	start := time.Since(n.started)
	term := n.raft.CurrentTerm()
	if !n.IsLeader() {
		return n.notLeaderErr()
	}
	servers, peers, err := n.voters()
	if err != nil {
		return err
	}
	need := (len(peers) + 1) / 2
	var answers []Confirmation
	if need > 0 {
		cctx, cancel := context.WithTimeout(ctx, n.cfg.HeartbeatTimeout)
		answers = (*c)(cctx, term, peers, need)
		cancel()
	}
	// The most recent contacts first: the lease lasts as long as the oldest one the quorum needs.
	slices.SortFunc(answers, func(a, b Confirmation) int { return cmp.Compare(a.LeaderContact, b.LeaderContact) })
	var ids []string
	oldest := time.Duration(0)
	for _, a := range answers {
		if quorumOf(servers, n.cfg.ID, ids) {
			break
		}
		if a.LeaderContact >= 0 {
			ids = append(ids, a.ID)
			oldest = a.LeaderContact
		}
	}
	if !quorumOf(servers, n.cfg.ID, ids) {
		return errNoLease
	}
	if n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term {
		return n.notLeaderErr()
	}
	n.extendLease(start - oldest)
	return nil
}

// HasLease reports whether this node leads and a quorum confirmed it recently enough that no other node can
// have been elected since: the check behind level weak.
func (n *Node) HasLease() bool {
	if !n.IsLeader() {
		return false
	}
	lease := time.Duration(float64(n.cfg.HeartbeatTimeout) * leaseFraction)
	now := time.Since(n.started)
	n.leaseUsed.Store(int64(now))
	return now-time.Duration(n.leaseStart.Load()) < lease
}

// leaseLeft is what remains of the lease: 0 when this node has none.
func (n *Node) leaseLeft() time.Duration {
	if !n.IsLeader() {
		return 0
	}
	lease := time.Duration(float64(n.cfg.HeartbeatTimeout) * leaseFraction)
	return max(lease-(time.Since(n.started)-time.Duration(n.leaseStart.Load())), 0)
}

// keepLease renews the lease while this node leads and serves weak reads, so they rarely wait for a
// confirmation; an idle leader spends nothing on it.
func (n *Node) keepLease() {
	defer n.wg.Done()
	t := time.NewTicker(time.Duration(float64(n.cfg.HeartbeatTimeout) * leaseFraction / 3))
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if used := n.leaseUsed.Load(); used != 0 && n.IsLeader() && time.Since(n.started)-time.Duration(used) < time.Second {
				n.renewLease(context.Background())
			}
		}
	}
}
