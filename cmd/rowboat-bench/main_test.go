package main

import (
	"github.com/rowboatdb/rowboat/internal/nodeurl"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tt := range []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample p50", ms(7), 50, 7 * time.Millisecond},
		{"one sample p99", ms(7), 99, 7 * time.Millisecond},
		{"two samples p50", ms(1, 2), 50, 1 * time.Millisecond},
		{"two samples p99", ms(1, 2), 99, 2 * time.Millisecond},
		{"odd count median", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"1..100 p50", hundred, 50, 50 * time.Millisecond},
		{"1..100 p99", hundred, 99, 99 * time.Millisecond},
		{"1..100 p100", hundred, 100, 100 * time.Millisecond},
		{"1..100 p0 clamps to the minimum", hundred, 0, 1 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.samples, tt.p); got != tt.want {
				t.Fatalf("percentile(p%v)=%v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	r := Result{Ops: 4, Rows: 400, isWrite: true}
	summarize(&r, []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}, 2*time.Second)
	if got, want := r.OpsPerSec, 2.0; got != want {
		t.Fatalf("OpsPerSec=%v, want %v", got, want)
	}
	if got, want := r.RowsPerSec, 200.0; got != want {
		t.Fatalf("RowsPerSec=%v, want %v", got, want)
	}
	if got, want := r.P50Ms, 2.0; got != want {
		t.Fatalf("P50Ms=%v, want %v", got, want)
	}
	if got, want := r.P99Ms, 4.0; got != want {
		t.Fatalf("P99Ms=%v, want %v", got, want)
	}
	read := Result{Ops: 1}
	summarize(&read, []time.Duration{time.Millisecond}, time.Second)
	if read.RowsPerSec != 0 {
		t.Fatalf("read RowsPerSec=%v, want 0", read.RowsPerSec)
	}
}

func TestWriteTable(t *testing.T) {
	results := []Result{
		{Scenario: "insert", Node: "n1 127.0.0.1:4001", Concurrency: 16, OpsPerSec: 1234.4, RowsPerSec: 1234.4, P50Ms: 1.234, P99Ms: 12.5, Errors: 0, Ops: 10, isWrite: true},
		{Scenario: "read", Node: "n2 127.0.0.1:4011", Level: "linearizable", Concurrency: 16, OpsPerSec: 20000, P50Ms: 0.5, P99Ms: 2, Errors: 3, Ops: 10},
		{Scenario: "read", Node: "n3", Level: "none", Concurrency: 1, Errors: 5},
	}
	var b bytes.Buffer
	if err := writeTable(&b, results, false); err != nil {
		t.Fatal(err)
	}
	want := `| scenario | node              | level        | conc | ops/s | rows/s | p50 ms | p99 ms | errors |
| -------- | ----------------- | ------------ | ---: | ----: | -----: | -----: | -----: | -----: |
| insert   | n1 127.0.0.1:4001 | -            |   16 |  1234 |   1234 |   1.23 |  12.50 |      0 |
| read     | n2 127.0.0.1:4011 | linearizable |   16 | 20000 |      - |   0.50 |   2.00 |      3 |
| read     | n3                | none         |    1 |     0 |      - |      - |      - |      5 |
`
	if got := b.String(); got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestRoleFromStatus(t *testing.T) {
	for _, tt := range []struct {
		name, body, role, id string
		wantErr              bool
	}{
		{name: "rowboat", body: `{"id":"n1","role":"leader","term":2,"leader_id":"n1","members":[{"id":"n2","role":"follower"}]}`, role: "leader", id: "n1"},
		{name: "rowboat follower", body: `{"id":"n2","role":"follower"}`, role: "follower", id: "n2"},
		{name: "rqlite v8", body: `{"build":{"version":"v8.36.0"},"store":{"node_id":"3","raft":{"state":"Leader","term":"4"}}}`, role: "leader", id: "3"},
		{name: "rqlite follower", body: `{"store":{"raft":{"state":"Follower"}}}`, role: "follower"},
		{name: "neither", body: `{"foo":1}`, wantErr: true},
		{name: "not json", body: `<html>`, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			role, id, err := roleFromStatus([]byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("roleFromStatus=%q, want an error", role)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if role != tt.role || id != tt.id {
				t.Fatalf("roleFromStatus=(%q, %q), want (%q, %q)", role, id, tt.role, tt.id)
			}
		})
	}
}

func TestParseScenarios(t *testing.T) {
	got, err := parseScenarios("insert, READ")
	if err != nil {
		t.Fatal(err)
	}
	if !got[scenarioInsert] || !got[scenarioRead] || got[scenarioBatch] {
		t.Fatalf("parseScenarios=%v", got)
	}
	if got, _ := parseScenarios("all"); len(got) != len(allScenarios) {
		t.Fatalf("parseScenarios(all)=%v", got)
	}
	for _, bad := range []string{"", "insert,bogus"} {
		if _, err := parseScenarios(bad); err == nil {
			t.Fatalf("parseScenarios(%q): want an error", bad)
		}
	}
}

// fakeDB is a tiny in-memory rqlite-compatible server: enough SQL for the bench's statements, shared by the
// fake nodes so that every node sees every write, with faults to inject.
type fakeDB struct {
	mu      sync.Mutex
	rows    map[int64]string
	lastID  int64
	inserts int
	// failEvery makes every n-th INSERT a statement error (not applied); loseEvery makes every n-th INSERT
	// acknowledged but not stored: a lost write the cross-check must catch.
	failEvery, loseEvery int
	// reads counts point reads by node and level.
	reads map[string]int
}

func newFakeDB() *fakeDB { return &fakeDB{rows: map[int64]string{}, reads: map[string]int{}} }

func (db *fakeDB) readCount(node, level string) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.reads[node+"/"+level]
}

// fakeNode serves one node's HTTP API. statusBody is what GET /status answers; "" gives a 404.
func (db *fakeDB) fakeNode(name, statusBody string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		if statusBody == "" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(statusBody))
	})
	mux.HandleFunc("POST /db/execute", func(w http.ResponseWriter, r *http.Request) {
		stmts, ok := decodeStatements(w, r)
		if ok {
			db.answer(w, name, "", stmts)
		}
	})
	mux.HandleFunc("/db/query", func(w http.ResponseWriter, r *http.Request) {
		level := r.URL.Query().Get("level")
		switch level {
		case "", "none", "weak", "linearizable", "strong", "auto":
		default:
			http.Error(w, `{"error":"unknown level","code":"bad_request"}`, http.StatusBadRequest)
			return
		}
		var stmts []any
		switch r.Method {
		case http.MethodGet:
			stmts = []any{r.URL.Query().Get("q")}
		case http.MethodPost:
			var ok bool
			if stmts, ok = decodeStatements(w, r); !ok {
				return
			}
		default:
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		db.answer(w, name, level, stmts)
	})
	return mux
}

func decodeStatements(w http.ResponseWriter, r *http.Request) ([]any, bool) {
	var stmts []any
	if err := json.NewDecoder(r.Body).Decode(&stmts); err != nil {
		http.Error(w, `{"error":"bad json","code":"bad_request"}`, http.StatusBadRequest)
		return nil, false
	}
	return stmts, true
}

func (db *fakeDB) answer(w http.ResponseWriter, node, level string, stmts []any) {
	db.mu.Lock()
	results := make([]map[string]any, len(stmts))
	for i, s := range stmts {
		var sql string
		var args []any
		switch s := s.(type) {
		case string:
			sql = s
		case []any:
			sql, _ = s[0].(string)
			args = s[1:]
		}
		results[i] = db.exec(node, level, sql, args)
	}
	db.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"results": results})
}

// exec runs one statement; db.mu is held.
func (db *fakeDB) exec(node, level, sql string, args []any) map[string]any {
	switch sql {
	case "CREATE TABLE IF NOT EXISTS bench(id INTEGER PRIMARY KEY, k TEXT, v INTEGER)":
		return map[string]any{}
	case "DELETE FROM bench":
		n := len(db.rows)
		db.rows, db.lastID = map[int64]string{}, 0
		return map[string]any{"rows_affected": n}
	case "INSERT INTO bench(k, v) VALUES(?, ?)":
		if len(args) != 2 {
			return map[string]any{"error": "wrong number of arguments"}
		}
		db.inserts++
		if db.failEvery > 0 && db.inserts%db.failEvery == 0 {
			return map[string]any{"error": "UNIQUE constraint failed: bench.k"}
		}
		db.lastID++
		if db.loseEvery == 0 || db.inserts%db.loseEvery != 0 {
			db.rows[db.lastID] = args[0].(string)
		}
		return map[string]any{"last_insert_id": db.lastID, "rows_affected": 1}
	case "SELECT COUNT(*), MIN(id), MAX(id) FROM bench":
		var lo, hi any
		for id := range db.rows {
			if lo == nil || id < lo.(int64) {
				lo = id
			}
			if hi == nil || id > hi.(int64) {
				hi = id
			}
		}
		return map[string]any{"columns": []string{"COUNT(*)", "MIN(id)", "MAX(id)"}, "values": [][]any{{len(db.rows), lo, hi}}}
	case "SELECT * FROM bench WHERE id = ?":
		db.reads[node+"/"+level]++
		res := map[string]any{"columns": []string{"id", "k", "v"}, "types": []string{"integer", "text", "integer"}}
		if len(args) == 1 {
			if id, ok := args[0].(float64); ok {
				if k, ok := db.rows[int64(id)]; ok {
					res["values"] = [][]any{{int64(id), k, 0}}
				}
			}
		}
		return res
	}
	return map[string]any{"error": fmt.Sprintf("fake: unsupported statement %q", sql)}
}

// startFake starts one fake node per status body and returns their URLs ("host:port" form, as a user would
// type them, for the first).
func startFake(t testing.TB, db *fakeDB, statuses ...string) []string {
	t.Helper()
	var urls []string
	for i, st := range statuses {
		srv := httptest.NewServer(db.fakeNode(fmt.Sprintf("n%d", i+1), st))
		t.Cleanup(srv.Close)
		u := srv.URL
		if i == 0 {
			u = strings.TrimPrefix(u, "http://")
		}
		urls = append(urls, u)
	}
	return urls
}

func testConfig(t testing.TB, urls []string) config {
	t.Helper()
	cfg := defaultConfig()
	var err error
	if cfg.URLs, err = nodeurl.ParseList(strings.Join(urls, ",")); err != nil {
		t.Fatal(err)
	}
	cfg.Duration = 30 * time.Millisecond
	cfg.InsertConc = []int{1, 4}
	cfg.BatchConc, cfg.ReadConc = 4, 4
	cfg.BatchSize = 10
	cfg.SeedRows = 50
	cfg.ErrBackoff = time.Millisecond
	return cfg
}

func TestRun_Fake(t *testing.T) {
	const (
		rowboatLeader   = `{"id":"n1","role":"leader","term":2,"leader_id":"n1"}`
		rowboatFollower = `{"id":"%s","role":"follower","term":2,"leader_id":"n1"}`
		rqliteLeader    = `{"store":{"node_id":"2","raft":{"state":"Leader"}}}`
		rqliteFollower  = `{"store":{"node_id":"1","raft":{"state":"Follower"}}}`
	)
	levels := defaultConfig().ReadLevels

	t.Run("rowboat cluster", func(t *testing.T) {
		db := newFakeDB()
		urls := startFake(t, db, rowboatLeader, fmt.Sprintf(rowboatFollower, "n2"), fmt.Sprintf(rowboatFollower, "n3"))
		rep, err := run(context.Background(), testConfig(t, urls))
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if got, want := len(rep.Results), 2+1+2*len(levels)+1; got != want {
			t.Fatalf("%d results, want %d", got, want)
		}
		if spread := rep.Results[len(rep.Results)-1]; spread.Scenario != scenarioSpread || spread.Node != "2 non-leaders" {
			t.Errorf("last result %s on %s, want the spread over 2 non-leaders", spread.Scenario, spread.Node)
		}
		for _, r := range rep.Results {
			if r.Ops == 0 || r.Errors != 0 || r.OpsPerSec <= 0 || r.P99Ms < r.P50Ms {
				t.Errorf("%s %s %s conc=%d: ops=%d errors=%d ops/s=%v p50=%v p99=%v (first error %q)",
					r.Scenario, r.Node, r.Level, r.Concurrency, r.Ops, r.Errors, r.OpsPerSec, r.P50Ms, r.P99Ms, r.FirstError)
			}
		}
		if batch := rep.Results[2]; batch.Scenario != scenarioBatch || batch.Rows != 10*batch.Ops {
			t.Errorf("batch: scenario %q rows=%d ops=%d, want 10 rows per request", batch.Scenario, batch.Rows, batch.Ops)
		}
		if !strings.HasPrefix(rep.Leader, "n1 ") || !strings.HasPrefix(rep.Follower, "n2 ") {
			t.Errorf("leader %q follower %q, want n1 and n2", rep.Leader, rep.Follower)
		}
		chk := rep.Check
		if !chk.OK || chk.Leader != chk.Expected || chk.Expected != int64(len(db.rows)) || chk.Follower == nil {
			t.Fatalf("check %+v, fake holds %d rows", chk, len(db.rows))
		}
		var written int64
		for _, r := range rep.Results[:3] {
			written += r.Rows
		}
		if written != chk.Expected {
			t.Fatalf("rows of the write runs %d, check expected %d", written, chk.Expected)
		}
		for _, level := range levels {
			for _, n := range []string{"n1", "n2"} {
				if db.readCount(n, level) == 0 {
					t.Errorf("no point read reached %s at level %s", n, level)
				}
			}
			// The read scenario measures one follower; only the spread scenario, all linearizable, reaches n3.
			if level != "linearizable" && db.readCount("n3", level) != 0 {
				t.Errorf("point reads reached n3 at level %s; only one follower is measured", level)
			}
		}
		if db.readCount("n3", "linearizable") == 0 {
			t.Errorf("the spread scenario did not reach n3")
		}
	})

	t.Run("rqlite status, leader not first", func(t *testing.T) {
		db := newFakeDB()
		urls := startFake(t, db, rqliteFollower, rqliteLeader)
		cfg := testConfig(t, urls)
		cfg.Scenarios = map[string]bool{scenarioInsert: true}
		rep, err := run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if !strings.HasPrefix(rep.Leader, "2 ") || !strings.HasPrefix(rep.Follower, "1 ") {
			t.Fatalf("leader %q follower %q, want node 2 leading", rep.Leader, rep.Follower)
		}
		if !rep.Check.OK || rep.Check.Expected == 0 {
			t.Fatalf("check %+v", rep.Check)
		}
	})

	t.Run("statement errors are errors and are not counted as rows", func(t *testing.T) {
		db := newFakeDB()
		db.failEvery = 7
		urls := startFake(t, db, rowboatLeader, fmt.Sprintf(rowboatFollower, "n2"))
		cfg := testConfig(t, urls)
		cfg.Scenarios = map[string]bool{scenarioInsert: true, scenarioBatch: true}
		rep, err := run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		for _, r := range rep.Results {
			if r.Errors == 0 || !strings.Contains(r.FirstError, "UNIQUE constraint failed") {
				t.Errorf("%s conc=%d: errors=%d first error %q, want statement errors", r.Scenario, r.Concurrency, r.Errors, r.FirstError)
			}
		}
		// Failed batches still applied their other statements: the check must know.
		if !rep.Check.OK || rep.Check.Expected != int64(len(db.rows)) {
			t.Fatalf("check %+v, fake holds %d rows", rep.Check, len(db.rows))
		}
	})

	t.Run("lost writes fail the check", func(t *testing.T) {
		db := newFakeDB()
		db.loseEvery = 5
		urls := startFake(t, db, rowboatLeader)
		cfg := testConfig(t, urls)
		cfg.Scenarios = map[string]bool{scenarioInsert: true}
		rep, err := run(context.Background(), cfg)
		if !errors.Is(err, errCheckFailed) {
			t.Fatalf("run: %v, want errCheckFailed", err)
		}
		if rep.Check.OK || rep.Check.Leader >= rep.Check.Expected || !strings.HasPrefix(rep.Check.Message, "FAILED") {
			t.Fatalf("check %+v", rep.Check)
		}
	})

	t.Run("no status: first URL leads, reads alone seed rows", func(t *testing.T) {
		db := newFakeDB()
		urls := startFake(t, db, "", "")
		cfg := testConfig(t, urls)
		cfg.Scenarios = map[string]bool{scenarioRead: true}
		rep, err := run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if got, want := len(rep.Results), 2*len(levels); got != want {
			t.Fatalf("%d results, want %d", got, want)
		}
		if rep.Check.Expected < int64(cfg.SeedRows) || !rep.Check.OK {
			t.Fatalf("check %+v, want at least %d seeded rows", rep.Check, cfg.SeedRows)
		}
		if db.readCount("n1", "strong") == 0 || db.readCount("n2", "none") == 0 {
			t.Fatal("reads did not reach both nodes")
		}
	})

	t.Run("unreachable node", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		dead := srv.URL
		srv.Close()
		cfg := testConfig(t, []string{dead})
		rep, err := run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "setup") {
			t.Fatalf("run: %v, want a setup error", err)
		}
		if len(rep.Results) != 0 {
			t.Fatalf("results %v, want none", rep.Results)
		}
	})
}

func TestRealMain(t *testing.T) {
	db := newFakeDB()
	urls := startFake(t, db, `{"id":"n1","role":"leader"}`, `{"id":"n2","role":"follower"}`)
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"-urls", strings.Join(urls, ","), "-duration", "20ms", "-batch-size", "5", "-json", jsonPath, "-q"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"| scenario |", "| insert ", "| batch ", "| read ", "linearizable", "row count check: OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr with -q: %s", stderr.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Results), 3+1+8+1; got != want {
		t.Fatalf("json has %d results, want %d", got, want)
	}
	if rep.Check == nil || !rep.Check.OK {
		t.Fatalf("json check %+v", rep.Check)
	}

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"-scenarios", "nope"},
			{"-table", "bench; DROP TABLE x"},
			{"-urls", "ftp://x"},
			{"-duration", "0s"},
			{"stray"},
		} {
			var out, errOut bytes.Buffer
			if code := realMain(args, &out, &errOut); code != 2 {
				t.Errorf("realMain(%q)=%d, want 2 (stderr %s)", args, code, errOut.String())
			}
		}
	})

	t.Run("check failure exits 1", func(t *testing.T) {
		db := newFakeDB()
		db.loseEvery = 3
		urls := startFake(t, db, `{"id":"n1","role":"leader"}`)
		var out, errOut bytes.Buffer
		code := realMain([]string{"-urls", urls[0], "-duration", "20ms", "-scenarios", "insert", "-q"}, &out, &errOut)
		if code != 1 || !strings.Contains(out.String(), "row count check: FAILED") {
			t.Fatalf("exit %d, want 1 with a failed check\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
		}
	})
}
