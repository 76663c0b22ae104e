// Package failover makes leadership changes visible: it consumes a node's raw events (leader changes, Raft
// state changes, membership, heartbeat failures and recoveries, snapshots), derives what a person watching a
// failover wants to know (how long the cluster had no leader), keeps a ring of recent events and fans them
// out to live subscribers such as GET /events.
//
// It imports node for the event type and nothing that imports Raft.
package failover

import (
	"fmt"
	"sync"
	"time"

	"github.com/rowboatdb/rowboat/node"
)

// Source is what the hub needs from a node.
type Source interface {
	// Events delivers the node's raw events, in order, until the node stops.
	Events() <-chan node.Event
}

// Derived event types.
const (
	// EventLeaderLost: this node stopped knowing a leader.
	EventLeaderLost node.EventType = "leader_lost"
	// EventLeaderFound: this node knows a leader again; Detail says how long it had none.
	EventLeaderFound node.EventType = "leader_found"
)

// Hub keeps the recent events of one node and fans new ones out to subscribers. Its methods are safe for
// concurrent use.
type Hub struct {
	mu   sync.Mutex
	seq  uint64
	ring []node.Event
	max  int
	subs map[chan node.Event]struct{}
	now  func() time.Time

	leader    string
	lostSince time.Time
	done      chan struct{}
}

// NewHub starts consuming src's events, keeping the last size of them.
func NewHub(src Source, size int) *Hub {
	h := newHub(size, time.Now)
	go func() {
		defer close(h.done)
		for e := range src.Events() {
			h.Publish(e)
		}
	}()
	return h
}

func newHub(size int, now func() time.Time) *Hub {
	if size <= 0 {
		size = 256
	}
	return &Hub{max: size, subs: make(map[chan node.Event]struct{}), now: now, done: make(chan struct{})}
}

// Publish records e (numbering it) and any event derived from it, and sends them to every subscriber. A
// subscriber that does not keep up misses events rather than stalling the node; the sequence numbers show
// the gap.
func (h *Hub) Publish(e node.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = h.now()
	}
	h.add(e)
	if e.Type != node.EventLeaderChanged {
		return
	}
	switch {
	case e.Leader == "" && h.leader != "":
		h.lostSince = e.Time
		h.add(node.Event{Time: e.Time, Type: EventLeaderLost, Node: e.Node, Term: e.Term, Index: e.Index,
			Detail: "was " + h.leader})
	case e.Leader != "" && h.leader == "" && !h.lostSince.IsZero():
		h.add(node.Event{Time: e.Time, Type: EventLeaderFound, Node: e.Node, Term: e.Term, Index: e.Index, Leader: e.Leader,
			Detail: fmt.Sprintf("no leader for %s", e.Time.Sub(h.lostSince).Round(time.Millisecond))})
		h.lostSince = time.Time{}
	}
	h.leader = e.Leader
}

func (h *Hub) add(e node.Event) {
	h.seq++
	e.Seq = h.seq
	h.ring = append(h.ring, e)
	if len(h.ring) > h.max {
		h.ring = h.ring[len(h.ring)-h.max:]
	}
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
		}
	}
}

// Subscribe returns the recent events and a channel of new ones; cancel ends the subscription.
func (h *Hub) Subscribe() (recent []node.Event, ch <-chan node.Event, cancel func()) {
	c := make(chan node.Event, 256)
	h.mu.Lock()
	recent = append([]node.Event(nil), h.ring...)
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	return recent, c, func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}
}
