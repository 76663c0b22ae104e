package system

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// workers is the stop-and-wait plumbing the workloads share: clients run until halt.
type workers struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newWorkers() *workers { return &workers{stop: make(chan struct{})} }

// stopped reports whether halt was called.
func (w *workers) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// halt stops the clients and waits for them.
func (w *workers) halt() {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
}

// unpaused returns the running nodes that are not paused: a paused node would hold a client's request until
// it resumes.
func unpaused(c *cluster.Cluster) []*cluster.Node {
	var out []*cluster.Node
	for _, n := range c.Running() {
		if !n.Paused() {
			out = append(out, n)
		}
	}
	return out
}

// pick returns a random node that is running and not paused, waiting while there is none; false once halt
// was called.
func (w *workers) pick(c *cluster.Cluster, r *rand.Rand) (*cluster.Node, bool) {
	for !w.stopped() {
		if nodes := unpaused(c); len(nodes) > 0 {
			return nodes[r.IntN(len(nodes))], true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, false
}

// send sends a workload's request to n and gives up after 5 s.
func send(n *cluster.Node, method, path string, body any) (*cluster.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.DoContext(ctx, method, path, body)
}
