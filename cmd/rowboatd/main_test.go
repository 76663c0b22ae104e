package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/config"
	"github.com/rowboatdb/rowboat/node"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freshNode is a node that has not joined.
type freshNode struct{}

func (freshNode) Fresh() bool                                  { return true }
func (freshNode) Joined()                                      {}
func (freshNode) AdoptVoters([]node.JoinRequest) (bool, error) { return false, nil }
func (freshNode) AppliedIndex() uint64                         { return 0 }

// hangUpListener listens on a free port and closes every connection at once, as a Raft port does to an HTTP
// request; it stops with the test.
func hangUpListener(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// A --join address that is not a rowboat HTTP API (here: a port that hangs up, as a Raft port does to an
// HTTP request) gets a warning that says what --join takes, and a signal while joining ends join cleanly.
func TestJoin_HintsAtTheHTTPAddress(t *testing.T) {
	ln := hangUpListener(t)
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- join(ctx, log, config.Config{ID: "n2", Join: []string{ln.Addr().String()}, Voter: true}, freshNode{})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "not its Raft address") {
		if time.Now().After(deadline) {
			t.Fatalf("no hint in the log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("join after cancel: %v", err)
	}
	if n := strings.Count(logs.String(), "not its Raft address"); n != 1 {
		t.Fatalf("the hint was logged %d times, want once", n)
	}
}

// A --join that only ever reaches something that is not rowboat's HTTP API (a Raft port) gives up after a
// while (30 s; 2 s here), saying what --join takes, instead of retrying for good.
func TestJoin_GivesUpOnAnAddressThatIsNoAPI(t *testing.T) {
	defer func(d time.Duration) { notAPIPatience = d }(notAPIPatience)
	notAPIPatience = 2 * time.Second
	ln := hangUpListener(t)
	err := join(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		config.Config{ID: "n2", Join: []string{ln.Addr().String()}, Voter: true}, freshNode{})
	if err == nil || !strings.Contains(err.Error(), "not its Raft address") {
		t.Fatalf("join of a Raft port: %v, want it to give up saying what --join takes", err)
	}
}
