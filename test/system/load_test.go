package system

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// load is a set of clients inserting unique (client, seq) rows, each retrying the same row until it is
// acknowledged (INSERT OR IGNORE makes a retry of a write whose outcome was unknown harmless). It records
// every acknowledged row, the highest index acknowledged and how attempts failed.
type load struct {
	c        *cluster.Cluster
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	acked    map[[2]int]bool
	// pending is each client's row in flight when the load stopped: tried, not acknowledged, so it may or may
	// not be there. Every other row a node holds must have been acknowledged.
	pending map[int]int
	max     uint64
	fails   map[string]int
	// firstOKAfter is when the first write sent after mark was acknowledged (zero until then).
	mark, firstOKAfter time.Time
	okCount            atomic.Int64
	latencies          []time.Duration // of acknowledged writes, from send to answer
}

func startLoad(t *testing.T, c *cluster.Cluster, clients int) *load {
	t.Helper()
	l := &load{c: c, stop: make(chan struct{}), acked: map[[2]int]bool{}, pending: map[int]int{}, fails: map[string]int{}}
	c.Leader(t, wait).Execute(t, "", "CREATE TABLE IF NOT EXISTS load(client INTEGER, seq INTEGER, PRIMARY KEY(client, seq))")
	t.Cleanup(l.halt) // a test that fails before finish must not leave clients writing for the rest of the run
	for i := range clients {
		l.wg.Add(1)
		go l.client(i)
	}
	return l
}

func (l *load) client(id int) {
	defer l.wg.Done()
	for seq := 0; ; seq++ {
		for {
			select {
			case <-l.stop:
				l.mu.Lock()
				l.pending[id] = seq
				l.mu.Unlock()
				return
			default:
			}
			sent := time.Now()
			idx, code := l.try(id, seq)
			if code == "" {
				l.mu.Lock()
				l.latencies = append(l.latencies, time.Since(sent))
				l.acked[[2]int{id, seq}] = true
				l.max = max(l.max, idx)
				if !l.mark.IsZero() && l.firstOKAfter.IsZero() && sent.After(l.mark) {
					l.firstOKAfter = time.Now()
				}
				l.mu.Unlock()
				l.okCount.Add(1)
				break
			}
			l.mu.Lock()
			l.fails[code]++
			l.mu.Unlock()
			time.Sleep(20 * time.Millisecond) // back off before retrying the same row
		}
	}
}

// try sends one insert to a random running node; code is "" on success.
func (l *load) try(client, seq int) (uint64, string) {
	nodes := l.c.Running()
	if len(nodes) == 0 {
		return 0, "no nodes"
	}
	n := nodes[rand.IntN(len(nodes))]
	r, err := n.Do(http.MethodPost, "/db/execute?timeout=5s", []any{[]any{"INSERT OR IGNORE INTO load(client, seq) VALUES(?, ?)", client, seq}})
	if err != nil {
		return 0, "network"
	}
	var d cluster.DataResponse
	json.Unmarshal(r.Body, &d)
	if r.Status != http.StatusOK {
		return 0, fmt.Sprintf("%d %s", r.Status, d.Code)
	}
	if len(d.Results) != 1 || d.Results[0].Error != "" {
		return 0, "sql: " + string(r.Body)
	}
	return d.RaftIndex, ""
}

// markNow records the moment faults start, for the time to the first successful write.
func (l *load) markNow() {
	l.mu.Lock()
	l.mark = time.Now()
	l.mu.Unlock()
}

// waitOKs waits until n more writes are acknowledged.
func (l *load) waitOKs(t *testing.T, n int64, timeout time.Duration) {
	t.Helper()
	target := l.okCount.Load() + n
	cluster.Eventually(t, timeout, fmt.Sprintf("%d more acknowledged writes", n), func() bool { return l.okCount.Load() >= target })
}

// finish stops the clients and returns the acknowledged rows and the highest acknowledged index.
// halt stops the clients and waits for them; it may be called more than once.
func (l *load) halt() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *load) finish(t *testing.T) (map[[2]int]bool, uint64) {
	t.Helper()
	l.halt()
	t.Logf("acknowledged %d writes; failed attempts by kind: %v", len(l.acked), l.fails)
	if n := len(l.latencies); n > 0 {
		slices.Sort(l.latencies)
		at := func(q float64) time.Duration {
			return l.latencies[min(n-1, int(q*float64(n)))].Round(100 * time.Microsecond)
		}
		t.Logf("acknowledged write latency: p50 %s, p99 %s, max %s", at(0.5), at(0.99), l.latencies[n-1].Round(time.Millisecond))
	}
	if !l.mark.IsZero() && !l.firstOKAfter.IsZero() {
		t.Logf("first successful write %.3fs after the fault", l.firstOKAfter.Sub(l.mark).Seconds())
	}
	return l.acked, l.max
}

// checkAcked verifies that every acknowledged row is on every running node, that no node holds a row that
// was never acknowledged (except a client's last row, whose outcome is unknown: a write answered "not
// applied" must not be there), and that the running nodes hold the same rows.
func checkAcked(t *testing.T, c *cluster.Cluster, l *load, index uint64) {
	t.Helper()
	if len(l.acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	var ref [][]any
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		got := rows(t, n, "SELECT client, seq FROM load ORDER BY client, seq", index)
		have := map[[2]int]bool{}
		var phantoms []string
		for _, r := range got {
			k := [2]int{int(r[0].(float64)), int(r[1].(float64))}
			have[k] = true
			if seq, ok := l.pending[k[0]]; !l.acked[k] && (!ok || seq != k[1]) {
				phantoms = append(phantoms, fmt.Sprint(k))
			}
		}
		lost := 0
		for k := range l.acked {
			if !have[k] {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("%s: %d acknowledged writes lost", n.ID, lost)
		}
		if len(phantoms) > 0 {
			t.Errorf("%s holds %d rows never acknowledged, e.g. %s", n.ID, len(phantoms), phantoms[0])
		}
		if ref != nil && len(got) != len(ref) {
			t.Errorf("%s holds %d rows, another node %d", n.ID, len(got), len(ref))
		}
		ref = got
	}
}

// writeRetry executes stmts on the current leader, retrying through leader changes (only for tests whose
// checks do not depend on a retried write running once).
func writeRetry(t *testing.T, c *cluster.Cluster, stmts ...any) uint64 {
	t.Helper()
	var idx uint64
	cluster.Eventually(t, wait, "a write to succeed", func() bool {
		leader := c.Leader(t, wait)
		r, err := leader.Do(http.MethodPost, "/db/execute", stmts)
		if err != nil || r.Status != http.StatusOK {
			return false
		}
		var d cluster.DataResponse
		if r.JSON(&d) != nil {
			return false
		}
		idx = d.RaftIndex
		return true
	})
	return idx
}
