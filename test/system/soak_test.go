package system

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/rowboatdb/rowboat/internal/cluster"
	"github.com/rowboatdb/rowboat/internal/faultproxy"
)

// TestSoak runs only when ROWBOAT_SOAK is set to a duration (for example ROWBOAT_SOAK=5m go test -run Soak
// -v -timeout 0 ./test/system): five nodes, every Raft link behind a fault proxy, a random schedule of
// faults (kill -9 and restart, SIGSTOP/SIGCONT, isolation, one-way cuts, delays) drawn from
// ROWBOAT_SOAK_SEED (random if unset; the seed is printed so a failing run can be replayed), while a register
// workload (checked for linearizability) and a set workload (acknowledged writes must all survive) run.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("ROWBOAT_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set ROWBOAT_SOAK=<duration> to run the soak test")
	}
	seed := rand.Uint64()
	if s, err := strconv.ParseUint(os.Getenv("ROWBOAT_SOAK_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("soak for %s with seed %d (ROWBOAT_SOAK_SEED=%d replays the fault schedule)", d, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	c := cluster.StartWithFaults(t, 5)
	leader := c.Leader(t, wait)
	leader.Execute(t, "", "CREATE TABLE reg(k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
	l := startLoad(t, c, 3)

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		next    atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		ops     = map[string]int{}
	)
	for id := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed+uint64(id)+1, 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				var nodes []*cluster.Node
				for _, n := range c.All() {
					if n.Running() {
						nodes = append(nodes, n)
					}
				}
				if len(nodes) == 0 {
					continue
				}
				n := nodes[r.IntN(len(nodes))]
				key := r.IntN(4)
				var op porcupine.Operation
				kind := ""
				if r.IntN(2) == 0 {
					v := next.Add(1)
					call := now()
					resp, err := n.Do(http.MethodPost, "/db/execute?timeout=2s", []any{[]any{"INSERT OR REPLACE INTO reg VALUES(?, ?)", key, v}})
					op = porcupine.Operation{ClientId: id, Input: registerInput{Key: key, Write: true, Value: v}, Call: call, Return: now()}
					switch {
					case err == nil && resp.Status == http.StatusOK:
						kind = "ok"
					case err == nil && resp.Status == http.StatusServiceUnavailable && (codeOf(resp) == "no_leader" || codeOf(resp) == "not_leader"):
						kind = "failed"
					default:
						op.Return, kind = math.MaxInt64, "unknown"
					}
				} else {
					call := now()
					dr, resp, err := tryQuery(n, fmt.Sprintf("SELECT v FROM reg WHERE k = %d", key), "level=linearizable&timeout=2s")
					ret := now()
					if err != nil || resp.Status != http.StatusOK {
						kind = "failed"
					} else {
						var v int64
						if vals := dr.Results[0].Values; len(vals) == 1 {
							v = int64(vals[0][0].(float64))
						}
						op = porcupine.Operation{ClientId: id, Input: registerInput{Key: key}, Output: v, Call: call, Return: ret}
						kind = "ok"
					}
				}
				mu.Lock()
				ops[kind]++
				if kind != "failed" {
					history = append(history, op)
				}
				mu.Unlock()
			}
		}()
	}

	// The fault schedule: one fault at a time, held for a random while, then healed.
	faults := map[string]int{}
	for time.Since(start) < d {
		nodes := c.All()
		victim := nodes[rng.IntN(len(nodes))]
		other := nodes[rng.IntN(len(nodes))]
		hold := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		kind := []string{"kill", "pause", "isolate", "one-way", "delay", "none"}[rng.IntN(6)]
		faults[kind]++
		switch kind {
		case "kill":
			victim.Kill()
			time.Sleep(hold)
			victim.Start()
		case "pause":
			victim.Pause()
			time.Sleep(hold)
			victim.Resume()
		case "isolate":
			c.Net.Isolate(victim.ID)
			time.Sleep(hold)
			c.Net.HealAll()
		case "one-way":
			if victim != other {
				c.Link(victim, other).SetMode(faultproxy.Mode{Cut: true})
			}
			time.Sleep(hold)
			c.Net.HealAll()
		case "delay":
			for _, o := range nodes {
				if o != victim {
					c.Link(victim, o).SetMode(faultproxy.Mode{Delay: time.Duration(20+rng.IntN(200)) * time.Millisecond})
				}
			}
			time.Sleep(hold)
			c.Net.HealAll()
		default:
			time.Sleep(hold)
		}
		// Let the cluster recover before the next fault.
		for _, n := range c.All() {
			n.WaitReady(t, wait)
		}
	}
	close(stop)
	wg.Wait()
	acked, idx := l.finish(t)
	checkAcked(t, c, acked, idx)
	want := tableHash(t, c.Leader(t, wait), idx)
	for _, n := range c.All() {
		if got := tableHash(t, n, idx); got != want {
			t.Errorf("%s's tables differ from the leader's after the soak", n.ID)
		}
	}
	t.Logf("faults: %v; register operations: %v; set: %d acknowledged, failed attempts %v", faults, ops, len(acked), l.fails)
	switch porcupine.CheckOperationsTimeout(registerModel, history, 5*time.Minute) {
	case porcupine.Ok:
		t.Logf("register history of %d operations is linearizable", len(history))
	case porcupine.Unknown:
		t.Logf("the linearizability checker timed out on %d operations: no verdict", len(history))
	default:
		t.Fatalf("register history is NOT linearizable (seed %d)", seed)
	}
}
