package node

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	bg := context.Background()
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(bg, 50*time.Millisecond) }
	var g gate
	if err := g.RLock(bg); err != nil {
		t.Fatal(err)
	}
	if err := g.RLock(bg); err != nil { // shared
		t.Fatal(err)
	}
	ctx, cancel := short()
	if err := g.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) { // readers hold it
		t.Fatalf("Lock while read-held: %v", err)
	}
	cancel()
	if g.TryLock() {
		t.Fatal("TryLock while read-held succeeded")
	}
	// A Lock that gave up lets new readers in at once.
	ctx, cancel = short()
	if err := g.RLock(ctx); err != nil {
		t.Fatalf("RLock after a Lock gave up: %v", err)
	}
	cancel()
	g.RUnlock()

	// A waiting Lock keeps new readers out, and gets g once the readers are gone.
	locked := make(chan error, 1)
	go func() { locked <- g.Lock(bg) }()
	waitFor(t, "the Lock to wait", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.wanting == 1 })
	ctx, cancel = short()
	if err := g.RLock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RLock while a Lock waits: %v", err)
	}
	cancel()
	g.RUnlock()
	g.RUnlock()
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	// Held alone: readers wait, until their context ends or it is released.
	ctx, cancel = short()
	if err := g.RLock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RLock while locked: %v", err)
	}
	cancel()
	read := make(chan error, 1)
	go func() { read <- g.RLock(bg) }()
	waitFor(t, "the RLock to wait", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.waiters == 1 })
	g.Unlock()
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	g.RUnlock()
	if !g.TryLock() {
		t.Fatal("TryLock of a free gate failed")
	}
	g.Unlock()
}
