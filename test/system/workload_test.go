package system

import (
	"sync"

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
