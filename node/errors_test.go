package node

import (
	"errors"
	"fmt"
	"testing"

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
		{errors.New("sync raft log: input/output error"), true, ErrLeadershipLost, nil}, // a failed append: unknown
		{ErrShuttingDown, true, ErrLeadershipLost, nil},
		{ErrShuttingDown, false, ErrShuttingDown, ErrLeadershipLost},
	} {
		got := translate(tc.err, tc.proposed)
		if !errors.Is(got, tc.want) || tc.wantNotTo != nil && errors.Is(got, tc.wantNotTo) {
			t.Errorf("translate(%v, proposed=%v) = %v; want %v, not %v", tc.err, tc.proposed, got, tc.want, tc.wantNotTo)
		}
	}
}
