package node

import (
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
				continue
			}
			term := n.raft.CurrentTerm()
			if n.leaderBarrier(term) {
				n.readyTerm.Store(term)
				n.events.publish(Event{Type: EventLeaderReady, Node: n.cfg.ID, Term: term, Index: n.fsm.AppliedIndex()})
				n.log.Info("leader ready", "term", term, "applied_index", n.fsm.AppliedIndex())
				n.recordSelf()
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
		err := n.raft.Apply(fsm.EncodeNoop(), n.cfg.ApplyTimeout).Error()
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
	if err := n.raft.Apply(fsm.EncodeMember(fsm.CmdSetMember, want), n.cfg.ApplyTimeout).Error(); err != nil {
		n.log.Warn("record own metadata", "err", err)
	}
}
