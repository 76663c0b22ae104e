package faultproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitTimeout bounds every poll and every read that must succeed; generous for
// a loaded 2-core machine under -race.
const waitTimeout = 5 * time.Second

// silence is how long a read must see nothing to count as "nothing arrives".
const silence = 200 * time.Millisecond

// target stands in for a peer's Raft port: it echoes what it reads and counts
// the bytes it has received.
type target struct {
	ln       net.Listener
	received atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func newTarget(tb testing.TB) *target {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	t := &target{ln: ln, conns: make(map[net.Conn]struct{})}
	t.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.mu.Lock()
			t.conns[c] = struct{}{}
			t.mu.Unlock()
			t.wg.Go(func() { t.echo(c) })
		}
	})
	tb.Cleanup(func() {
		_ = ln.Close()
		t.mu.Lock()
		for c := range t.conns {
			_ = c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
	})
	return t
}

func (t *target) addr() string { return t.ln.Addr().String() }

func (t *target) echo(c net.Conn) {
	defer func() {
		_ = c.Close()
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
	}()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		t.received.Add(int64(n))
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func newProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p, err := New(target)
	if err != nil {
		tb.Fatalf("New(%q): %v", target, err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return p
}

func dial(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func write(tb testing.TB, c net.Conn, msg string) {
	tb.Helper()
	if err := c.SetWriteDeadline(time.Now().Add(waitTimeout)); err != nil {
		tb.Fatalf("SetWriteDeadline: %v", err)
	}
	if _, err := io.WriteString(c, msg); err != nil {
		tb.Fatalf("write %q: %v", msg, err)
	}
}

// roundTrip writes msg and reads back exactly its echo.
func roundTrip(tb testing.TB, c net.Conn, msg string) {
	tb.Helper()
	write(tb, c, msg)
	if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		tb.Fatalf("SetReadDeadline: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		tb.Fatalf("read echo of %q: %v", msg, err)
	}
	if string(got) != msg {
		tb.Fatalf("echo=%q, want %q", got, msg)
	}
}

// expectSilence checks that nothing arrives on c for the silence period and
// that c stays open.
func expectSilence(tb testing.TB, c net.Conn) {
	tb.Helper()
	if err := c.SetReadDeadline(time.Now().Add(silence)); err != nil {
		tb.Fatalf("SetReadDeadline: %v", err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 {
		tb.Fatalf("read %q, want nothing", buf[:n])
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("read error %v, want a timeout (connection open, nothing arriving)", err)
	}
}

// expectClosed checks that c is closed by the far end (EOF or reset) promptly,
// with no data arriving first.
func expectClosed(tb testing.TB, c net.Conn) {
	tb.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		tb.Fatalf("SetReadDeadline: %v", err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 {
		tb.Fatalf("read %q, want the connection closed", buf[:n])
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("read error %v, want EOF or reset", err)
	}
}

// expectRefused checks that a connection to addr is reset at once: either the
// dial itself fails (the reset beat the handshake's completion) or the
// connection is closed before anything arrives.
func expectRefused(tb testing.TB, addr string) {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			tb.Fatalf("dial %s: %v, want success or a reset", addr, err)
		}
		return
	}
	defer c.Close()
	_, _ = io.WriteString(c, "lost") // may fail once the reset has arrived
	expectClosed(tb, c)
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProxy_Healthy(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr())

	if got, want := p.Target(), tg.addr(); got != want {
		t.Fatalf("Target()=%q, want %q", got, want)
	}
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr()=%q, want 127.0.0.1:port", p.Addr())
	}
	if got, want := p.Mode(), Healthy; got != want {
		t.Fatalf("Mode()=%v, want %v", got, want)
	}

	c := dial(t, p.Addr())
	roundTrip(t, c, "hello")
	big := strings.Repeat("0123456789abcdef", 16<<10) // 256 KiB: several chunks
	roundTrip(t, c, big)

	want := uint64(len("hello") + len(big))
	waitFor(t, "byte counters", func() bool {
		s := p.Stats()
		return s.BytesForward == want && s.BytesBackward == want
	})
	if s := p.Stats(); s.Accepted != 1 || s.Refused != 0 || s.Cut != 0 || s.DroppedForward != 0 || s.DroppedBackward != 0 {
		t.Fatalf("Stats()=%+v, want 1 accepted and nothing refused, cut or dropped", s)
	}
}

func TestProxy_HalfClosePassesOn(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr())
	c := dial(t, p.Addr())
	roundTrip(t, c, "bye")
	// The client's FIN reaches the target, which closes; its FIN comes back.
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	expectClosed(t, c)
}

func TestProxy_Cut(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr())
	open := dial(t, p.Addr())
	roundTrip(t, open, "before")

	p.SetMode(Mode{Cut: true})
	if got := p.Mode(); !got.Cut {
		t.Fatalf("Mode()=%v, want cut", got)
	}
	t.Run("closes open connections", func(t *testing.T) {
		expectClosed(t, open)
		if got, want := p.Stats().Cut, uint64(1); got != want {
			t.Fatalf("Stats().Cut=%d, want %d", got, want)
		}
	})
	t.Run("refuses new connections", func(t *testing.T) {
		before := tg.received.Load()
		expectRefused(t, p.Addr())
		waitFor(t, "refusal counted", func() bool { return p.Stats().Refused >= 1 })
		if got := tg.received.Load(); got != before {
			t.Fatalf("target received %d bytes, want %d", got, before)
		}
	})
	t.Run("healthy again", func(t *testing.T) {
		p.SetMode(Healthy)
		roundTrip(t, dial(t, p.Addr()), "after")
	})
}

func TestProxy_BlackHole(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr())
	open := dial(t, p.Addr())
	roundTrip(t, open, "before")
	before := tg.received.Load()

	p.SetMode(Mode{BlackHole: true})

	write(t, open, "lost")
	waitFor(t, "bytes dropped", func() bool { return p.Stats().DroppedForward == 4 })
	expectSilence(t, open)

	fresh := dial(t, p.Addr()) // accepted, not refused
	write(t, fresh, "void")
	waitFor(t, "bytes dropped", func() bool { return p.Stats().DroppedForward == 8 })
	expectSilence(t, fresh)

	if got := tg.received.Load(); got != before {
		t.Fatalf("target received %d bytes, want %d", got, before)
	}
	if s := p.Stats(); s.Refused != 0 || s.Cut != 0 {
		t.Fatalf("Stats()=%+v, want no connection refused or cut", s)
	}

	p.SetMode(Healthy)
	// Forwarding resumes on the open connections; the dropped bytes stay lost.
	roundTrip(t, open, "after")
	roundTrip(t, fresh, "again")
}

func TestProxy_BlackHoleBackward(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := newProxy(t, ln.Addr().String())
	client := dial(t, p.Addr())
	server, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { _ = server.Close() })

	p.SetMode(Mode{BlackHole: true})
	write(t, server, "lost")
	waitFor(t, "bytes dropped", func() bool { return p.Stats().DroppedBackward == 4 })
	expectSilence(t, client)

	p.SetMode(Healthy)
	write(t, server, "back")
	if err := client.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != "back" {
		t.Fatalf("read %q, want %q", got, "back")
	}
}

func TestProxy_Drop(t *testing.T) {
	t.Run("forward", func(t *testing.T) {
		tg := newTarget(t)
		p := newProxy(t, tg.addr())
		c := dial(t, p.Addr())
		roundTrip(t, c, "before")
		before := tg.received.Load()

		p.SetMode(Mode{DropForward: true})
		write(t, c, "ping")
		waitFor(t, "bytes dropped", func() bool { return p.Stats().DroppedForward == 4 })
		expectSilence(t, c)
		if got := tg.received.Load(); got != before {
			t.Fatalf("target received %d bytes, want %d", got, before)
		}

		p.SetMode(Healthy)
		roundTrip(t, c, "after")
	})
	t.Run("backward", func(t *testing.T) {
		tg := newTarget(t)
		p := newProxy(t, tg.addr())
		c := dial(t, p.Addr())
		roundTrip(t, c, "before")
		before := tg.received.Load()

		p.SetMode(Mode{DropBackward: true})
		write(t, c, "ping")
		waitFor(t, "target to receive", func() bool { return tg.received.Load() == before+4 })
		waitFor(t, "echo dropped", func() bool { return p.Stats().DroppedBackward == 4 })
		expectSilence(t, c)

		p.SetMode(Healthy)
		roundTrip(t, c, "after")
	})
}

func TestProxy_Delay(t *testing.T) {
	const delay = 100 * time.Millisecond
	tg := newTarget(t)
	p := newProxy(t, tg.addr())
	c := dial(t, p.Addr())
	roundTrip(t, c, "warm")

	// Set on an open connection: takes effect at once.
	p.SetMode(Mode{Delay: delay})

	t.Run("round trip", func(t *testing.T) {
		start := time.Now()
		roundTrip(t, c, "ping")
		// The request and its echo are each delayed.
		if got, want := time.Since(start), 2*delay; got < want {
			t.Fatalf("round trip took %v, want at least %v", got, want)
		}
	})
	t.Run("order preserved", func(t *testing.T) {
		const count = 200
		done := make(chan error, 1)
		go func() {
			for i := range count {
				if _, err := fmt.Fprintf(c, "%04d\n", i); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		if err := c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
			t.Fatalf("SetReadDeadline: %v", err)
		}
		r := bufio.NewReader(c)
		for i := range count {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
			if got, want := line, fmt.Sprintf("%04d\n", i); got != want {
				t.Fatalf("line %d=%q, want %q", i, got, want)
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("write: %v", err)
		}
	})
}

func TestProxy_CloseLeavesNoGoroutines(t *testing.T) {
	tg := newTarget(t)
	base := runtime.NumGoroutine()

	p, err := New(tg.addr())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	healthy := dial(t, p.Addr())
	roundTrip(t, healthy, "a")
	delayed := dial(t, p.Addr())
	roundTrip(t, delayed, "b")
	idle := dial(t, p.Addr())
	roundTrip(t, idle, "c")

	// Leave a chunk queued behind a long delay and one connection black-holed
	// half-way, so Close must interrupt every kind of wait.
	p.SetMode(Mode{Delay: time.Hour})
	write(t, delayed, "queued")
	waitFor(t, "chunk queued", func() bool { return p.enqueued[forward].Load() == 3+6 })
	p.SetMode(Mode{BlackHole: true})
	write(t, healthy, "dropped")
	waitFor(t, "chunk dropped", func() bool { return p.Stats().DroppedForward == 7 })

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	expectClosed(t, healthy)
	expectClosed(t, delayed)
	expectClosed(t, idle)
	if _, err := net.DialTimeout("tcp", p.Addr(), waitTimeout); err == nil {
		t.Fatalf("dial after Close succeeded, want refused")
	}
	// Close has waited for the proxy's goroutines; the target's handlers exit
	// as their connections close.
	waitFor(t, fmt.Sprintf("goroutines back to %d", base), func() bool { return runtime.NumGoroutine() <= base })
}

// TestProxy_ModeChurn switches modes while traffic flows, for the race
// detector and to check Close still returns.
func TestProxy_ModeChurn(t *testing.T) {
	tg := newTarget(t)
	p, err := New(tg.addr())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	modes := []Mode{
		Healthy,
		{Delay: time.Millisecond},
		{DropForward: true},
		{DropBackward: true},
		{BlackHole: true},
		{Cut: true},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			buf := make([]byte, 1024)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", p.Addr(), waitTimeout)
				if err != nil {
					continue
				}
				for range 20 {
					_ = c.SetDeadline(time.Now().Add(20 * time.Millisecond))
					if _, err := c.Write(bytes.Repeat([]byte("z"), len(buf))); err != nil {
						break
					}
					if _, err := c.Read(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						break
					}
				}
				_ = c.Close()
			}
		})
	}
	for i := range 200 {
		p.SetMode(modes[i%len(modes)])
		_ = p.Mode()
		_ = p.Stats()
		time.Sleep(time.Millisecond) // pacing only, not ordering
	}
	close(stop)
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s := p.Stats(); s.Accepted == 0 {
		t.Fatalf("Stats()=%+v, want some connections", s)
	}
}

func TestProxy_DialError(t *testing.T) {
	// A port that was free a moment ago: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	p := newProxy(t, addr)
	expectRefused(t, p.Addr())
	waitFor(t, "dial error counted", func() bool { return p.Stats().DialErrors == 1 })
}

func TestMode_String(t *testing.T) {
	for _, tt := range []struct {
		mode Mode
		want string
	}{
		{Healthy, "healthy"},
		{Mode{Cut: true}, "cut"},
		{Mode{BlackHole: true}, "blackhole"},
		{Mode{DropForward: true, Delay: 100 * time.Millisecond}, "drop-forward+delay=100ms"},
		{Mode{DropForward: true, DropBackward: true}, "drop-forward+drop-backward"},
	} {
		if got := tt.mode.String(); got != tt.want {
			t.Errorf("%#v.String()=%q, want %q", tt.mode, got, tt.want)
		}
	}
}

// newTestNetwork links every ordered pair of ids, all to one echo target.
func newTestNetwork(tb testing.TB, ids ...string) *Network {
	tb.Helper()
	tg := newTarget(tb)
	n := NewNetwork()
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	for _, from := range ids {
		for _, to := range ids {
			if from == to {
				continue
			}
			if _, err := n.Link(from, to, tg.addr()); err != nil {
				tb.Fatalf("Link(%s, %s): %v", from, to, err)
			}
		}
	}
	return n
}

// checkModes compares the mode of every link with want, keyed "from->to".
func checkModes(tb testing.TB, n *Network, want map[string]Mode) {
	tb.Helper()
	for link, m := range want {
		from, to, _ := strings.Cut(link, "->")
		p := n.Get(from, to)
		if p == nil {
			tb.Fatalf("Get(%s, %s)=nil", from, to)
		}
		if got := p.Mode(); got != m {
			tb.Errorf("link %s mode=%v, want %v", link, got, m)
		}
	}
}

func TestNetwork_Modes(t *testing.T) {
	n := newTestNetwork(t, "n1", "n2", "n3")
	cut := Mode{Cut: true}
	slow := Mode{Delay: 50 * time.Millisecond}

	t.Run("isolate", func(t *testing.T) {
		n.Isolate("n1")
		checkModes(t, n, map[string]Mode{
			"n1->n2": cut, "n1->n3": cut, "n2->n1": cut, "n3->n1": cut,
			"n2->n3": Healthy, "n3->n2": Healthy,
		})
	})
	t.Run("heal all", func(t *testing.T) {
		n.SetLink("n2", "n3", slow)
		n.HealAll()
		checkModes(t, n, map[string]Mode{
			"n1->n2": Healthy, "n1->n3": Healthy, "n2->n1": Healthy, "n3->n1": Healthy,
			"n2->n3": Healthy, "n3->n2": Healthy,
		})
	})
	t.Run("partition", func(t *testing.T) {
		n.SetLink("n2", "n3", slow)
		n.Partition([]string{"n1"}, []string{"n2", "n3"})
		checkModes(t, n, map[string]Mode{
			"n1->n2": cut, "n1->n3": cut, "n2->n1": cut, "n3->n1": cut,
			"n2->n3": Healthy, "n3->n2": Healthy,
		})
	})
	t.Run("partition leaves unlisted nodes alone in a group", func(t *testing.T) {
		n.Partition([]string{"n1", "n2"})
		checkModes(t, n, map[string]Mode{
			"n1->n2": Healthy, "n2->n1": Healthy,
			"n1->n3": cut, "n3->n1": cut, "n2->n3": cut, "n3->n2": cut,
		})
	})
	t.Run("set link", func(t *testing.T) {
		n.HealAll()
		n.SetLink("n1", "n2", Mode{DropForward: true})
		n.SetLink("n1", "n9", cut) // no such link: nothing happens
		checkModes(t, n, map[string]Mode{
			"n1->n2": {DropForward: true}, "n2->n1": Healthy,
		})
		if p := n.Get("n1", "n9"); p != nil {
			t.Fatalf("Get(n1, n9)=%v, want nil", p)
		}
	})
}

func TestNetwork_Link(t *testing.T) {
	tg := newTarget(t)
	n := NewNetwork()
	p, err := n.Link("a", "b", tg.addr())
	if err != nil {
		t.Fatalf("Link: %v", err)
	}
	again, err := n.Link("a", "b", tg.addr())
	if err != nil {
		t.Fatalf("Link again: %v", err)
	}
	if again != p {
		t.Fatalf("Link again returned a new proxy, want the existing one")
	}
	if _, err := n.Link("a", "b", "127.0.0.1:1"); err == nil {
		t.Fatalf("Link with another target succeeded, want an error")
	}
	roundTrip(t, dial(t, p.Addr()), "through the link")

	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := n.Link("a", "c", tg.addr()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Link after Close: %v, want ErrClosed", err)
	}
}

func TestNetwork_WriteDialMap(t *testing.T) {
	n := NewNetwork()
	t.Cleanup(func() { _ = n.Close() })
	// Targets are only dialed when a client connects, which never happens here.
	link := func(from, to string) *Proxy {
		t.Helper()
		p, err := n.Link(from, to, to+".raft:7000")
		if err != nil {
			t.Fatalf("Link(%s, %s): %v", from, to, err)
		}
		return p
	}
	p13, p12 := link("n1", "n3"), link("n1", "n2")
	link("n2", "n1")

	dir := t.TempDir()
	path := filepath.Join(dir, "dialmap")
	if err := n.WriteDialMap(path, "n1"); err != nil {
		t.Fatalf("WriteDialMap: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read dial map: %v", err)
	}
	want := "n2.raft:7000=" + p12.Addr() + "\n" + "n3.raft:7000=" + p13.Addr() + "\n"
	if string(got) != want {
		t.Fatalf("dial map=%q, want %q", got, want)
	}

	// Rewriting replaces the file, and leaves no temporary file behind.
	if err := n.WriteDialMap(path, "n3"); err != nil {
		t.Fatalf("WriteDialMap(n3): %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || len(got) != 0 {
		t.Fatalf("dial map for n3=%q, %v; want empty", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries, want only the dial map", len(entries))
	}
	if err := n.WriteDialMap(filepath.Join(dir, "missing", "dialmap"), "n1"); err == nil {
		t.Fatalf("WriteDialMap into a missing directory succeeded, want an error")
	}
}
