package faultproxy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// ErrClosed is returned by Network.Link once the Network is closed.
var ErrClosed = errors.New("faultproxy: network closed")

// linkKey names a directed link: from dials to.
type linkKey struct{ from, to string }

// Network manages one Proxy per directed link between nodes, keyed by node ids:
// node from reaches node to's address through the link's proxy. All methods are
// safe for concurrent use. Mode changes made through a Network apply only to
// links that exist when they are made; a link created later starts Healthy.
type Network struct {
	mu     sync.Mutex
	closed bool
	links  map[linkKey]*Proxy
}

// NewNetwork returns an empty Network.
func NewNetwork() *Network {
	return &Network{links: make(map[linkKey]*Proxy)}
}

// Link returns the proxy of the link from -> to, creating it, forwarding to
// target, if it does not exist. It fails if the link exists with another target,
// and returns ErrClosed after Close.
func (n *Network) Link(from, to, target string) (*Proxy, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	k := linkKey{from, to}
	if p, ok := n.links[k]; ok {
		if p.Target() != target {
			return nil, fmt.Errorf("link %s->%s: already forwards to %s, not %s", from, to, p.Target(), target)
		}
		return p, nil
	}
	p, err := New(target)
	if err != nil {
		return nil, fmt.Errorf("link %s->%s: %w", from, to, err)
	}
	n.links[k] = p
	return p, nil
}

// Get returns the proxy of the link from -> to, or nil if there is none.
func (n *Network) Get(from, to string) *Proxy {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.links[linkKey{from, to}]
}

// SetLink sets the mode of the link from -> to; it does nothing if there is no
// such link.
func (n *Network) SetLink(from, to string, m Mode) {
	if p := n.Get(from, to); p != nil {
		p.SetMode(m)
	}
}

// Isolate cuts every link from or to node id, leaving the other links as they
// are.
func (n *Network) Isolate(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, p := range n.links {
		if k.from == id || k.to == id {
			p.SetMode(Mode{Cut: true})
		}
	}
}

// Partition splits the nodes into groups: every link between two nodes of the
// same group is healed (set Healthy) and every other link is cut. A node named
// in no group is cut off from every node, as if it were alone in a group.
func (n *Network) Partition(groups ...[]string) {
	group := make(map[string]int)
	for i, g := range groups {
		for _, id := range g {
			group[id] = i
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, p := range n.links {
		gf, okf := group[k.from]
		gt, okt := group[k.to]
		if okf && okt && gf == gt {
			p.SetMode(Healthy)
		} else {
			p.SetMode(Mode{Cut: true})
		}
	}
}

// HealAll sets every link Healthy.
func (n *Network) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.links {
		p.SetMode(Healthy)
	}
}

// Close closes every proxy and returns their errors joined. Link fails with
// ErrClosed afterwards.
func (n *Network) Close() error {
	n.mu.Lock()
	n.closed = true
	links := n.links
	n.links = make(map[linkKey]*Proxy)
	n.mu.Unlock()
	var errs []error
	for k, p := range links {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("link %s->%s: %w", k.from, k.to, err))
		}
	}
	return errors.Join(errs...)
}

// WriteDialMap writes to path one line "target=proxyaddr" for every link whose
// from is from, sorted, so that node from, which re-reads the file on each dial,
// reaches its peers through their proxies. The file is replaced atomically (a
// temporary file in the same directory, then a rename): a reader sees the old
// map or the new one, never a partial one.
func (n *Network) WriteDialMap(path string, from string) error {
	n.mu.Lock()
	var lines []string
	for k, p := range n.links {
		if k.from == from {
			lines = append(lines, p.Target()+"="+p.Addr()+"\n")
		}
	}
	n.mu.Unlock()
	slices.Sort(lines)
	if err := writeFileAtomic(path, []byte(strings.Join(lines, ""))); err != nil {
		return fmt.Errorf("write dial map: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data through a synced temporary file in
// the same directory and a rename.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
