package node

import (
	"sync"
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
)

// Event is one thing a node saw happen, with the Raft position at that moment.
type Event struct {
	Seq    uint64    `json:"seq"`
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

// eventHub keeps the last events and fans new ones out to subscribers.
type eventHub struct {
	mu   sync.Mutex
	seq  uint64
	ring []Event
	max  int
	subs map[chan Event]struct{}
}

func newEventHub(max int) *eventHub {
	return &eventHub{max: max, subs: make(map[chan Event]struct{})}
}

func (h *eventHub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e.Seq = h.seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	h.ring = append(h.ring, e)
	if len(h.ring) > h.max {
		h.ring = h.ring[len(h.ring)-h.max:]
	}
	for ch := range h.subs {
		select {
		case ch <- e:
		default: // a slow subscriber misses events rather than stalling the node; Seq shows the gap
		}
	}
}

// Subscribe returns the recent events and a channel of new ones; cancel ends the subscription.
func (n *Node) Subscribe() (recent []Event, ch <-chan Event, cancel func()) {
	h := n.events
	c := make(chan Event, 256)
	h.mu.Lock()
	recent = append([]Event(nil), h.ring...)
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	return recent, c, func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}
}

// observe turns Raft observations into events.
func (n *Node) observe() {
	defer n.wg.Done()
	failing := map[string]bool{} // peers whose heartbeats are failing: report the change, not every retry
	for {
		select {
		case <-n.stop:
			return
		case o := <-n.obsCh:
			e := Event{Node: n.cfg.ID, Term: n.raft.CurrentTerm(), Index: n.fsm.AppliedIndex()}
			switch d := o.Data.(type) {
			case raft.LeaderObservation:
				e.Type, e.Leader = EventLeaderChanged, string(d.LeaderID)
			case raft.RaftState:
				e.Type, e.State = EventStateChanged, roleName(d)
			case raft.PeerObservation:
				e.Type, e.Peer = EventMemberAdded, string(d.Peer.ID)
				if d.Removed {
					e.Type = EventMemberRemoved
				}
			case raft.FailedHeartbeatObservation:
				if failing[string(d.PeerID)] {
					continue
				}
				failing[string(d.PeerID)] = true
				e.Type, e.Peer = EventHeartbeatFailed, string(d.PeerID)
			case raft.ResumedHeartbeatObservation:
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
