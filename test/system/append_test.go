package system

import (
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

// appendWorkload is TESTING.md's append / session workload. Each client is a session: it appends unique values
// to a few per-key lists through random nodes and reads the lists back at level none on random nodes, always
// carrying its bookmark (the highest index it has seen) as min_index. Checked:
//   - read-your-writes: a read shows every value the session appended to that list and saw acknowledged;
//   - monotonic reads: a read shows everything the session's previous read of that list showed, in order;
//   - consistent prefix: every read is a prefix of the list's final order (read on the leader at the end).
type appendWorkload struct {
	c    *cluster.Cluster
	keys int
	next atomic.Int64 // value generator
	*workers

	mu     sync.Mutex
	counts map[string]int
	reads  []appendRead // every successful read, for the prefix check
	bad    []string
}

type appendRead struct {
	key  int
	vals []int64
	desc string
}

func startAppend(t *testing.T, c *cluster.Cluster, clients, keys int, seed uint64) *appendWorkload {
	t.Helper()
	t.Logf("append workload: %d clients, seed %d", clients, seed)
	idx := c.Leader(t, wait).Execute(t, "", "CREATE TABLE IF NOT EXISTS lists(id INTEGER PRIMARY KEY AUTOINCREMENT, k INTEGER NOT NULL, v INTEGER NOT NULL UNIQUE)").RaftIndex
	for _, n := range c.All() {
		rows(t, n, "SELECT COUNT(*) FROM lists", idx)
	}
	w := &appendWorkload{c: c, keys: keys, workers: newWorkers(), counts: map[string]int{}}
	for id := range clients {
		w.wg.Add(1)
		go w.session(id, rand.New(rand.NewPCG(seed+uint64(id), 13)))
	}
	return w
}

func (w *appendWorkload) problem(format string, args ...any) {
	w.mu.Lock()
	w.bad = append(w.bad, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

func (w *appendWorkload) count(kind string) {
	w.mu.Lock()
	w.counts[kind]++
	w.mu.Unlock()
}

func (w *appendWorkload) session(id int, r *rand.Rand) {
	defer w.wg.Done()
	var bookmark uint64
	mine := make(map[int][]int64) // acknowledged appends of this session, per key
	seen := make(map[int][]int64) // the last list this session read, per key
	for {
		n, ok := w.pick(w.c, r)
		if !ok {
			return
		}
		key := r.IntN(w.keys)
		if r.IntN(2) == 0 {
			v := w.next.Add(1)
			resp, err := send(n, http.MethodPost, "/db/execute?timeout=3s", []any{[]any{"INSERT INTO lists(k, v) VALUES(?, ?)", key, v}})
			var d cluster.DataResponse
			if err != nil || resp.Status != http.StatusOK || resp.JSON(&d) != nil || len(d.Results) != 1 || d.Results[0].Error != "" {
				w.count("append failed or unknown")
				time.Sleep(10 * time.Millisecond)
				continue
			}
			mine[key] = append(mine[key], v)
			bookmark = max(bookmark, d.RaftIndex)
			w.count("append ok")
			continue
		}
		q := fmt.Sprintf("/db/query?level=none&timeout=3s&min_index=%d&q=%s", bookmark,
			urlQueryEscape(fmt.Sprintf("SELECT v FROM lists WHERE k = %d ORDER BY id", key)))
		resp, err := send(n, http.MethodGet, q, nil)
		var d cluster.DataResponse
		if err != nil || resp.Status != http.StatusOK || resp.JSON(&d) != nil || len(d.Results) != 1 || d.Results[0].Error != "" {
			w.count("read failed")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var vals []int64
		for _, row := range d.Results[0].Values {
			vals = append(vals, int64(row[0].(float64)))
		}
		desc := fmt.Sprintf("session %d read of list %d on %s at min_index %d (served at %s by %s)",
			id, key, n.ID, bookmark, resp.Header.Get("X-Rowboat-Index"), resp.Header.Get("X-Rowboat-Served-By"))
		for _, v := range mine[key] {
			if !slices.Contains(vals, v) {
				w.problem("read-your-writes broken: %s misses the session's acknowledged %d", desc, v)
				break
			}
		}
		if prev := seen[key]; len(vals) < len(prev) || !slices.Equal(vals[:len(prev)], prev) {
			w.problem("monotonic reads broken: %s shows %v after the session saw %v", desc, vals, prev)
		}
		seen[key] = vals
		bookmark = max(bookmark, resp.Index())
		w.mu.Lock()
		w.reads = append(w.reads, appendRead{key: key, vals: vals, desc: desc})
		w.counts["read ok"]++
		w.mu.Unlock()
	}
}

// finish stops the sessions, reads every list's final order on the leader and fails the test for every
// broken guarantee, and when too little happened to say anything.
func (w *appendWorkload) finish(t *testing.T) {
	t.Helper()
	w.halt()
	leader := w.c.Leader(t, wait)
	final := make(map[int][]int64)
	for key := range w.keys {
		d, _ := leader.Query(t, fmt.Sprintf("SELECT v FROM lists WHERE k = %d ORDER BY id", key), "level=strong")
		for _, row := range d.Results[0].Values {
			final[key] = append(final[key], int64(row[0].(float64)))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("append operations: %v; final list lengths: %d", w.counts, func() (out []int) {
		for key := range w.keys {
			out = append(out, len(final[key]))
		}
		return out
	}())
	for _, rd := range w.reads {
		if f := final[rd.key]; len(rd.vals) > len(f) || !slices.Equal(rd.vals, f[:len(rd.vals)]) {
			w.bad = append(w.bad, fmt.Sprintf("consistent prefix broken: %s showed %v, not a prefix of the final %v", rd.desc, rd.vals, f))
		}
	}
	for i, b := range w.bad {
		if i == 20 {
			t.Errorf("... and %d more", len(w.bad)-20)
			break
		}
		t.Errorf("%s", b)
	}
	if w.counts["append ok"] < 20 || w.counts["read ok"] < 20 {
		t.Errorf("too few append operations to say anything: %v", w.counts)
	}
}

// Sessions keep their guarantees at level none — with a follower lagging behind a slow link, across a leader
// kill — because they carry their bookmark; and every read is a prefix of the final order.
func TestAppend_SessionsUnderLagAndLeaderKill(t *testing.T) {
	c := cluster.StartWithFaults(t, 3)
	w := startAppend(t, c, 4, 3, rand.Uint64())
	waitOK := func(what string, n int) {
		t.Helper()
		get := func() int {
			w.mu.Lock()
			defer w.mu.Unlock()
			return min(w.counts["append ok"], w.counts["read ok"])
		}
		target := get() + n
		cluster.Eventually(t, wait, fmt.Sprintf("%d appends and reads %s", n, what), func() bool { return get() >= target })
	}
	waitOK("before the faults", 50)
	leader := c.Leader(t, wait)
	var follower *cluster.Node
	for _, n := range c.All() {
		if n != leader {
			follower = n
			break
		}
	}
	lag(c, leader, follower, 150*time.Millisecond)
	waitOK("with a follower lagging", 50)
	leader.Kill()
	c.Leader(t, wait)
	waitOK("after the leader was killed", 50)
	c.Net.HealAll()
	leader.Start()
	leader.WaitReady(t, wait)
	waitOK("after the old leader rejoined", 50)
	w.finish(t)
}
