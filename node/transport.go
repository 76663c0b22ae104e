package node

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
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

func newStreamLayer(bind string, advertise net.Addr) (*streamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if tcp, ok := advertise.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, errors.New("raft advertise address is unspecified (0.0.0.0): set --raft-advertise")
	}
	return &streamLayer{Listener: ln, advertise: advertise, dialMap: os.Getenv(DialMapEnv)}, nil
}

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
