// Package faultproxy owns the userspace TCP proxies that the fault harness puts
// on every directed Raft link between rowboatd processes, so that tests can cut,
// one-way cut, delay and black-hole a link while real processes run (tc netem is
// not available on the CI machine). A Proxy forwards one link; a Network keeps
// one Proxy per (from, to) pair and writes the dial maps rowboatd reads.
//
// It uses only the standard library and must not import any rowboat package: it
// knows bytes and connections, not Raft.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// chunkSize is the read buffer of each direction of each connection; the
	// mode is consulted once per chunk.
	chunkSize = 32 << 10
	// queueLen bounds the chunks in flight per direction (at most
	// queueLen*chunkSize bytes). A full queue stops reading from the source, so
	// a delayed link applies back-pressure the way a TCP window would.
	queueLen = 64
	// dialTimeout bounds the dial to the target for each accepted connection.
	dialTimeout = 5 * time.Second
)

// Mode is the fault a Proxy applies. The zero Mode (Healthy) forwards
// everything at once. Cut dominates every other field; BlackHole dominates the
// Drop fields. Modes only ever lose or delay bytes: a proxy never invents,
// reorders or duplicates them.
type Mode struct {
	// Cut refuses new connections (accepts and resets them at once) and resets
	// every open one, on both sides. Like a dead link answering with RST.
	Cut bool
	// BlackHole accepts connections but forwards nothing in either direction,
	// and never closes a connection itself; open connections stop forwarding
	// too. Bytes are dropped, not buffered for later. Closes initiated by either
	// peer are still passed on, so that no connection outlives both its peers.
	BlackHole bool
	// DropForward discards the bytes going client->target, DropBackward those
	// going target->client. Connections stay open.
	DropForward, DropBackward bool
	// Delay delivers every chunk this much later than it was read, in each
	// direction independently, order preserved. Reading goes on meanwhile, so a
	// delayed link keeps its throughput. Chunks already in flight keep the delay
	// they were read with.
	Delay time.Duration
}

// Healthy is the Mode that forwards everything at once.
var Healthy = Mode{}

// String names the mode for logs and test output: "healthy", "cut",
// "blackhole", or the active faults joined by "+", such as
// "drop-forward+delay=100ms".
func (m Mode) String() string {
	var parts []string
	if m.Cut {
		parts = append(parts, "cut")
	}
	if m.BlackHole {
		parts = append(parts, "blackhole")
	}
	if m.DropForward {
		parts = append(parts, "drop-forward")
	}
	if m.DropBackward {
		parts = append(parts, "drop-backward")
	}
	if m.Delay > 0 {
		parts = append(parts, "delay="+m.Delay.String())
	}
	if len(parts) == 0 {
		return "healthy"
	}
	return strings.Join(parts, "+")
}

// direction is the way bytes flow through a connection.
type direction int

const (
	forward  direction = iota // client -> target
	backward                  // target -> client
)

// drops reports whether the mode discards bytes flowing in dir.
func (m Mode) drops(dir direction) bool {
	switch {
	case m.Cut, m.BlackHole:
		return true
	case dir == forward:
		return m.DropForward
	default:
		return m.DropBackward
	}
}

// Stats counts what a Proxy has done since New.
type Stats struct {
	// Accepted counts connections accepted by the listener, refused ones
	// included.
	Accepted uint64
	// Refused counts connections reset at once because the mode was Cut (or
	// the proxy was closing).
	Refused uint64
	// Cut counts open connections reset by switching to a Cut mode.
	Cut uint64
	// DialErrors counts accepted connections reset because the target could
	// not be dialed.
	DialErrors uint64
	// BytesForward and BytesBackward count bytes delivered client->target and
	// target->client.
	BytesForward, BytesBackward uint64
	// DroppedForward and DroppedBackward count bytes discarded by the mode.
	DroppedForward, DroppedBackward uint64
}

// Proxy forwards TCP connections from its listen address to a target address,
// applying a fault Mode. All methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	mode   atomic.Pointer[Mode] // read once per chunk; written under mu

	// ctx is cancelled by Close, aborting dials to the target in progress.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[*pconn]struct{}

	wg sync.WaitGroup // every goroutine the proxy starts

	accepted, refused, cut, dialErrors atomic.Uint64
	delivered, dropped                 [2]atomic.Uint64 // indexed by direction
	enqueued                           [2]atomic.Uint64 // bytes handed to the writer (tests wait on it)
}

// New returns a Proxy listening on 127.0.0.1 at a free port, in Healthy mode,
// already accepting connections and forwarding them to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln:     ln,
		target: target,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[*pconn]struct{}),
	}
	p.mode.Store(&Mode{})
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr returns the address clients dial, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address connections are forwarded to.
func (p *Proxy) Target() string { return p.target }

// Mode returns the mode in force.
func (p *Proxy) Mode() Mode { return *p.mode.Load() }

// SetMode switches the proxy to m at once. Open connections see it from their
// next chunk on (chunks queued by a Delay are checked again on delivery); a Cut
// mode also resets every open connection before SetMode returns. Switching back
// to a forwarding mode resumes forwarding on the connections still open; bytes
// dropped meanwhile are lost.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	p.mode.Store(&m)
	var victims []*pconn
	if m.Cut {
		for c := range p.conns {
			victims = append(victims, c)
		}
		clear(p.conns)
	}
	p.mu.Unlock()
	for _, c := range victims {
		if c.teardown(true) {
			p.cut.Add(1)
		}
	}
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted:        p.accepted.Load(),
		Refused:         p.refused.Load(),
		Cut:             p.cut.Load(),
		DialErrors:      p.dialErrors.Load(),
		BytesForward:    p.delivered[forward].Load(),
		BytesBackward:   p.delivered[backward].Load(),
		DroppedForward:  p.dropped[forward].Load(),
		DroppedBackward: p.dropped[backward].Load(),
	}
}

// Close stops listening, closes every connection on both sides and returns
// once every goroutine of the proxy has exited. Later calls return nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	victims := make([]*pconn, 0, len(p.conns))
	for c := range p.conns {
		victims = append(victims, c)
	}
	clear(p.conns)
	p.mu.Unlock()

	p.cancel()
	err := p.ln.Close()
	for _, c := range victims {
		c.teardown(false)
	}
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("close listener: %w", err)
	}
	return nil
}

func (p *Proxy) acceptLoop() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
				return
			}
			// A transient failure such as EMFILE: back off rather than spin.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		if p.Mode().Cut {
			p.refused.Add(1)
			reset(client)
			continue
		}
		// Dial in its own goroutine so a slow target cannot stall accepting.
		p.wg.Go(func() { p.serve(client) })
	}
}

// serve dials the target for an accepted client and starts forwarding.
func (p *Proxy) serve(client net.Conn) {
	d := net.Dialer{Timeout: dialTimeout}
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		if p.ctx.Err() != nil {
			p.refused.Add(1) // Close aborted the dial
		} else {
			p.dialErrors.Add(1)
		}
		reset(client)
		return
	}
	c := &pconn{p: p, client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	// Checked under mu so that a concurrent SetMode(Cut) or Close either sees
	// this connection in conns or this check sees its mode.
	if p.closed || p.Mode().Cut {
		p.mu.Unlock()
		p.refused.Add(1)
		reset(client)
		reset(server)
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	c.open.Store(2)
	fq := make(chan chunk, queueLen)
	bq := make(chan chunk, queueLen)
	p.wg.Go(func() { c.read(forward, client, fq) })
	p.wg.Go(func() { c.write(forward, server, fq) })
	p.wg.Go(func() { c.read(backward, server, bq) })
	p.wg.Go(func() { c.write(backward, client, bq) })
}

// bufPool holds chunkSize read buffers. A buffer belongs to the reader until it
// is queued, then to the writer, which returns it.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, chunkSize)
	return &b
}}

// chunk is what one read returned, due for delivery at due.
type chunk struct {
	buf *[]byte
	n   int
	due time.Time
}

// pconn is one proxied connection: a reader and a writer goroutine per
// direction, joined by a FIFO queue that carries the delay.
type pconn struct {
	p              *Proxy
	client, server net.Conn
	done           chan struct{} // closed by teardown: every goroutine of the connection exits
	once           sync.Once
	open           atomic.Int32 // directions not yet finished by an end of stream
}

// read moves chunks from src to q until src ends. An orderly end (EOF) closes
// q so that the writer passes the FIN on after what is queued; any other error
// resets the whole connection.
func (c *pconn) read(dir direction, src net.Conn, q chan<- chunk) {
	for {
		bp := bufPool.Get().(*[]byte)
		n, err := src.Read(*bp)
		queued := false
		if n > 0 {
			m := c.p.Mode()
			if m.drops(dir) {
				c.p.dropped[dir].Add(uint64(n))
			} else {
				select {
				case q <- chunk{buf: bp, n: n, due: time.Now().Add(m.Delay)}:
					queued = true
					c.p.enqueued[dir].Add(uint64(n))
				case <-c.done:
					bufPool.Put(bp)
					return
				}
			}
		}
		if !queued {
			bufPool.Put(bp)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				close(q)
			} else {
				c.teardown(true)
			}
			return
		}
	}
}

// write delivers the chunks of q to dst, each when it is due, unless the mode
// in force at delivery drops them.
func (c *pconn) write(dir direction, dst net.Conn, q <-chan chunk) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var ch chunk
		var ok bool
		select {
		case ch, ok = <-q:
		case <-c.done:
			return
		}
		if !ok {
			// The source sent FIN: pass it on, and close both sockets once
			// both directions have ended.
			if tc, isTCP := dst.(*net.TCPConn); isTCP {
				_ = tc.CloseWrite()
			}
			if c.open.Add(-1) == 0 {
				c.teardown(false)
			}
			return
		}
		if wait := time.Until(ch.due); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-c.done:
				bufPool.Put(ch.buf)
				return
			}
		}
		if c.p.Mode().drops(dir) {
			c.p.dropped[dir].Add(uint64(ch.n))
			bufPool.Put(ch.buf)
			continue
		}
		n, err := dst.Write((*ch.buf)[:ch.n])
		c.p.delivered[dir].Add(uint64(n))
		bufPool.Put(ch.buf)
		if err != nil {
			c.teardown(true)
			return
		}
	}
}

// teardown closes both sockets, resetting them if reset is set, and stops every
// goroutine of the connection. It reports whether this call did it.
func (c *pconn) teardown(reset bool) bool {
	did := false
	c.once.Do(func() {
		did = true
		close(c.done)
		if reset {
			setLingerZero(c.client)
			setLingerZero(c.server)
		}
		_ = c.client.Close()
		_ = c.server.Close()
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
	return did
}

// reset closes conn with an RST rather than a FIN, as a dead link would.
func reset(conn net.Conn) {
	setLingerZero(conn)
	_ = conn.Close()
}

func setLingerZero(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}
