package system

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
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

// A register workload — writes through any node, linearizable reads served by every node (followers read
// locally after a read index) — with the leader killed half way, checked for linearizability with porcupine.
// A write whose outcome is unknown may take effect any time after it was sent.
func TestLinearizable_RegisterUnderLeaderKill(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	leader.Execute(t, "", "CREATE TABLE reg(k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		next    atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		counts  = map[string]int{}
	)
	record := func(op porcupine.Operation, kind string) {
		mu.Lock()
		defer mu.Unlock()
		counts[kind]++
		if kind != "failed" {
			history = append(history, op)
		}
	}
	client := func(id int) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			nodes := []*cluster.Node{}
			for _, n := range c.All() {
				if n.Running() {
					nodes = append(nodes, n)
				}
			}
			n := nodes[rand.IntN(len(nodes))]
			key := rand.IntN(3)
			if rand.IntN(2) == 0 {
				v := next.Add(1)
				call := now()
				r, err := n.Do(http.MethodPost, "/db/execute?timeout=3s", []any{[]any{"INSERT OR REPLACE INTO reg(k, v) VALUES(?, ?)", key, v}})
				op := porcupine.Operation{ClientId: id, Input: registerInput{Key: key, Write: true, Value: v}, Call: call, Return: now()}
				switch {
				case err == nil && r.Status == http.StatusOK:
					record(op, "write ok")
				case err == nil && r.Status == http.StatusServiceUnavailable && (codeOf(r) == "no_leader" || codeOf(r) == "not_leader"):
					record(op, "failed") // nothing was applied
				default:
					op.Return = math.MaxInt64 // may take effect at any time after the call
					record(op, "write unknown")
				}
				continue
			}
			call := now()
			d, resp, err := tryQuery(n, fmt.Sprintf("SELECT v FROM reg WHERE k = %d", key), "level=linearizable&timeout=3s")
			ret := now()
			if err != nil || resp.Status != http.StatusOK {
				record(porcupine.Operation{}, "failed")
				continue
			}
			var v int64
			if vals := d.Results[0].Values; len(vals) == 1 {
				v = int64(vals[0][0].(float64))
			}
			record(porcupine.Operation{ClientId: id, Input: registerInput{Key: key}, Output: v, Call: call, Return: ret}, "read")
		}
	}
	for i := range 6 {
		wg.Add(1)
		go client(i)
	}
	done := func() int {
		mu.Lock()
		defer mu.Unlock()
		return counts["read"] + counts["write ok"]
	}
	phase := func(what string, n int) {
		target := done() + n
		cluster.Eventually(t, wait, fmt.Sprintf("%d operations %s", n, what), func() bool { return done() >= target })
	}
	phase("before the fault", 500)
	leader.Kill()
	c.Leader(t, wait)
	phase("after the kill", 500)
	leader.Start()
	leader.WaitReady(t, wait)
	phase("after the old leader rejoined", 500)
	close(stop)
	wg.Wait()

	t.Logf("operations: %v", counts)
	if counts["read"] < 100 || counts["write ok"] < 50 {
		t.Fatalf("too few operations to say anything: %v", counts)
	}
	res := porcupine.CheckOperationsTimeout(registerModel, history, 60*time.Second)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Logf("the checker timed out: no verdict")
	default:
		t.Fatalf("history of %d operations is not linearizable", len(history))
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
