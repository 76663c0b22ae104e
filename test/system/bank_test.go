package system

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

const (
	bankAccounts = 6
	bankOpening  = 100 // each account's opening balance
)

// bankWorkload moves money between accounts whose total never changes. Clients send each transfer as one
// ?transaction request (two UPDATEs; an overdraft fails the CHECK and rolls the whole request back) through a
// random running node, and read every balance as one multi-statement query, at a random level, on a random
// node. Every read must see all accounts, the full total and no negative balance: a read that saw half a
// transfer, a half-applied batch or a half-restored database would break one of those.
type bankWorkload struct {
	c *cluster.Cluster
	*workers

	mu     sync.Mutex
	counts map[string]int // "transfer ok", "transfer refused", "transfer failed", "read <level>", "read failed"
	bad    []string       // reads that broke the invariant
}

func startBank(t *testing.T, c *cluster.Cluster, clients int, seed uint64) *bankWorkload {
	t.Helper()
	t.Logf("bank workload: %d clients, seed %d", clients, seed)
	leader := c.Leader(t, wait)
	stmts := []any{"CREATE TABLE IF NOT EXISTS bank(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))"}
	for id := range bankAccounts {
		stmts = append(stmts, []any{"INSERT INTO bank(id, balance) VALUES(?, ?)", id, bankOpening})
	}
	idx := leader.Execute(t, "?transaction", stmts...).RaftIndex
	for _, n := range c.All() {
		rows(t, n, "SELECT COUNT(*) FROM bank", idx) // level none reads are fair game only once every node has the accounts
	}
	w := &bankWorkload{c: c, workers: newWorkers(), counts: map[string]int{}}
	for id := range clients {
		w.wg.Add(1)
		go w.client(rand.New(rand.NewPCG(seed+uint64(id), 11)))
	}
	return w
}

func (w *bankWorkload) count(kind string) {
	w.mu.Lock()
	w.counts[kind]++
	w.mu.Unlock()
}

func (w *bankWorkload) client(r *rand.Rand) {
	defer w.wg.Done()
	reads := make([]any, bankAccounts)
	for id := range bankAccounts {
		reads[id] = []any{"SELECT balance FROM bank WHERE id = ?", id}
	}
	for {
		n, ok := w.pick(w.c, r)
		if !ok {
			return
		}
		if r.IntN(2) == 0 {
			from, to := r.IntN(bankAccounts), r.IntN(bankAccounts-1)
			if to >= from {
				to++
			}
			amount := 1 + r.IntN(60)
			resp, err := send(n, http.MethodPost, "/db/execute?transaction&timeout=3s", []any{
				[]any{"UPDATE bank SET balance = balance - ? WHERE id = ?", amount, from},
				[]any{"UPDATE bank SET balance = balance + ? WHERE id = ?", amount, to},
			})
			var d cluster.DataResponse
			if err != nil || resp.Status != http.StatusOK || resp.JSON(&d) != nil {
				w.count("transfer failed")
				time.Sleep(10 * time.Millisecond) // no leader for a moment: don't spin
				continue
			}
			kind := "transfer ok"
			for _, res := range d.Results {
				if res.Error != "" {
					kind = "transfer refused" // an overdraft: the transaction rolled back
				}
			}
			w.count(kind)
			continue
		}
		level := []string{"none", "weak", "linearizable", "strong"}[r.IntN(4)]
		resp, err := send(n, http.MethodPost, "/db/query?level="+level+"&timeout=3s", reads)
		var d cluster.DataResponse
		if err != nil || resp.Status != http.StatusOK || resp.JSON(&d) != nil {
			w.count("read failed")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if msg := bankInvariant(d); msg != "" {
			w.mu.Lock()
			w.bad = append(w.bad, fmt.Sprintf("%s at level %s: %s", n.ID, level, msg))
			w.mu.Unlock()
		}
		w.count("read " + level)
	}
}

// bankInvariant returns what is wrong with one read of every balance, or "".
func bankInvariant(d cluster.DataResponse) string {
	if len(d.Results) != bankAccounts {
		return fmt.Sprintf("%d results for %d statements", len(d.Results), bankAccounts)
	}
	total := 0
	var balances []int
	for id, res := range d.Results {
		if res.Error != "" {
			return fmt.Sprintf("account %d: %s", id, res.Error)
		}
		if len(res.Values) != 1 || len(res.Values[0]) != 1 {
			return fmt.Sprintf("account %d: %d rows", id, len(res.Values))
		}
		f, ok := res.Values[0][0].(float64)
		if !ok {
			return fmt.Sprintf("account %d: balance %v", id, res.Values[0][0])
		}
		b := int(f)
		if b < 0 {
			return fmt.Sprintf("account %d is overdrawn: %d", id, b)
		}
		balances = append(balances, b)
		total += b
	}
	if total != bankAccounts*bankOpening {
		return fmt.Sprintf("balances %v add up to %d, not %d", balances, total, bankAccounts*bankOpening)
	}
	return ""
}

// finish stops the clients and fails the test for every read that broke the invariant, and when too little
// happened for the run to mean anything.
func (w *bankWorkload) finish(t *testing.T) {
	t.Helper()
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("bank operations: %v", w.counts)
	for _, b := range w.bad {
		t.Errorf("bank read broke the invariant: %s", b)
	}
	reads := 0
	for _, level := range []string{"none", "weak", "linearizable", "strong"} {
		reads += w.counts["read "+level]
	}
	if w.counts["transfer ok"] < 20 || reads < 20 {
		t.Errorf("too few bank operations to say anything: %v", w.counts)
	}
}

// waitBank waits until n more transfers succeeded.
func (w *bankWorkload) waitTransfers(t *testing.T, what string, n int) {
	t.Helper()
	get := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.counts["transfer ok"]
	}
	target := get() + n
	defer func() {
		if t.Failed() {
			w.mu.Lock()
			t.Logf("bank operations so far: %v", w.counts)
			w.mu.Unlock()
		}
	}()
	cluster.Eventually(t, wait, fmt.Sprintf("%d transfers %s", n, what), func() bool { return get() >= target })
}

// The bank invariant holds at every read level on every node while the leader is killed and a follower is
// paused and resumed, and the nodes end with the same balances.
func TestBank_InvariantUnderFaults(t *testing.T) {
	c := cluster.Start(t, 3)
	w := startBank(t, c, 4, rand.Uint64())
	w.waitTransfers(t, "before the faults", 100)
	leader := c.Leader(t, wait)
	leader.Kill()
	c.Leader(t, wait)
	w.waitTransfers(t, "after the leader was killed", 100)
	leader.Start()
	leader.WaitReady(t, wait)
	var follower *cluster.Node
	for _, n := range c.All() {
		if n != c.Leader(t, wait) {
			follower = n
			break
		}
	}
	follower.Pause()
	w.waitTransfers(t, "with a follower paused", 100)
	follower.Resume()
	follower.WaitReady(t, wait)
	w.waitTransfers(t, "after the follower resumed", 100)
	w.finish(t)

	idx := writeRetry(t, c, "CREATE TABLE IF NOT EXISTS bank_done(x)")
	want := tableHash(t, c.Leader(t, wait), idx)
	for _, n := range c.All() {
		if got := tableHash(t, n, idx); got != want {
			t.Errorf("%s's tables differ from the leader's", n.ID)
		}
	}
}

// The invariant check is not vacuous: half a transfer, a missing account and an overdraft are each caught.
func TestBank_CheckerCatchesBrokenReads(t *testing.T) {
	read := func(balances ...int) cluster.DataResponse {
		var d cluster.DataResponse
		for _, b := range balances {
			d.Results = append(d.Results, cluster.Result{Values: [][]any{{float64(b)}}})
		}
		return d
	}
	if msg := bankInvariant(read(100, 100, 100, 100, 100, 100)); msg != "" {
		t.Fatalf("a consistent read was flagged: %s", msg)
	}
	for name, d := range map[string]cluster.DataResponse{
		"half a transfer":   read(70, 100, 100, 100, 100, 100),
		"a missing account": read(100, 100, 100, 100, 200),
		"an overdraft":      read(-10, 110, 100, 100, 100, 200),
	} {
		if bankInvariant(d) == "" {
			t.Errorf("%s was not caught", name)
		}
	}
}
