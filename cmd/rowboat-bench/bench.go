package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rowboatdb/rowboat/internal/rawhttp"
)

// Scenario names accepted by -scenarios.
const (
	scenarioInsert = "insert" // single-row INSERTs through the leader
	scenarioBatch  = "batch"  // one request carrying many INSERTs
	scenarioRead   = "read"   // point SELECTs at every read level, on the leader and on a follower
	scenarioSpread = "spread" // linearizable point SELECTs spread over every non-leader node given
)

var allScenarios = []string{scenarioInsert, scenarioBatch, scenarioRead, scenarioSpread}

// config is everything a run needs; flags fill it in main, tests build it directly.
type config struct {
	URLs       []string
	Duration   time.Duration // per measured run
	Scenarios  map[string]bool
	Table      string
	Timeout    time.Duration // per request
	InsertConc []int
	BatchConc  int
	BatchSize  int
	ReadConc   int
	ReadLevels []string
	SeedRows   int           // rows inserted before the reads when the write scenarios wrote none
	ErrBackoff time.Duration // pause after a failed request, so a down node is not hammered in a hot loop
	Progress   io.Writer     // one line per finished run, and discovery notes
	// NetHTTP sends every request through Go's net/http client instead of the lean one (package rawhttp). It costs
	// the shared machine more CPU per request, so the server gets less: figures come out lower.
	NetHTTP bool
	// PIDs are the server processes, on this machine, whose CPU each run accounts per request (see cpuMeter).
	PIDs []int
}

func (c *config) maxConc() int {
	m := max(c.BatchConc, c.ReadConc, 1)
	for _, n := range c.InsertConc {
		m = max(m, n)
	}
	return m
}

// check is the row-count cross-check run after the writes.
type check struct {
	Expected int64 `json:"expected"` // rows acknowledged as written
	// Uncertain counts write requests whose outcome the bench cannot know (transport error, timeout, 5xx):
	// they may or may not have been applied, and explain a count above Expected.
	Uncertain     int64  `json:"uncertain_requests"`
	Leader        int64  `json:"leader_strong"`
	Follower      *int64 `json:"follower_linearizable,omitempty"`
	FollowerError string `json:"follower_error,omitempty"`
	OK            bool   `json:"ok"`
	Message       string `json:"message"`
}

// report is what a run produces; -json writes it as is.
type report struct {
	URLs     []string `json:"urls"`
	Leader   string   `json:"leader"`
	Follower string   `json:"follower,omitempty"`
	Duration string   `json:"duration"`
	Client   string   `json:"client"` // "lean" or "net/http": which HTTP client sent the requests
	Results  []Result `json:"results"`
	Check    *check   `json:"check,omitempty"`
}

// errCheckFailed is returned by bench when the row count after the writes is not the acknowledged one.
var errCheckFailed = errors.New("row count check failed")

type bench struct {
	cfg    config
	c      *client
	leader node
	// written is the number of rows the server acknowledged applying (rows_affected of every statement
	// without an error in a 200 response); uncertain counts write requests with an unknown outcome.
	written   atomic.Int64
	uncertain atomic.Int64
	seq       atomic.Int64 // key generator
	minID     int64        // id range the reads draw from
	maxID     int64
}

// run benchmarks the cluster at cfg.URLs and returns the report; the error is errCheckFailed if the
// cross-check failed (the report is complete then), or what stopped the run.
func run(ctx context.Context, cfg config) (*report, error) {
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	hc := newHTTPClient(cfg.maxConc(), cfg.Timeout)
	defer hc.CloseIdleConnections()
	b := &bench{cfg: cfg, c: &client{http: hc}}
	if !cfg.NetHTTP {
		b.c.raw = rawhttp.New(cfg.Timeout)
		defer b.c.raw.CloseIdle()
	}
	leader, follower := discover(ctx, hc, cfg.URLs, progress)
	b.leader = leader
	rep := &report{URLs: cfg.URLs, Leader: leader.label(), Duration: cfg.Duration.String(), Client: "lean"}
	if cfg.NetHTTP {
		rep.Client = "net/http"
	}
	if follower.URL != "" {
		rep.Follower = follower.label()
	}
	progress("leader %s, follower %s", rep.Leader, orDash(rep.Follower))

	t := cfg.Table
	setup := []any{
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s(id INTEGER PRIMARY KEY, k TEXT, v INTEGER)", t),
		fmt.Sprintf("DELETE FROM %s", t),
	}
	if res := b.c.execute(ctx, leader.URL, setup); res.err != nil {
		return rep, fmt.Errorf("setup on %s: %w", leader.URL, res.err)
	}

	record := func(r Result) {
		rep.Results = append(rep.Results, r)
		cpu := ""
		if len(cfg.PIDs) > 0 {
			cpu = fmt.Sprintf("  CPU µs/op server %s bench %s", microseconds(r.ServerCPUus), microseconds(r.ClientCPUus))
		}
		progress("%-6s %-24s %-12s conc=%-3d %8.0f ops/s  p50 %.2fms  p99 %.2fms  errors %d%s",
			r.Scenario, r.Node, orDash(r.Level), r.Concurrency, r.OpsPerSec, r.P50Ms, r.P99Ms, r.Errors, cpu)
	}

	insertSQL := fmt.Sprintf("INSERT INTO %s(k, v) VALUES(?, ?)", t)
	insertStmt := func() []any {
		n := b.seq.Add(1)
		return []any{insertSQL, fmt.Sprintf("key-%d", n), n}
	}
	if cfg.Scenarios[scenarioInsert] {
		for _, conc := range cfg.InsertConc {
			r := b.measure(ctx, Result{Scenario: scenarioInsert, Node: leader.label(), Concurrency: conc, isWrite: true},
				func(ctx context.Context) call { return b.write(ctx, []any{insertStmt()}) })
			record(r)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
		}
	}
	batch := func(ctx context.Context) call {
		stmts := make([]any, cfg.BatchSize)
		for i := range stmts {
			stmts[i] = insertStmt()
		}
		return b.write(ctx, stmts)
	}
	if cfg.Scenarios[scenarioBatch] {
		r := b.measure(ctx, Result{Scenario: scenarioBatch, Node: leader.label(), Concurrency: cfg.BatchConc, isWrite: true}, batch)
		record(r)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	if (cfg.Scenarios[scenarioRead] || cfg.Scenarios[scenarioSpread]) && b.written.Load() == 0 && cfg.SeedRows > 0 {
		for b.written.Load() < int64(cfg.SeedRows) {
			if res := batch(ctx); res.err != nil {
				return rep, fmt.Errorf("seed rows for the reads: %w", res.err)
			}
		}
		progress("seeded %d rows for the reads", b.written.Load())
	}

	chk := b.crossCheck(ctx, follower)
	rep.Check = chk
	progress("check: %s", chk.Message)

	if cfg.Scenarios[scenarioRead] {
		targets := []node{leader}
		if follower.URL != "" {
			targets = append(targets, follower)
		} else {
			progress("no follower: reads run on the leader only")
		}
		selectSQL := fmt.Sprintf("SELECT * FROM %s WHERE id = ?", t)
		for _, target := range targets {
			for _, level := range cfg.ReadLevels {
				r := b.measure(ctx, Result{Scenario: scenarioRead, Node: target.label(), Level: level, Concurrency: cfg.ReadConc},
					func(ctx context.Context) call {
						return b.c.query(ctx, target.URL, level, []any{[]any{selectSQL, b.randomID()}})
					})
				record(r)
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
			}
		}
	}
	if cfg.Scenarios[scenarioSpread] {
		// Every node in -urls but the leader (followers and read replicas) serves its share of linearizable
		// reads, ReadConc clients' worth each: the cluster's total read capacity, and whether a replica adds to it.
		var targets []string
		for _, u := range cfg.URLs {
			if u != leader.URL {
				targets = append(targets, u)
			}
		}
		if len(targets) == 0 {
			progress("no follower: the spread scenario needs one")
		} else {
			selectSQL := fmt.Sprintf("SELECT * FROM %s WHERE id = ?", t)
			var next atomic.Int64
			r := b.measure(ctx, Result{Scenario: scenarioSpread, Node: fmt.Sprintf("%d non-leaders", len(targets)),
				Level: "linearizable", Concurrency: cfg.ReadConc * len(targets)},
				func(ctx context.Context) call {
					u := targets[int(next.Add(1))%len(targets)]
					return b.c.query(ctx, u, "linearizable", []any{[]any{selectSQL, b.randomID()}})
				})
			record(r)
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
		}
	}
	if !chk.OK {
		return rep, errCheckFailed
	}
	return rep, nil
}

// write executes stmts on the leader and accounts for the rows the server says it applied.
func (b *bench) write(ctx context.Context, stmts []any) call {
	res := b.c.execute(ctx, b.leader.URL, stmts)
	b.written.Add(res.written)
	if res.err != nil && res.uncertain() {
		b.uncertain.Add(1)
	}
	return res
}

func (b *bench) randomID() int64 {
	if b.maxID < b.minID || b.maxID == 0 {
		return 1
	}
	return b.minID + rand.Int64N(b.maxID-b.minID+1)
}

// crossCheck compares the table's row count, read at level strong on the leader (and linearizable on the
// follower, which must agree), with the rows acknowledged, and learns the id range the reads draw from.
func (b *bench) crossCheck(ctx context.Context, follower node) *check {
	chk := &check{Expected: b.written.Load(), Uncertain: b.uncertain.Load()}
	sql := fmt.Sprintf("SELECT COUNT(*), MIN(id), MAX(id) FROM %s", b.cfg.Table)
	count, lo, hi, err := b.countRows(ctx, b.leader.URL, "strong", sql)
	if err != nil {
		chk.Message = fmt.Sprintf("FAILED: cannot count rows on the leader: %v", err)
		return chk
	}
	chk.Leader, b.minID, b.maxID = count, lo, hi
	if follower.URL != "" {
		n, _, _, err := b.countRows(ctx, follower.URL, "linearizable", sql)
		if err != nil {
			chk.FollowerError = err.Error()
		} else {
			chk.Follower = &n
		}
	}
	chk.OK = chk.Leader == chk.Expected && chk.FollowerError == "" && (chk.Follower == nil || *chk.Follower == chk.Expected)
	switch {
	case chk.OK:
		chk.Message = fmt.Sprintf("OK: %d rows acknowledged, %d counted at level strong on the leader", chk.Expected, chk.Leader)
		if chk.Follower != nil {
			chk.Message += " and at level linearizable on the follower"
		}
	case chk.Leader != chk.Expected:
		chk.Message = fmt.Sprintf("FAILED: %d rows acknowledged, but the leader counts %d at level strong", chk.Expected, chk.Leader)
		if chk.Uncertain > 0 {
			chk.Message += fmt.Sprintf(" (%d write requests had an unknown outcome)", chk.Uncertain)
		}
	case chk.FollowerError != "":
		chk.Message = fmt.Sprintf("FAILED: leader counts %d as acknowledged, but the follower's linearizable count failed: %s", chk.Leader, chk.FollowerError)
	default:
		chk.Message = fmt.Sprintf("FAILED: leader counts %d as acknowledged, but the follower counts %d at level linearizable", chk.Leader, *chk.Follower)
	}
	return chk
}

// countRows runs "SELECT COUNT(*), MIN(id), MAX(id)" as a GET query and returns the three numbers (MIN and
// MAX are 0 for an empty table, where SQLite says NULL).
func (b *bench) countRows(ctx context.Context, base, level, sql string) (count, lo, hi int64, err error) {
	res := b.c.queryGET(ctx, base, level, sql)
	if res.err != nil {
		return 0, 0, 0, res.err
	}
	if len(res.results[0].Values) != 1 || len(res.results[0].Values[0]) != 3 {
		return 0, 0, 0, fmt.Errorf("unexpected result shape: %v", res.results[0].Values)
	}
	row := res.results[0].Values[0]
	var nums [3]int64
	for i, v := range row {
		switch x := v.(type) {
		case float64:
			nums[i] = int64(x)
		case nil:
		default:
			return 0, 0, 0, fmt.Errorf("column %d: want a number, got %T %v", i, v, v)
		}
	}
	return nums[0], nums[1], nums[2], nil
}

// uncertain reports whether a failed write may nonetheless have been applied: the request may have reached
// the leader and the answer was lost (transport error, timeout) or unreadable (5xx, a bad body).
func (c call) uncertain() bool {
	if c.err == nil {
		return false
	}
	switch {
	case c.status == 0: // never got an answer
		return true
	case c.status == http.StatusOK: // a statement error: the rest is accounted for in written
		return c.results == nil
	case c.status >= 500 && c.status != http.StatusServiceUnavailable:
		return true
	}
	return false
}

// measure runs op from r.Concurrency workers until cfg.Duration has passed and returns r with its numbers filled in.
// Requests in flight at the deadline are allowed to finish (cancelling them would turn writes into unknown
// outcomes); the elapsed time includes them.
func (b *bench) measure(ctx context.Context, r Result, op func(context.Context) call) Result {
	conc := r.Concurrency
	type tally struct {
		ops, rows, errs int64
		lat             []time.Duration
		firstErr        error
	}
	tallies := make([]tally, conc)
	meter := cpuMeter{pids: b.cfg.PIDs}
	cpuBefore := meter.sample()
	start := time.Now()
	deadline := start.Add(b.cfg.Duration)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				res := op(ctx)
				d := time.Since(t0)
				if res.err != nil {
					t.errs++
					if t.firstErr == nil {
						t.firstErr = res.err
					}
					sleepCtx(ctx, b.cfg.ErrBackoff)
					continue
				}
				t.ops++
				t.rows += res.written
				t.lat = append(t.lat, d)
			}
		}(&tallies[w])
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpuAfter := meter.sample()
	var lat []time.Duration
	for _, t := range tallies {
		r.Ops += t.ops
		r.Rows += t.rows
		r.Errors += t.errs
		lat = append(lat, t.lat...)
		if r.FirstError == "" && t.firstErr != nil {
			r.FirstError = t.firstErr.Error()
		}
	}
	summarize(&r, lat, elapsed)
	meter.perOp(&r, cpuBefore, cpuAfter)
	return r
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
