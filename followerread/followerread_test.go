package followerread

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeNode struct {
	leader, voter   bool
	lease           bool
	applied         uint64
	readIndex       uint64
	readIndexCalls  int
	strongCalls     int
	lastContact     time.Time
	catchUpOnWaitTo uint64 // WaitApplied succeeds when the target is <= this
	commit          uint64
	appendedAt      time.Time // of the last entry applied
	appliedAt       time.Time
}

func (f *fakeNode) CommitIndex() uint64                { return f.commit }
func (f *fakeNode) ApplyTimes() (time.Time, time.Time) { return f.appendedAt, f.appliedAt }

func (f *fakeNode) IsLeader() bool         { return f.leader }
func (f *fakeNode) IsVoter() bool          { return f.voter }
func (f *fakeNode) HasLease() bool         { return f.leader && f.lease }
func (f *fakeNode) AppliedIndex() uint64   { return f.applied }
func (f *fakeNode) LastContact() time.Time { return f.lastContact }
func (f *fakeNode) ReadIndex(context.Context) (uint64, error) {
	f.readIndexCalls++
	return f.readIndex, nil
}
func (f *fakeNode) StrongIndex(context.Context) (uint64, error) {
	f.strongCalls++
	return f.readIndex, nil
}
func (f *fakeNode) WaitApplied(ctx context.Context, index uint64) error {
	if index <= f.catchUpOnWaitTo {
		if f.applied < index {
			f.applied = index
		}
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]Level{"": Linearizable, "none": None, "weak": Weak, "linearizable": Linearizable, "strong": Strong, "auto": Auto} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"bogus", "NONE ", "eventual"} {
		if _, err := ParseLevel(in); !errors.Is(err, ErrBadLevel) {
			t.Errorf("ParseLevel(%q) err = %v, want ErrBadLevel", in, err)
		}
	}
}

func TestRouter_Prepare(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		node      fakeNode
		req       Request
		forwarded bool
		wantFwd   bool
		wantLevel Level
		wantErr   error
		wantRI    int    // read-index rounds
		wantAt    uint64 // the applied index the read must have waited for (0: not checked)
	}{
		{name: "none on follower is local", node: fakeNode{voter: true, applied: 5}, req: Request{Level: None}, wantLevel: None},
		{name: "weak on follower forwards", node: fakeNode{voter: true}, req: Request{Level: Weak}, wantFwd: true, wantLevel: Weak},
		{name: "linearizable on follower forwards", node: fakeNode{voter: true}, req: Request{Level: Linearizable}, wantFwd: true, wantLevel: Linearizable},
		{name: "forwarded twice is refused", node: fakeNode{voter: true}, req: Request{Level: Weak}, forwarded: true, wantErr: ErrStale},
		{name: "linearizable on leader waits for the read index", node: fakeNode{leader: true, voter: true, applied: 3, readIndex: 7, catchUpOnWaitTo: 7},
			req: Request{Level: Linearizable}, wantLevel: Linearizable, wantRI: 1},
		{name: "weak on a leader with a lease is local", node: fakeNode{leader: true, voter: true, lease: true}, req: Request{Level: Weak}, wantLevel: Weak},
		{name: "weak on a leader without a lease confirms first", node: fakeNode{leader: true, voter: true, readIndex: 1, catchUpOnWaitTo: 1},
			req: Request{Level: Weak}, wantLevel: Weak, wantRI: 1},
		// A follower may already have applied what the leader has committed: a weak read on the leader, with a
		// lease or without, must not show an older state than that.
		{name: "weak on a leader with a lease waits for its commit index", node: fakeNode{leader: true, voter: true, lease: true,
			applied: 9, commit: 10, catchUpOnWaitTo: 10}, req: Request{Level: Weak}, wantLevel: Weak, wantAt: 10},
		{name: "weak on a leader without a lease waits for its read index", node: fakeNode{leader: true, voter: true,
			applied: 3, commit: 3, readIndex: 7, catchUpOnWaitTo: 7}, req: Request{Level: Weak}, wantLevel: Weak, wantRI: 1, wantAt: 7},
		{name: "auto on a replica is none", node: fakeNode{applied: 1}, req: Request{Level: Auto}, wantLevel: None},
		{name: "auto on a voter follower is weak", node: fakeNode{voter: true}, req: Request{Level: Auto}, wantFwd: true, wantLevel: Weak},
		{name: "min_index already reached", node: fakeNode{voter: true, applied: 10}, req: Request{Level: None, MinIndex: 10}, wantLevel: None},
		{name: "min_index reached by waiting", node: fakeNode{voter: true, applied: 3, catchUpOnWaitTo: 10},
			req: Request{Level: None, MinIndex: 10}, wantLevel: None},
		{name: "min_index not reached forwards", node: fakeNode{voter: true, applied: 3},
			req: Request{Level: None, MinIndex: 10, MinIndexTimeout: time.Millisecond}, wantFwd: true, wantLevel: None},
		{name: "min_index with no wait forwards at once", node: fakeNode{voter: true, applied: 3, catchUpOnWaitTo: 10},
			req: Request{Level: None, MinIndex: 10, MinIndexTimeout: NoWait}, wantFwd: true, wantLevel: None},
		{name: "min_index with no wait, forwarded to the leader, waits there", node: fakeNode{leader: true, voter: true, applied: 3, commit: 10, catchUpOnWaitTo: 10},
			req: Request{Level: None, MinIndex: 10, MinIndexTimeout: NoWait}, forwarded: true, wantLevel: None},
		{name: "min_index not reached with stale=error", node: fakeNode{voter: true, applied: 3},
			req: Request{Level: None, MinIndex: 10, MinIndexTimeout: time.Millisecond, StaleError: true}, wantErr: ErrStale},
		{name: "min_index beyond the leader", node: fakeNode{leader: true, voter: true, applied: 3},
			req: Request{Level: None, MinIndex: 10, MinIndexTimeout: time.Millisecond}, wantErr: ErrStale},
		{name: "fresh enough", node: fakeNode{voter: true, lastContact: now.Add(-time.Second)},
			req: Request{Level: None, Freshness: 2 * time.Second}, wantLevel: None},
		{name: "not fresh forwards", node: fakeNode{voter: true, lastContact: now.Add(-3 * time.Second)},
			req: Request{Level: None, Freshness: 2 * time.Second}, wantFwd: true, wantLevel: None},
		{name: "never heard from a leader", node: fakeNode{voter: true},
			req: Request{Level: None, Freshness: time.Hour, StaleError: true}, wantErr: ErrStale},
		// freshness_strict: behind what it knows committed, and the last apply came long after the append.
		{name: "strict: caught up", node: fakeNode{voter: true, lastContact: now, applied: 9, commit: 9,
			appendedAt: now.Add(-time.Hour), appliedAt: now},
			req: Request{Level: None, Freshness: time.Second, FreshnessStrict: true}, wantLevel: None},
		{name: "strict: behind, but by less than freshness", node: fakeNode{voter: true, lastContact: now, applied: 8, commit: 9,
			appendedAt: now.Add(-1500 * time.Millisecond), appliedAt: now.Add(-time.Second)},
			req: Request{Level: None, Freshness: time.Second, FreshnessStrict: true}, wantLevel: None},
		{name: "strict: behind by more than freshness", node: fakeNode{voter: true, lastContact: now, applied: 8, commit: 9,
			appendedAt: now.Add(-3 * time.Second), appliedAt: now.Add(-time.Second)},
			req: Request{Level: None, Freshness: time.Second, FreshnessStrict: true, StaleError: true}, wantErr: ErrStale},
		{name: "strict: behind by more than freshness forwards", node: fakeNode{voter: true, lastContact: now, applied: 8, commit: 9,
			appendedAt: now.Add(-3 * time.Second), appliedAt: now.Add(-time.Second)},
			req: Request{Level: None, Freshness: time.Second, FreshnessStrict: true}, wantFwd: true, wantLevel: None},
		{name: "not strict: the same lag is served", node: fakeNode{voter: true, lastContact: now, applied: 8, commit: 9,
			appendedAt: now.Add(-3 * time.Second), appliedAt: now.Add(-time.Second)},
			req: Request{Level: None, Freshness: time.Second}, wantLevel: None},
		{name: "strict: behind, nothing applied since start", node: fakeNode{voter: true, lastContact: now, applied: 8, commit: 9},
			req: Request{Level: None, Freshness: time.Second, FreshnessStrict: true}, wantLevel: None},
		{name: "strict on the leader: always fresh", node: fakeNode{leader: true, voter: true, applied: 8, commit: 9,
			appendedAt: now.Add(-3 * time.Second), appliedAt: now.Add(-time.Second)},
			req: Request{Level: None, Freshness: time.Second, FreshnessStrict: true}, wantLevel: None},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.node
			r := Router{Node: &n, Now: func() time.Time { return now }}
			plan, err := r.Prepare(context.Background(), tt.req, tt.forwarded)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if plan.Forward != tt.wantFwd || plan.Level != tt.wantLevel {
				t.Fatalf("plan = %+v, want forward=%v level=%s", plan, tt.wantFwd, tt.wantLevel)
			}
			if n.readIndexCalls != tt.wantRI {
				t.Fatalf("read-index rounds = %d, want %d", n.readIndexCalls, tt.wantRI)
			}
			if n.applied < tt.wantAt {
				t.Fatalf("served at applied index %d, below %d", n.applied, tt.wantAt)
			}
			if !plan.Forward && tt.req.MinIndex > 0 && n.applied < tt.req.MinIndex {
				t.Fatalf("served locally at %d below min_index %d", n.applied, tt.req.MinIndex)
			}
		})
	}
}

func TestRouter_Stats(t *testing.T) {
	var calls atomic.Int64
	gate := make(chan struct{})
	n := &fakeNode{voter: true, applied: 100}
	r := Router{Node: n, LeaderReadIndex: func(context.Context) (uint64, error) {
		calls.Add(1)
		<-gate
		return 50, nil
	}}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 { // concurrent linearizable reads share rounds
		wg.Go(func() {
			if plan, err := r.Prepare(ctx, Request{Level: Linearizable}, false); err != nil || plan.Forward {
				t.Errorf("linearizable read: plan %+v, err %v", plan, err)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); r.Stats().ReadIndexReads != 8; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 8 reads arrived", r.Stats().ReadIndexReads)
		}
	}
	close(gate)
	wg.Wait()
	if _, err := r.Prepare(ctx, Request{Level: Weak}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Prepare(ctx, Request{Level: None, MinIndex: 101, MinIndexTimeout: time.Millisecond}, false); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if st.ReadIndexReads != 8 || st.ReadIndexRounds != uint64(calls.Load()) || st.ReadIndexRounds < 1 || st.ReadIndexRounds > 2 {
		// One round at a time: the first read's round is held by the gate while the other seven gather in the next.
		t.Fatalf("stats %+v after 8 linearizable reads in %d rounds, want at most 2", st, calls.Load())
	}
	if st.ForwardedReads != 2 {
		t.Fatalf("forwarded_reads = %d, want 2 (a weak read and one behind its min_index)", st.ForwardedReads)
	}
}

// A min_index beyond the leader's commit index cannot be reached by waiting (a bookmark of another cluster,
// or of this one before a restore): the leader refuses it at once, saying so.
func TestRouter_MinIndexBeyondTheLog(t *testing.T) {
	n := fakeNode{leader: true, voter: true, applied: 3, commit: 12}
	r := Router{Node: &n}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := r.Prepare(ctx, Request{Level: None, MinIndex: 20, MinIndexTimeout: time.Hour}, false)
	if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "beyond what this leader knows committed") {
		t.Fatalf("min_index beyond the leader's commit index: %v, want ErrStale at once", err)
	}
}
