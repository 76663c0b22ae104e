package system

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// registerInput is one operation on a per-key register kept in SQL.
type registerInput struct {
	Key   int
	Write bool
	Value int64 // for writes
}

// registerModel is a set of independent registers, one per key, starting at 0.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(registerInput).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(registerInput)
		if in.Write {
			return true, in.Value
		}
		return output.(int64) == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(registerInput)
		if in.Write {
			return fmt.Sprintf("put(%d, %d)", in.Key, in.Value)
		}
		return fmt.Sprintf("get(%d) -> %v", in.Key, output)
	},
}

// registerWorkload runs clients that write and read per-key registers in table reg through random running
// nodes (writes forwarded to the leader, reads at linearizable served where they land) and records the
// history for porcupine. A write whose outcome is unknown may take effect any time after it was sent; an
// operation that surely did nothing is left out.
type registerWorkload struct {
	c     *cluster.Cluster
	start time.Time
	next  atomic.Int64
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu      sync.Mutex
	history []porcupine.Operation
	counts  map[string]int // "read", "write ok", "write unknown", "failed"
	// backward records the (term, index) positions a client saw go backward between two of its successful
	// operations: each one's state includes the one before, so the fencing tokens must only grow.
	backward []string
}

// position is the (term, index) fencing token of a response.
type position struct{ term, index uint64 }

func positionOf(resp *cluster.Response) position {
	term, _ := strconv.ParseUint(resp.Header.Get("X-Rowboat-Term"), 10, 64)
	index, _ := strconv.ParseUint(resp.Header.Get("X-Rowboat-Index"), 10, 64)
	return position{term, index}
}

// less orders positions as fencing tokens: by term, then index.
func (p position) less(q position) bool {
	return p.term < q.term || p.term == q.term && p.index < q.index
}

// saw checks a client's next token against its last one.
func (w *registerWorkload) saw(client int, last *position, resp *cluster.Response, what string) {
	p := positionOf(resp)
	if p.less(*last) {
		w.mu.Lock()
		w.backward = append(w.backward, fmt.Sprintf("client %d: %s answered (term %d, index %d) after (term %d, index %d)",
			client, what, p.term, p.index, last.term, last.index))
		w.mu.Unlock()
		return
	}
	*last = p
}

func startRegister(t *testing.T, c *cluster.Cluster, clients, keys int, seed uint64) *registerWorkload {
	t.Helper()
	t.Logf("register workload: %d clients, seed %d", clients, seed)
	c.Leader(t, wait).Execute(t, "", "CREATE TABLE IF NOT EXISTS reg(k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
	w := &registerWorkload{c: c, start: time.Now(), stop: make(chan struct{}), counts: map[string]int{}}
	for id := range clients {
		w.wg.Add(1)
		go w.client(id, keys, rand.New(rand.NewPCG(seed+uint64(id), 7)))
	}
	return w
}

func (w *registerWorkload) now() int64 { return int64(time.Since(w.start)) }

func (w *registerWorkload) record(op porcupine.Operation, kind string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counts[kind]++
	if kind != "failed" {
		w.history = append(w.history, op)
	}
}

func (w *registerWorkload) client(id, keys int, r *rand.Rand) {
	defer w.wg.Done()
	var last position
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		nodes := w.c.Running() // paused nodes too: what they answer after they resume is checked as well
		if len(nodes) == 0 {
			time.Sleep(10 * time.Millisecond) // every node is down for a moment: do not spin
			continue
		}
		n := nodes[r.IntN(len(nodes))]
		key := r.IntN(keys)
		if r.IntN(2) == 0 {
			v := w.next.Add(1)
			call := w.now()
			resp, err := n.Do(http.MethodPost, "/db/execute?timeout=3s", []any{[]any{"INSERT OR REPLACE INTO reg(k, v) VALUES(?, ?)", key, v}})
			op := porcupine.Operation{ClientId: id, Input: registerInput{Key: key, Write: true, Value: v}, Call: call, Return: w.now()}
			switch {
			case err == nil && resp.Status == http.StatusOK:
				w.record(op, "write ok")
				w.saw(id, &last, resp, "a write on "+n.ID)
			case err == nil && resp.Status == http.StatusServiceUnavailable && (codeOf(resp) == "no_leader" || codeOf(resp) == "not_leader"):
				w.record(op, "failed") // nothing was applied
			default:
				op.Return = math.MaxInt64 // may take effect at any time after the call
				w.record(op, "write unknown")
			}
			continue
		}
		level := "linearizable"
		if r.IntN(4) == 0 {
			level = "strong" // through the log on the leader (forwarded from a follower)
		}
		call := w.now()
		d, resp, err := tryQuery(n, fmt.Sprintf("SELECT v FROM reg WHERE k = %d", key), "level="+level+"&timeout=3s")
		ret := w.now()
		if err != nil || resp.Status != http.StatusOK {
			w.record(porcupine.Operation{}, "failed")
			continue
		}
		w.saw(id, &last, resp, "a "+level+" read on "+n.ID)
		var v int64
		if vals := d.Results[0].Values; len(vals) == 1 {
			v = int64(vals[0][0].(float64))
		}
		w.record(porcupine.Operation{ClientId: id, Input: registerInput{Key: key}, Output: v, Call: call, Return: ret}, "read")
	}
}

// completed counts the operations that completed with a known outcome.
func (w *registerWorkload) completed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts["read"] + w.counts["write ok"]
}

// waitOps waits until n more operations completed.
func (w *registerWorkload) waitOps(t *testing.T, what string, n int) {
	t.Helper()
	target := w.completed() + n
	cluster.Eventually(t, wait, fmt.Sprintf("%d operations %s", n, what), func() bool { return w.completed() >= target })
}

// halt stops the clients and waits for them.
func (w *registerWorkload) halt() {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
}

// finish stops the clients and checks the history for linearizability; it fails the test on a violation.
func (w *registerWorkload) finish(t *testing.T, timeout time.Duration) map[string]int {
	t.Helper()
	w.halt()
	t.Logf("register operations: %v", w.counts)
	if len(w.backward) > 0 {
		t.Errorf("fencing tokens went backward %d times; first: %s", len(w.backward), w.backward[0])
	}
	switch porcupine.CheckOperationsTimeout(registerModel, w.history, timeout) {
	case porcupine.Ok:
		t.Logf("register history of %d operations is linearizable", len(w.history))
	case porcupine.Unknown:
		// No verdict proves nothing: the history must be small enough, or the timeout long enough, to check.
		t.Fatalf("the linearizability checker gave no verdict on %d operations within %s", len(w.history), timeout)
	default:
		t.Fatalf("register history of %d operations is NOT linearizable", len(w.history))
	}
	return w.counts
}

// A register workload — writes through any node, linearizable reads served by every node (followers read
// locally after a read index) and strong reads (through the log on the leader) — with the leader killed half way, checked for linearizability with porcupine.
func TestLinearizable_RegisterUnderLeaderKill(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	w := startRegister(t, c, 6, 3, rand.Uint64())
	w.waitOps(t, "before the fault", 500)
	leader.Kill()
	c.Leader(t, wait)
	w.waitOps(t, "after the kill", 500)
	leader.Start()
	leader.WaitReady(t, wait)
	w.waitOps(t, "after the old leader rejoined", 500)
	if counts := w.finish(t, 60*time.Second); counts["read"] < 100 || counts["write ok"] < 50 {
		t.Fatalf("too few operations to say anything: %v", counts)
	}
}

func codeOf(r *cluster.Response) string {
	var e struct {
		Code string `json:"code"`
	}
	json.Unmarshal(r.Body, &e)
	return e.Code
}

func tryQuery(n *cluster.Node, sql, q string) (cluster.DataResponse, *cluster.Response, error) {
	var d cluster.DataResponse
	r, err := n.Do(http.MethodGet, "/db/query?q="+urlQueryEscape(sql)+"&"+q, nil)
	if err != nil {
		return d, nil, err
	}
	if r.Status == http.StatusOK {
		err = r.JSON(&d)
		if err == nil && (len(d.Results) != 1 || d.Results[0].Error != "") {
			err = fmt.Errorf("bad result %s", r.Body)
		}
	}
	return d, r, err
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// The checker is not vacuous: a read that misses a write acknowledged before it began is caught.
func TestLinearizable_CheckerCatchesStaleRead(t *testing.T) {
	history := []porcupine.Operation{
		{ClientId: 0, Input: registerInput{Key: 1, Write: true, Value: 7}, Call: 0, Return: 10},
		{ClientId: 1, Input: registerInput{Key: 1}, Output: int64(0), Call: 20, Return: 30},
	}
	if porcupine.CheckOperations(registerModel, history) {
		t.Fatal("a stale read passed the linearizability check")
	}
	history[1].Output = int64(7)
	if !porcupine.CheckOperations(registerModel, history) {
		t.Fatal("a fresh read failed the linearizability check")
	}
}
