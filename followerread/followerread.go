// Package followerread decides where and when a read is served: it parses consistency levels and session
// guarantees (min_index, freshness) and turns them into a plan — serve locally once the local database has
// reached some index, or forward to the leader — using a small interface over the node.
//
// It imports no Raft and no HTTP.
package followerread

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rowboatdb/rowboat/internal/rounds"
)

// Level is a read consistency level.
type Level string

// Levels, from cheapest to strongest; see ARCHITECTURE.md.
const (
	None         Level = "none"
	Weak         Level = "weak"
	Linearizable Level = "linearizable"
	Strong       Level = "strong"
	Auto         Level = "auto"
)

// DefaultLevel is the level of a read that names none.
const DefaultLevel = Linearizable

// Errors callers branch on.
var (
	// ErrBadLevel is returned for a level name that is not one of the levels.
	ErrBadLevel = errors.New("unknown read level")
	// ErrStale is returned when the local state is behind what the read requires and the client asked for an
	// error rather than a forwarded read.
	ErrStale = errors.New("stale read refused")
)

// ParseLevel parses a level name; the empty string is DefaultLevel.
func ParseLevel(s string) (Level, error) {
	switch l := Level(s); l {
	case "":
		return DefaultLevel, nil
	case None, Weak, Linearizable, Strong, Auto:
		return l, nil
	default:
		return "", fmt.Errorf("%w %q: use none, weak, linearizable, strong or auto", ErrBadLevel, s)
	}
}

// Node is what read routing needs from the local node.
type Node interface {
	// IsLeader reports whether this node leads and has caught up with its predecessors.
	IsLeader() bool
	// HasLease reports whether this node leads and a quorum confirmed it recently enough that no other leader
	// can exist yet.
	HasLease() bool
	// IsVoter reports whether this node is a voting member (false on read replicas).
	IsVoter() bool
	// AppliedIndex is the index of the last entry applied locally.
	AppliedIndex() uint64
	// WaitApplied waits until the applied index reaches index or ctx ends.
	WaitApplied(ctx context.Context, index uint64) error
	// ReadIndex returns a read index after confirming leadership (leader only).
	ReadIndex(ctx context.Context) (uint64, error)
	// StrongIndex commits a no-op through the log and returns its index (leader only).
	StrongIndex(ctx context.Context) (uint64, error)
	// LastContact is when this node last heard from the leader (zero if never).
	LastContact() time.Time
	// CommitIndex is the highest index this node knows to be committed.
	CommitIndex() uint64
	// ApplyTimes returns when the leader appended the last entry applied here (the leader's clock) and when
	// this node applied it (its own clock); zero times when not known.
	ApplyTimes() (appendedAt, appliedAt time.Time)
}

// NoWait as a Request's MinIndexTimeout: a node behind MinIndex forwards the read (or answers ErrStale) at
// once, as ?min_index_timeout=0 asks.
const NoWait time.Duration = -1

// Request is what a read asks for.
type Request struct {
	Level           Level
	MinIndex        uint64        // serve from a state that includes this entry
	MinIndexTimeout time.Duration // how long to wait locally for MinIndex: 0 means 2s, NoWait not at all
	StaleError      bool          // when behind: ErrStale instead of forwarding to the leader
	Freshness       time.Duration // none: do not serve locally without leader contact within this
	// FreshnessStrict (rqlite's freshness_strict, with Freshness): also do not serve locally if this node is
	// behind what it knows committed and the last entry it applied reached it more than Freshness after the
	// leader appended it. It compares the leader's clock with this node's, as rqlite does; min_index and
	// level linearizable bound staleness without clocks.
	FreshnessStrict bool
}

// Plan is the decision for one read.
type Plan struct {
	// Forward sends the read to the leader, which must not forward it again.
	Forward bool
	// Level is the level after resolving auto.
	Level Level
}

// Router plans reads for one node.
type Router struct {
	Node Node
	Now  func() time.Time // the clock behind freshness; time.Now if nil
	// LeaderReadIndex asks the leader for a read index (the leader confirms its leadership, then answers its
	// commit index). With it, followers and read replicas serve linearizable reads locally; without it they
	// forward them to the leader. Concurrent reads share rounds: at most one request to the leader is in
	// flight, and it serves every read that arrived before it was sent.
	LeaderReadIndex func(ctx context.Context) (uint64, error)

	rounds rounds.Group[uint64]
	stats  struct{ readIndexRounds, readIndexReads, forwarded atomic.Uint64 }
}

// Stats counts, since the router was made, how this node served reads it could not serve on its own.
type Stats struct {
	// ReadIndexRounds counts the read-index requests sent to the leader for linearizable reads on this node.
	ReadIndexRounds uint64 `json:"read_index_rounds"`
	// ReadIndexReads counts the linearizable reads that joined those rounds: divided by ReadIndexRounds, how
	// many reads each request to the leader served.
	ReadIndexReads uint64 `json:"read_index_reads"`
	// ForwardedReads counts the reads this node sent to the leader instead of serving them: weak and strong
	// reads on a follower, and reads behind their min_index or freshness.
	ForwardedReads uint64 `json:"forwarded_reads"`
}

// Stats returns the router's counters.
func (r *Router) Stats() Stats {
	return Stats{
		ReadIndexRounds: r.stats.readIndexRounds.Load(), ReadIndexReads: r.stats.readIndexReads.Load(),
		ForwardedReads: r.stats.forwarded.Load(),
	}
}

// SetRoundTimeout bounds each read-index round, however long its readers would wait (default 5 s). Call it
// before the router serves reads.
func (r *Router) SetRoundTimeout(d time.Duration) { r.rounds.Timeout = d }

// sharedReadIndex joins the next read-index round (one that starts after this call) and waits for it.
func (r *Router) sharedReadIndex(ctx context.Context) (uint64, error) {
	r.stats.readIndexReads.Add(1)
	return r.rounds.Do(ctx, func(ctx context.Context) (uint64, error) {
		r.stats.readIndexRounds.Add(1)
		return r.LeaderReadIndex(ctx)
	})
}

// Prepare decides how to serve req and, when the plan is local, waits until the local database is recent
// enough for it. The read may then run locally. Errors: ErrStale, ctx errors, and the node's errors for a
// leader that cannot confirm its leadership.
func (r *Router) Prepare(ctx context.Context, req Request, forwarded bool) (Plan, error) {
	n := r.Node
	level := req.Level
	if level == Auto {
		level = Weak
		if !n.IsVoter() {
			level = None
		}
	}
	plan := Plan{Level: level}
	leader := n.IsLeader()
	if !leader && level != None && !(level == Linearizable && r.LeaderReadIndex != nil) {
		// weak and strong are the leader's by definition (as in rqlite).
		return r.forward(plan, forwarded, false, "not the leader")
	}
	switch level {
	case None:
		if req.Freshness > 0 && !leader {
			now := time.Now
			if r.Now != nil {
				now = r.Now
			}
			if lc := n.LastContact(); lc.IsZero() || now().Sub(lc) > req.Freshness {
				return r.forward(plan, forwarded, req.StaleError, fmt.Sprintf("no contact with the leader within %s", req.Freshness))
			}
			if req.FreshnessStrict {
				if lag, behind := replicationLag(n); behind && lag > req.Freshness {
					return r.forward(plan, forwarded, req.StaleError, fmt.Sprintf("behind the leader by %s, more than freshness %s", lag.Round(time.Millisecond), req.Freshness))
				}
			}
		}
	case Weak:
		// A leader whose lease ran out (it was paused, or cut off) confirms its leadership before it reads,
		// so it never serves a read a newer leader's writes have made stale. Either way it waits until it has
		// applied what it knows committed: a follower may have applied that already, and a client reading
		// there and then here must not see time go backwards.
		idx := n.CommitIndex()
		if !n.HasLease() {
			ri, err := n.ReadIndex(ctx)
			if err != nil {
				return plan, err
			}
			idx = max(idx, ri)
		}
		if err := n.WaitApplied(ctx, idx); err != nil {
			return plan, err
		}
	case Linearizable:
		if leader {
			idx, err := n.ReadIndex(ctx)
			if err != nil {
				return plan, err
			}
			if err := n.WaitApplied(ctx, idx); err != nil {
				return plan, err
			}
			break
		}
		// A follower: a read index from the leader, then wait (bounded) until this node has applied it.
		idx, err := r.sharedReadIndex(ctx)
		if err != nil {
			return plan, err
		}
		if req.MinIndex < idx {
			req.MinIndex = idx
		}
	case Strong:
		idx, err := n.StrongIndex(ctx)
		if err != nil {
			return plan, err
		}
		if err := n.WaitApplied(ctx, idx); err != nil {
			return plan, err
		}
	}
	if req.MinIndex > 0 && n.AppliedIndex() < req.MinIndex {
		// Every entry a client can hold a bookmark of is committed, and the leader knows it committed: one
		// beyond is of another cluster, or of this one before a restore, and waiting would not bring it.
		// (Not for a read another node forwarded: it may think this node leads after a newer leader took
		// over, whose bookmark this one may learn of within the wait.)
		if leader && !forwarded {
			if commit := n.CommitIndex(); req.MinIndex > commit {
				return plan, fmt.Errorf("%w: min_index %d is beyond what this leader knows committed (index %d): a bookmark from another cluster, from before a restore, or of a newer leader than this one",
					ErrStale, req.MinIndex, commit)
			}
		}
		timeout := req.MinIndexTimeout
		if timeout == 0 || timeout < 0 && forwarded {
			// The default; and a read forwarded by a node that was behind waits here too (NoWait asked not
			// to wait there), as the leader may not have applied an entry a follower has.
			timeout = 2 * time.Second
		}
		err := context.DeadlineExceeded // NoWait
		if timeout > 0 {
			wctx, cancel := context.WithTimeout(ctx, timeout)
			err = n.WaitApplied(wctx, req.MinIndex)
			cancel()
		}
		if err != nil {
			if ctx.Err() != nil {
				return plan, ctx.Err()
			}
			if leader {
				return plan, fmt.Errorf("%w: applied index %d is behind min_index %d", ErrStale, n.AppliedIndex(), req.MinIndex)
			}
			return r.forward(plan, forwarded, req.StaleError, fmt.Sprintf("applied index %d is behind min_index %d", n.AppliedIndex(), req.MinIndex))
		}
	}
	return plan, nil
}

// replicationLag tells whether n has applied less than it knows committed and, if so, how long the last entry
// it applied took to get there: its apply time minus the leader's append time. A node that is caught up, or
// cannot tell (nothing applied since it started), is not behind.
func replicationLag(n Node) (lag time.Duration, behind bool) {
	if n.AppliedIndex() >= n.CommitIndex() {
		return 0, false
	}
	appendedAt, appliedAt := n.ApplyTimes()
	if appendedAt.IsZero() || appliedAt.IsZero() {
		return 0, false
	}
	return appliedAt.Sub(appendedAt), true
}

func (r *Router) forward(plan Plan, forwarded, staleError bool, why string) (Plan, error) {
	if staleError {
		return plan, fmt.Errorf("%w: %s", ErrStale, why)
	}
	if forwarded {
		return plan, fmt.Errorf("%w: %s, and the read was already forwarded once", ErrStale, why)
	}
	plan.Forward = true
	r.stats.forwarded.Add(1)
	return plan, nil
}
