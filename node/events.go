package node

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// EventType names what happened.
type EventType string

// Event types published by a node.
const (
	EventLeaderChanged    EventType = "leader_changed"
	EventLeaderReady      EventType = "leader_ready"
	EventStateChanged     EventType = "state_changed"
	EventMemberAdded      EventType = "member_added"
	EventMemberRemoved    EventType = "member_removed"
	EventHeartbeatFailed  EventType = "heartbeat_failed"
	EventHeartbeatResumed EventType = "heartbeat_resumed"
	EventSnapshotTaken    EventType = "snapshot_taken"
	EventSnapshotRestored EventType = "snapshot_installed"
	// EventReady: the node became ready to serve (see Ready) for the first time since it started.
	EventReady EventType = "ready"
)

// Event is one thing a node saw happen, with the Raft position at that moment.
type Event struct {
	Seq    uint64    `json:"seq"` // numbered by the hub that records it
	Time   time.Time `json:"time"`
	Type   EventType `json:"type"`
	Node   string    `json:"node"`             // the node reporting it
	Term   uint64    `json:"term"`             //
	Index  uint64    `json:"index"`            // applied index at the time
	Leader string    `json:"leader,omitempty"` // leader_changed: the new leader's id (empty: none)
	Peer   string    `json:"peer,omitempty"`   // member and heartbeat events: the member concerned
	State  string    `json:"state,omitempty"`  // state_changed: the new Raft state
	Detail string    `json:"detail,omitempty"` //
}

// eventSink hands events to one consumer (package failover's hub) without ever blocking the node: when the
// consumer falls behind, events are dropped and counted.
type eventSink struct {
	ch      chan Event
	dropped atomic.Uint64
	closed  atomic.Bool
	mu      sync.Mutex
}

func newEventSink(size int) *eventSink { return &eventSink{ch: make(chan Event, size)} }

func (s *eventSink) publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	select {
	case s.ch <- e:
	default:
		s.dropped.Add(1)
	}
}

func (s *eventSink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed.Swap(true) {
		close(s.ch)
	}
}

// Events delivers this node's events in order; the channel closes when the node stops. Events are dropped
// (never blocking the node) when nobody reads them.
func (n *Node) Events() <-chan Event { return n.events.ch }

// observe turns Raft observations into events.
func (n *Node) observe() {
	defer n.wg.Done()
	failing := map[string]bool{} // peers whose heartbeats are failing: report the change, not every retry
	// members is the configuration as of the last leader change. A new leader starts replicating to every
	// member, and raft reports each as a peer added: only one that was not a member is news.
	members := map[string]bool{}
	refresh := func() {
		clear(members)
		if cf := n.raft.GetConfiguration(); cf.Error() == nil {
			for _, s := range cf.Configuration().Servers {
				members[string(s.ID)] = true
			}
		}
	}
	refresh()
	readiness := time.NewTicker(50 * time.Millisecond)
	defer readiness.Stop()
	notReady := readiness.C // nil once the node has been ready
	// A removed member is told nothing: it notices, and says so in its log, by looking at the configuration.
	membership := time.NewTicker(2 * time.Second)
	defer membership.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-membership.C:
			if n.raft.State() != raft.Leader {
				n.Removed()
			}
		case <-notReady:
			if ok, _ := n.Ready(); ok {
				n.events.publish(Event{Type: EventReady, Node: n.cfg.ID, Term: n.raft.CurrentTerm(), Index: n.fsm.AppliedIndex()})
				readiness.Stop()
				notReady = nil
			}
		case o := <-n.obsCh:
			e := Event{Node: n.cfg.ID, Term: n.raft.CurrentTerm(), Index: n.fsm.AppliedIndex()}
			switch d := o.Data.(type) {
			case raft.LeaderObservation:
				e.Type, e.Leader = EventLeaderChanged, string(d.LeaderID)
				n.resetFailing() // a new leadership starts its heartbeats afresh
				refresh()
			case raft.RaftState:
				e.Type, e.State = EventStateChanged, roleName(d)
			case raft.PeerObservation:
				e.Peer = string(d.Peer.ID)
				if d.Removed {
					e.Type = EventMemberRemoved
					delete(members, e.Peer)
				} else {
					if members[e.Peer] {
						continue
					}
					e.Type = EventMemberAdded
					members[e.Peer] = true
				}
			case raft.FailedHeartbeatObservation:
				n.setFailing(string(d.PeerID), true)
				if failing[string(d.PeerID)] {
					continue
				}
				failing[string(d.PeerID)] = true
				e.Type, e.Peer = EventHeartbeatFailed, string(d.PeerID)
			case raft.ResumedHeartbeatObservation:
				n.setFailing(string(d.PeerID), false)
				if !failing[string(d.PeerID)] {
					continue
				}
				delete(failing, string(d.PeerID))
				e.Type, e.Peer = EventHeartbeatResumed, string(d.PeerID)
			default:
				continue
			}
			n.events.publish(e)
		}
	}
}

func roleName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Candidate:
		return "candidate"
	case raft.Follower:
		return "follower"
	default:
		return "shutdown"
	}
}

// setFailing records whether this leader's heartbeats to peer are failing.
func (n *Node) setFailing(peer string, failing bool) {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	if failing {
		if n.peersFailing == nil {
			n.peersFailing = map[string]bool{}
		}
		n.peersFailing[peer] = true
	} else {
		delete(n.peersFailing, peer)
	}
}

func (n *Node) resetFailing() {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	clear(n.peersFailing)
}

// failing reports whether this leader's last heartbeat to peer failed.
func (n *Node) failing(peer string) bool {
	n.peersMu.Lock()
	defer n.peersMu.Unlock()
	return n.peersFailing[peer]
}
