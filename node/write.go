package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/fsm"
	"github.com/rowboatdb/rowboat/logical"
)

// errDeposed is the cause with which losing leadership interrupts the statements being executed.
var errDeposed = errors.New("leadership lost")

// WriteResult is the outcome of one write request: a result per statement and the position of the log entry
// that carries the request's changes (the client's bookmark).
type WriteResult struct {
	Results []logical.Result
	Index   uint64
	Term    uint64
}

type writeOp struct {
	ctx  context.Context
	req  logical.Request
	done chan writeDone
	// state is opQueued until the writer takes the op (opExecuting) or its caller gives up on it first
	// (opAbandoned), and opProposed once its entry is handed to raft: only then is its outcome unknown to a
	// caller that stops waiting.
	state atomic.Int32
}

const (
	opQueued int32 = iota
	opExecuting
	opProposed
	opAbandoned
)

// outcomeGrace is how long a caller whose context ended waits for the writer's answer about an op it is
// executing: every caller of a batch having given up interrupts its statements, and the answer is then
// "nothing applied", not "may still be applied".
const outcomeGrace = 250 * time.Millisecond

// errAbandoned is the cause with which the statements of a batch every caller has given up on are interrupted.
var errAbandoned = errors.New("every request of the batch gave up")

type writeDone struct {
	res WriteResult
	err error
}

// Execute runs a write request through the group-commit pipeline: it is queued, executed with the other
// queued requests in one SQLite transaction (a savepoint each), proposed to Raft as one log entry, and
// answered once that entry is committed and applied here. Only the leader executes writes: elsewhere it
// returns ErrNotLeader or ErrNoLeader. ErrLeadershipLost means the outcome is unknown; ctx ending while the
// entry is in flight returns an error wrapping ErrTimeout, and the write may still apply.
func (n *Node) Execute(ctx context.Context, req logical.Request) (WriteResult, error) {
	if err := n.exclusive.RLock(ctx); err != nil {
		return WriteResult{}, fmt.Errorf("%w: a load of the whole database was under way; the write was not executed", ErrTimeout)
	}
	defer n.exclusive.RUnlock()
	return n.execute(ctx, req)
}

// execute is Execute without taking n.exclusive.
func (n *Node) execute(ctx context.Context, req logical.Request) (WriteResult, error) {
	if !n.IsLeader() {
		return WriteResult{}, n.notLeaderErr()
	}
	if ctx.Err() != nil {
		return WriteResult{}, fmt.Errorf("%w: before the write was queued", ErrTimeout)
	}
	op := &writeOp{ctx: ctx, req: req, done: make(chan writeDone, 1)}
	select {
	case n.queue <- op:
	case <-ctx.Done():
		return WriteResult{}, fmt.Errorf("%w: the write queue stayed full", ErrTimeout)
	case <-n.stop:
		return WriteResult{}, ErrShuttingDown
	}
	select {
	case d := <-op.done:
		return d.res, d.err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return WriteResult{}, fmt.Errorf("%w: before the write was executed; nothing was applied", ErrTimeout)
		}
		if op.state.Load() == opExecuting {
			grace := time.NewTimer(outcomeGrace)
			defer grace.Stop()
			select {
			case d := <-op.done:
				return d.res, d.err
			case <-grace.C:
			}
		}
		return WriteResult{}, fmt.Errorf("%w: the write may still be applied", ErrTimeout)
	case <-n.writerDone:
		// The writer has stopped: it answered every op it took, so an op without an answer was never taken
		// (it was queued after the writer's last look at the queue).
		select {
		case d := <-op.done:
			return d.res, d.err
		default:
			return WriteResult{}, fmt.Errorf("%w: the write was not executed", ErrShuttingDown)
		}
	}
}

func (n *Node) notLeaderErr() error {
	if id, _ := n.Leader(); id == "" || id == n.cfg.ID {
		return n.NoLeader()
	}
	return ErrNotLeader
}

// NoLeader is ErrNoLeader, saying so when this node was removed from the cluster: it will know no leader
// again, and a client should send its requests to a member.
func (n *Node) NoLeader() error {
	if n.raft.State() != raft.Leader && n.Removed() {
		return fmt.Errorf("%w: this node was removed from the cluster; send requests to a member (GET /nodes on one lists them)", ErrNoLeader)
	}
	return ErrNoLeader
}

// writer is the single goroutine that executes writes. It never executes a batch before the previous one is
// applied locally, so every execution sees every committed write.
func (n *Node) writer() {
	defer n.wg.Done()
	defer close(n.writerDone)
	batch := make([]*writeOp, 0, n.cfg.MaxBatch)
	avg := 0.0 // moving average of batch sizes: roughly how many clients are writing
	linger := time.NewTimer(0)
	<-linger.C
	for {
		batch = batch[:0]
		select {
		case op := <-n.queue:
			batch = append(batch, op)
		case <-n.stop:
			n.drain()
			return
		}
	fill:
		for len(batch) < n.cfg.MaxBatch {
			select {
			case op := <-n.queue:
				batch = append(batch, op)
			default:
				break fill
			}
		}
		// With several clients writing, the ones answered by the previous batch are sending their next request
		// now: wait a moment for them. One bigger batch costs far less than several small ones (an fsync and a
		// SQLite transaction on every node per batch), and on a busy machine that is what bounds throughput. A
		// lone client never waits.
		target := min(int(2*avg+0.5), n.cfg.MaxBatch)
		if avg >= 1.5 && len(batch) < target {
			linger.Reset(lingerTime)
		wait:
			for len(batch) < target {
				select {
				case op := <-n.queue:
					batch = append(batch, op)
				case <-linger.C:
					break wait
				}
			}
			if !linger.Stop() {
				select {
				case <-linger.C:
				default:
				}
			}
		}
		avg = 0.8*avg + 0.2*float64(len(batch))
		n.busy.Lock()
		n.commit(batch)
		n.busy.Unlock()
	}
}

// lingerTime bounds how long the writer waits for the rest of a batch.
const lingerTime = time.Millisecond

func (n *Node) drain() {
	for {
		select {
		case op := <-n.queue:
			op.done <- writeDone{err: ErrShuttingDown}
		default:
			return
		}
	}
}

// commit executes, proposes and answers one batch.
func (n *Node) commit(batch []*writeOp) {
	live := batch[:0]
	for _, op := range batch {
		if op.ctx.Err() != nil || !op.state.CompareAndSwap(opQueued, opExecuting) {
			op.done <- writeDone{err: fmt.Errorf("%w: before it was executed; nothing was applied", ErrTimeout)}
			continue
		}
		live = append(live, op)
	}
	if len(live) == 0 {
		return
	}
	fail := func(err error) {
		for _, op := range live {
			op.done <- writeDone{err: err}
		}
	}
	// The term this node leads in, and has applied every earlier leader's writes in. The entry is fenced by it:
	// if leadership changes while the statements run, they may have seen a state without writes another leader
	// committed meanwhile, and every node skips the entry (fsm.ErrStaleEntry) even if this node leads again.
	term := n.readyTerm.Load()
	if !n.IsLeader() {
		fail(n.notLeaderErr())
		return
	}
	reqs := make([]logical.Request, len(live))
	for i, op := range live {
		reqs[i] = op.req
	}
	// A statement that runs away (a recursive query without end) must not hold the single writer forever.
	// The bound is the apply timeout, or a longer deadline a request brought (a large load, ?timeout=5m).
	deadline := time.Now().Add(n.cfg.ApplyTimeout)
	for _, op := range live {
		if dl, ok := op.ctx.Deadline(); ok && dl.After(deadline) {
			deadline = dl
		}
	}
	ctx, cancel := n.stopping(context.Background())
	ctx, cancelTimeout := context.WithDeadline(ctx, deadline)
	// Losing leadership interrupts the statements: their entry would be skipped anyway (it is fenced by term),
	// and they hold the write lock the new leader's entries need to apply here.
	ctx, deposed := context.WithCancelCause(ctx)
	n.executing.Store(&deposed)
	// Once every caller of the batch has given up (its timeout passed, or its client went away), nobody waits
	// for the statements: interrupt them, so that a runaway one neither holds the writer until the batch's
	// deadline nor leaves its caller with an unknown outcome.
	var waiting atomic.Int32
	waiting.Store(int32(len(live)))
	stops := make([]func() bool, len(live))
	for i, op := range live {
		stops[i] = context.AfterFunc(op.ctx, func() {
			if waiting.Add(-1) == 0 {
				deposed(errAbandoned)
			}
		})
	}
	results, payload, err := n.fsm.Execute(ctx, term, reqs)
	for _, stop := range stops {
		stop()
	}
	n.executing.Store(nil)
	cause := context.Cause(ctx)
	if err == nil && (errors.Is(cause, errDeposed) || errors.Is(cause, errAbandoned)) {
		// Interrupted statements may have failed one by one, as a SELECT does, and not the batch: its entry
		// would be skipped (deposed) or answers nobody (abandoned), so it is not proposed.
		err = cause
	}
	deposed(nil)
	cancelTimeout()
	cancel()
	if err != nil {
		switch {
		case errors.Is(cause, errDeposed):
			err = fmt.Errorf("%w: leadership was lost while the statements ran; they were interrupted and nothing was applied", ErrNotLeader)
		case errors.Is(cause, errAbandoned):
			err = fmt.Errorf("%w: the request's timeout passed while its statements ran; they were interrupted and nothing was applied", ErrTimeout)
		case errors.Is(err, context.DeadlineExceeded):
			err = fmt.Errorf("%w: the statements ran past their deadline (the apply timeout is %s; ?timeout= allows longer) and were interrupted; nothing was applied", ErrTimeout, n.cfg.ApplyTimeout)
		case errors.Is(err, context.Canceled):
			err = ErrShuttingDown
		}
		if errors.Is(err, ErrTimeout) {
			n.log.Warn("execute batch", "err", err, "requests", len(live))
		} else {
			n.log.Error("execute batch", "err", err, "requests", len(live))
		}
		fail(err)
		return
	}
	if n.raft.CurrentTerm() != term || !n.IsLeader() {
		fail(fmt.Errorf("%w: leadership changed while the statements ran; nothing was applied", ErrNotLeader))
		return
	}
	for _, op := range live {
		op.state.Store(opProposed)
	}
	start := time.Now()
	f := n.raft.Apply(payload, n.cfg.ApplyTimeout)
	if err := n.await(nil, f); err != nil {
		if errors.Is(err, ErrShuttingDown) {
			err = fmt.Errorf("%w: %w", ErrLeadershipLost, err) // proposed: it may still be committed
		}
		fail(translateWrite(err))
		return
	}
	if err, _ := f.Response().(error); errors.Is(err, fsm.ErrStaleEntry) {
		fail(fmt.Errorf("%w: %w", ErrNotLeader, err))
		return
	}
	// raft.Apply's future completes once the FSM applied the entry on this node. It was logged in term (the
	// FSM skips it otherwise), so (term, idx) is the entry's position.
	idx := f.Index()
	if d := time.Since(start); d > time.Second {
		n.log.Warn("slow commit", "index", idx, "took", d)
	}
	for i, op := range live {
		op.done <- writeDone{res: WriteResult{Results: results[i], Index: idx, Term: term}}
	}
}
