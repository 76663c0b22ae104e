package node

import (
	"context"
	"sync"
)

// gate is a read-write lock whose waits end with their context. Writes share it; a load of the whole database
// holds it alone. A waiting Lock keeps new RLocks out, so a load is not starved by a stream of writes.
type gate struct {
	mu      sync.Mutex
	readers int
	writing bool          // Lock is held
	wanting int           // Lock calls waiting
	waiters int           // goroutines waiting on changed
	changed chan struct{} // closed (and replaced) when the state changes while someone waits
}

// wait releases g.mu until the state changes or ctx ends, and takes it again. It reports ctx's error.
func (g *gate) wait(ctx context.Context) error {
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
	ch := g.changed
	g.waiters++
	g.mu.Unlock()
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	g.waiters--
	return err
}

func (g *gate) signal() {
	if g.waiters > 0 {
		close(g.changed)
		g.changed = make(chan struct{})
	}
}

// RLock takes g shared, waiting while a Lock holds it or waits for it.
func (g *gate) RLock(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.writing || g.wanting > 0 {
		if err := g.wait(ctx); err != nil {
			return err
		}
	}
	g.readers++
	return nil
}

// RUnlock releases an RLock.
func (g *gate) RUnlock() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.readers--; g.readers == 0 {
		g.signal()
	}
}

// Lock takes g alone, waiting for every RLock to be released.
func (g *gate) Lock(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.wanting++
	defer func() { g.wanting-- }()
	for g.writing || g.readers > 0 {
		if err := g.wait(ctx); err != nil {
			g.signal() // RLocks that waited for this Lock may go on
			return err
		}
	}
	g.writing = true
	return nil
}

// TryLock takes g alone if nothing holds it, without waiting.
func (g *gate) TryLock() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.writing || g.readers > 0 {
		return false
	}
	g.writing = true
	return true
}

// Unlock releases a Lock.
func (g *gate) Unlock() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writing = false
	g.signal()
}
