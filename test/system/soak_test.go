package system

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
	"github.com/rowboatdb/rowboat/internal/faultproxy"
)

// TestSoak runs only when ROWBOAT_SOAK is set to a duration (for example ROWBOAT_SOAK=5m go test -count=1 -run
// Soak -v -timeout 0 ./test/system; -count=1 because go test's cache does not know that the rowboatd these
// tests build from source has changed): five voters (ROWBOAT_SOAK_NODES=3 for three, where a follower's
// read-index request stands in for the leader's heartbeat round), every Raft link behind a fault proxy, a random schedule of
// faults (kill -9 and restart, SIGSTOP/SIGCONT, isolation, one-way cuts, delays) drawn from
// ROWBOAT_SOAK_SEED (random if unset; the seed is printed so a failing run can be replayed), while a register
// workload (checked for linearizability), a set workload (acknowledged writes must all survive), a bank
// workload (every read at every level sees the full total) and an append workload (sessions keep
// read-your-writes and monotonic reads at level none; every read is a prefix of the final order) run.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("ROWBOAT_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set ROWBOAT_SOAK=<duration> to run the soak test")
	}
	seed := rand.Uint64()
	if s, err := strconv.ParseUint(os.Getenv("ROWBOAT_SOAK_SEED"), 10, 64); err == nil {
		seed = s
	}
	nodes := 5
	if v := os.Getenv("ROWBOAT_SOAK_NODES"); v != "" {
		if nodes, err = strconv.Atoi(v); err != nil || nodes < 3 {
			t.Fatalf("ROWBOAT_SOAK_NODES=%q: want a number of voters, at least 3", v)
		}
	}
	t.Logf("soak for %s with %d nodes and seed %d (ROWBOAT_SOAK_SEED=%d replays the fault schedule)", d, nodes, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	// Small snapshot settings: the log is compacted often, so a node that was down or cut off for a while
	// catches up by installing a snapshot, under faults.
	c := cluster.StartWithFaults(t, nodes, "--snapshot-threshold=256", "--snapshot-interval=1s", "--trailing-logs=64")
	reg := startRegister(t, c, 4, 4, seed+1)
	l := startLoad(t, c, 3)
	bank := startBank(t, c, 2, seed+2)
	lists := startAppend(t, c, 2, 3, seed+3)
	start := time.Now()

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
	reg.halt() // the workloads stop before the nodes' tables are compared
	bank.finish(t)
	lists.finish(t)
	acked, idx := l.finish(t)
	checkAcked(t, c, l, idx)
	want := tableHash(t, c.Leader(t, wait), idx)
	for _, n := range c.All() {
		if got := tableHash(t, n, idx); got != want {
			t.Errorf("%s's tables differ from the leader's after the soak", n.ID)
		}
	}
	t.Logf("faults: %v; set: %d acknowledged, failed attempts %v", faults, len(acked), l.fails)
	elections, installs := 0, 0
	for _, n := range c.All() {
		log := n.Log()
		elections += strings.Count(log, `msg="leader ready"`)
		installs += strings.Count(log, `msg="database restored from snapshot"`)
	}
	t.Logf("leaders elected: %d; snapshots installed on a lagging node: %d", elections, installs)
	reg.finish(t, 5*time.Minute) // fails the test if the register history is not linearizable
	if t.Failed() {
		t.Logf("replay with ROWBOAT_SOAK_SEED=%d", seed)
	}
}
