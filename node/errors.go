package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Errors callers branch on. Raft's own errors never leave this package: they are translated into these.
var (
	// ErrNotLeader is returned by leader-only operations on a node that is not the leader (or is a leader that
	// has not yet caught up with its predecessor's writes). The operation was not applied.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader is returned when the cluster has no leader this node knows of, for example during an
	// election. The operation was not applied; retry.
	ErrNoLeader = errors.New("no leader")
	// ErrLeadershipLost is returned when a write was proposed but leadership was lost before it committed: it
	// may or may not be applied. A client must read to find out.
	ErrLeadershipLost = errors.New("leadership lost while committing: the write may or may not have been applied")
	// ErrTimeout is returned when an operation did not finish in time.
	ErrTimeout = errors.New("timed out")
	// ErrShuttingDown is returned once the node is stopping.
	ErrShuttingDown = errors.New("node is shutting down")
	// ErrUnknownMember is returned when removing or transferring to a member the cluster does not have.
	ErrUnknownMember = errors.New("unknown member")
	// ErrBadRequest wraps errors in the arguments of an operation.
	ErrBadRequest = errors.New("bad request")
	// ErrUnreachable is returned when a node asking to become a member cannot be reached at the Raft address it
	// gave (it is not listening yet, or the network is cut): adding it would count a voter that cannot vote.
	// Nothing changed; retry.
	ErrUnreachable = errors.New("member unreachable")
	// ErrWouldLoseQuorum is returned when removing a member would leave voters of which too few answer to
	// make a quorum: the cluster would have no leader until the others came back. Nothing changed.
	ErrWouldLoseQuorum = errors.New("would leave no quorum")
	// ErrHandedOver is returned by a leader asked to remove itself: it handed leadership to another voter
	// first, and the removal is now the new leader's to make. Nothing was removed; ask the new leader.
	ErrHandedOver = errors.New("leadership was handed over before removing this node: ask the new leader")
)

// translate maps raft's errors to this package's. proposed tells whether the operation had been handed to raft
// for replication (so losing leadership leaves its outcome unknown).
func translate(err error, proposed bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrNotVoter):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Raft refuses new entries during a transfer before appending them: nothing was applied.
		return fmt.Errorf("%w: leadership transfer in progress", ErrNotLeader)
	case errors.Is(err, raft.ErrLeadershipLost):
		if proposed {
			return ErrLeadershipLost
		}
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		if proposed {
			// Raft answers a proposal it had appended, even a committed one, with this when it shuts down:
			// the outcome is unknown, and a client must not take it for "nothing applied".
			return fmt.Errorf("%w: %w", ErrLeadershipLost, ErrShuttingDown)
		}
		return ErrShuttingDown
	case errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	default:
		return err
	}
}

// translateWrite is translate for a write raft accepted: whatever else makes it fail, such as a failed append
// to the leader's log (whose records may still reach the disk, and be committed by a later leader), leaves
// its outcome unknown, which an internal error would misreport as "nothing applied". (Membership changes
// keep translate: raft refuses a bad configuration before appending anything.)
func translateWrite(err error) error {
	err = translate(err, true)
	for _, known := range []error{ErrLeadershipLost, ErrNotLeader, ErrTimeout, ErrShuttingDown} {
		if errors.Is(err, known) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
}
