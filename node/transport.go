package node

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// DialMapEnv names a file of "address=replacement" lines. When it is set, every Raft connection this node
// dials to address goes to replacement instead. The file is read on every dial, so it can change while the
// node runs. It exists for the fault harness, which routes each directed Raft link through its own proxy.
const DialMapEnv = "ROWBOAT_RAFT_DIAL_MAP"

// streamLayer is Raft's TCP stream layer with an optional dial map.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	dialMap   string
}

// newStreamLayer listens on bind and advertises advertise (host:port) as given: a host name stays a name, so
// that the address this node announces in a join or a bootstrap notification is the one in the Raft
// configuration, where peers compare addresses as strings.
func newStreamLayer(bind, advertise string) (*streamLayer, error) {
	resolved, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, err
	}
	if resolved.IP == nil || resolved.IP.IsUnspecified() {
		return nil, errors.New("raft advertise address is unspecified (0.0.0.0): set --raft-advertise")
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	return &streamLayer{Listener: ln, advertise: advertisedAddr(advertise), dialMap: os.Getenv(DialMapEnv)}, nil
}

// advertisedAddr is a TCP address as configured (host:port, the host possibly a name).
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	addr := string(address)
	if s.dialMap != "" {
		addr = lookupDialMap(s.dialMap, addr)
	}
	return net.DialTimeout("tcp", addr, timeout)
}

func lookupDialMap(path, addr string) string {
	f, err := os.Open(path)
	if err != nil {
		return addr
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		from, to, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && from == addr {
			return to
		}
	}
	return addr
}

// voteGuard wraps a node's transport to refuse every vote while the node, started without Raft state, has
// not joined a cluster yet. Its id may be that of a voter whose data directory was wiped: the others still
// count it as a voter, and with an empty log (and no configuration, so no candidate is a stranger) Raft would
// grant its vote to any candidate, even a lagging one that misses entries only the lost copy had
// acknowledged. Join removes such a voter and adds it again; the guard covers the moments before that.
//
// Every other RPC passes through unchanged (heartbeats bypass the consumer channel altogether).
type voteGuard struct {
	raft.Transport
	preVote raft.WithPreVote
	closer  raft.WithClose
	header  raft.RPCHeader
	log     *slog.Logger

	guarding atomic.Bool
	out      chan raft.RPC
	done     chan struct{}
	once     sync.Once
	warned   atomic.Bool
}

// newVoteGuard wraps t, guarding from the start; ok is false (and t is left alone) for a transport without
// pre-vote or Close, which a node's transports all have.
func newVoteGuard(t raft.Transport, id raft.ServerID, log *slog.Logger) (g *voteGuard, ok bool) {
	pv, ok1 := t.(raft.WithPreVote)
	c, ok2 := t.(raft.WithClose)
	if !ok1 || !ok2 {
		return nil, false
	}
	g = &voteGuard{Transport: t, preVote: pv, closer: c, log: log, out: make(chan raft.RPC), done: make(chan struct{}),
		header: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: t.EncodePeer(id, t.LocalAddr())}}
	g.guarding.Store(true)
	go g.run(t.Consumer())
	return g, true
}

// lift ends the guard: the node votes from then on.
func (g *voteGuard) lift() { g.guarding.Store(false) }

func (g *voteGuard) run(in <-chan raft.RPC) {
	for {
		select {
		case rpc := <-in:
			if g.guarding.Load() && g.refuse(rpc) {
				continue
			}
			select {
			case g.out <- rpc:
			case <-g.done:
				return
			}
		case <-g.done:
			return
		}
	}
}

// refuse answers a vote or pre-vote request with a refusal and reports whether rpc was one.
func (g *voteGuard) refuse(rpc raft.RPC) bool {
	var candidate []byte
	switch req := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		candidate = req.ID
		rpc.Respond(&raft.RequestVoteResponse{RPCHeader: g.header, Granted: false}, nil)
	case *raft.RequestPreVoteRequest:
		candidate = req.ID
		rpc.Respond(&raft.RequestPreVoteResponse{RPCHeader: g.header, Granted: false}, nil)
	default:
		return false
	}
	if !g.warned.Swap(true) {
		g.log.Warn("refused a vote: this node started without data and has not joined yet; if a voter of its id lost its data, its vote could elect a node that misses acknowledged writes",
			"candidate", string(candidate))
	}
	return true
}

func (g *voteGuard) Consumer() <-chan raft.RPC { return g.out }

func (g *voteGuard) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return g.preVote.RequestPreVote(id, target, args, resp)
}

func (g *voteGuard) Close() error {
	g.once.Do(func() { close(g.done) })
	return g.closer.Close()
}
