package failover

import (
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/node"
)

func TestHub_DerivesLeaderLossAndFound(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHub(8, func() time.Time { return t0 })
	_, ch, cancel := h.Subscribe()
	defer cancel()
	h.Publish(node.Event{Type: node.EventLeaderChanged, Leader: "n1", Time: t0})
	h.Publish(node.Event{Type: node.EventLeaderChanged, Leader: "", Time: t0.Add(time.Second)})
	h.Publish(node.Event{Type: node.EventLeaderChanged, Leader: "n2", Time: t0.Add(1800 * time.Millisecond)})
	var got []node.Event
	for len(ch) > 0 {
		got = append(got, <-ch)
	}
	var types []node.EventType
	for _, e := range got {
		types = append(types, e.Type)
	}
	want := []node.EventType{node.EventLeaderChanged, node.EventLeaderChanged, EventLeaderLost, node.EventLeaderChanged, EventLeaderFound}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
		if got[i].Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, got[i].Seq)
		}
	}
	if d := got[4].Detail; d != "no leader for 800ms" || got[4].Leader != "n2" {
		t.Fatalf("leader_found = %+v", got[4])
	}
}

func TestHub_RingAndSlowSubscriber(t *testing.T) {
	h := newHub(3, time.Now)
	_, ch, cancel := h.Subscribe()
	defer cancel()
	for i := range 300 { // more than the subscriber's buffer: Publish must not block
		h.Publish(node.Event{Type: node.EventStateChanged, State: "follower", Index: uint64(i)})
	}
	recent, _, cancel2 := h.Subscribe()
	defer cancel2()
	if len(recent) != 3 || recent[2].Index != 299 {
		t.Fatalf("recent = %+v", recent)
	}
	if len(ch) != cap(ch) {
		t.Fatalf("subscriber got %d events, want its buffer full (%d)", len(ch), cap(ch))
	}
}

type fakeSource chan node.Event

func (f fakeSource) Events() <-chan node.Event { return f }

func TestNewHub_ConsumesSource(t *testing.T) {
	src := make(fakeSource, 1)
	h := NewHub(src, 8)
	src <- node.Event{Type: node.EventLeaderReady, Node: "n1"}
	close(src)
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		t.Fatal("hub did not finish consuming a closed source")
	}
	recent, _, cancel := h.Subscribe()
	defer cancel()
	if len(recent) != 1 || recent[0].Type != node.EventLeaderReady {
		t.Fatalf("recent = %+v", recent)
	}
}
