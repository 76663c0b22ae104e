// Package rounds shares one round of work among the callers that want it at about the same time, where a
// caller may only use a round that started after its call: a read that must be confirmed by a quorum
// contacted after the read began, for example.
package rounds

import (
	"context"
	"sync"
	"time"
)

// Group runs fn in rounds. A caller joins the next round that has not started yet, and that round serves
// every caller that joined it. At most one round runs at a time, so while one runs the next one gathers
// callers. The zero Group is ready to use.
type Group[T any] struct {
	// Timeout bounds one round (the context fn gets); 0 means 5 s.
	Timeout time.Duration

	mu      sync.Mutex
	pending *round[T] // the next round, gathering callers; not started yet
	running bool
}

type round[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// Do joins the next round of fn and waits for its result, or for ctx to end. Every caller of one Group should
// pass the same fn: the round runs the fn of the caller that started it.
func (g *Group[T]) Do(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := expired(ctx); err != nil { // a caller that has given up starts no round
		return zero, err
	}
	g.mu.Lock()
	if g.pending == nil {
		g.pending = &round[T]{done: make(chan struct{})}
	}
	rd := g.pending
	if !g.running {
		g.running = true
		g.pending = nil
		go g.run(rd, fn)
	}
	g.mu.Unlock()
	select {
	case <-rd.done:
		// Both may be ready at once, and select would pick either: a caller whose deadline passed while it
		// waited gets its error, always.
		if err := expired(ctx); err != nil {
			return zero, err
		}
		return rd.val, rd.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// expired returns ctx's error, or context.DeadlineExceeded once the clock has reached its deadline even if
// the context's timer has not fired yet.
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// run runs rd and then, one after the other, the rounds that gathered callers meanwhile.
func (g *Group[T]) run(rd *round[T], fn func(context.Context) (T, error)) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	for rd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		rd.val, rd.err = fn(ctx)
		cancel()
		close(rd.done)
		g.mu.Lock()
		rd = g.pending
		g.pending = nil
		if rd == nil {
			g.running = false
		}
		g.mu.Unlock()
	}
}
