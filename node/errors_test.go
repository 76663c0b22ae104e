package node

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// TestTranslate: raft's errors become the node's sentinels, and a proposal whose outcome is unknown is never
// reported as one that applied nothing. Raft answers even a committed entry with ErrRaftShutdown when it
// shuts down, so after a proposal that must read "outcome unknown" (a client retrying would apply it twice).
func TestTranslate(t *testing.T) {
	for _, tc := range []struct {
		err       error
		proposed  bool
		want      error
		wantNotTo error
	}{
		{raft.ErrRaftShutdown, true, ErrLeadershipLost, nil},
		{raft.ErrRaftShutdown, false, ErrShuttingDown, ErrLeadershipLost},
		{raft.ErrLeadershipLost, true, ErrLeadershipLost, nil},
		{raft.ErrLeadershipLost, false, ErrNotLeader, ErrLeadershipLost},
		{raft.ErrNotLeader, true, ErrNotLeader, ErrLeadershipLost},
		{raft.ErrLeadershipTransferInProgress, true, ErrNotLeader, ErrLeadershipLost},
		{raft.ErrEnqueueTimeout, true, ErrTimeout, nil},
		{fmt.Errorf("wrapped: %w", raft.ErrRaftShutdown), true, ErrLeadershipLost, nil},
	} {
		got := translate(tc.err, tc.proposed)
		if !errors.Is(got, tc.want) || tc.wantNotTo != nil && errors.Is(got, tc.wantNotTo) {
			t.Errorf("translate(%v, proposed=%v) = %v; want %v, not %v", tc.err, tc.proposed, got, tc.want, tc.wantNotTo)
		}
	}
}

// A write raft accepted that fails for any other reason (a failed append to the leader's log) has an unknown
// outcome; raft's own errors keep their meaning.
func TestTranslateWrite(t *testing.T) {
	if err := translateWrite(errors.New("sync raft log: input/output error")); !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("a failed append: %v, want ErrLeadershipLost", err)
	}
	if err := translateWrite(raft.ErrNotLeader); !errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("not the leader: %v", err)
	}
	if err := translateWrite(raft.ErrEnqueueTimeout); !errors.Is(err, ErrTimeout) || errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("enqueue timeout: %v", err)
	}
	// Membership changes keep translate: a configuration raft refuses was never appended.
	if err := translate(errors.New("need at least one voter in configuration"), true); errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("a refused configuration: %v, want it as it is", err)
	}
}

// Raft's "failed to decode incoming command" is dropped when the transport shut down (every graceful stop
// logged it as an error), and kept otherwise.
func TestRaftLogNoise(t *testing.T) {
	if !raftLogNoise(hclog.Error, "failed to decode incoming command", "error", raft.ErrTransportShutdown) {
		t.Error("the shutdown error was kept")
	}
	if raftLogNoise(hclog.Error, "failed to decode incoming command", "error", errors.New("unexpected EOF")) ||
		raftLogNoise(hclog.Error, "failed to append to logs", "error", raft.ErrTransportShutdown) {
		t.Error("another error was dropped")
	}
}
