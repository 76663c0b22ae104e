package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeNode is an HTTP server that answers like a rowboat node, as its handler says, and records what it got.
type fakeNode struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []string // "METHOD /path?query"
}

func newFakeNode(tb testing.TB, h http.HandlerFunc) *fakeNode {
	tb.Helper()
	f := &fakeNode{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		h(w, r)
	}))
	tb.Cleanup(f.Close)
	return f
}

// addr is host:port.
func (f *fakeNode) addr() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *fakeNode) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reqs...)
}

// deadAddr is the address of a server that is gone: connections are refused.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return strings.TrimPrefix(s.URL, "http://")
}

func writeJSONAnswer(w http.ResponseWriter, status int, index uint64, body string) {
	w.Header().Set("Content-Type", "application/json")
	if index > 0 {
		w.Header().Set("X-Rowboat-Index", fmt.Sprint(index))
		w.Header().Set("X-Rowboat-Served-By", "n1")
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// okAnswer answers a write with raft_index 7 and a read with one row at index 7.
func okAnswer(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/db/execute" {
		writeJSONAnswer(w, 200, 7, `{"results":[{"last_insert_id":1,"rows_affected":1}],"raft_index":7}`)
		return
	}
	writeJSONAnswer(w, 200, 7, `{"results":[{"columns":["x"],"types":["integer"],"values":[[1]]}]}`)
}

func failWith(status int, code string, retryAfter bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter {
			w.Header().Set("Retry-After", "1")
		}
		writeJSONAnswer(w, status, 0, fmt.Sprintf(`{"error":"failed with %s","code":%q}`, code, code))
	}
}

// hangUp reads the request and closes the connection without answering: it was delivered, its outcome unknown.
func hangUp(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func newTestClient(t *testing.T, hosts ...string) (*Client, *strings.Builder) {
	t.Helper()
	notes := &strings.Builder{}
	c, err := NewClient(strings.Join(hosts, ","), "linearizable", 2*time.Second, notes)
	if err != nil {
		t.Fatal(err)
	}
	return c, notes
}

func TestClient_SessionBookmark(t *testing.T) {
	var mu sync.Mutex
	answers := []struct {
		index uint64
		body  string
	}{
		{3, `{"results":[{"columns":["x"],"types":["integer"],"values":[[1]]}]}`},
		{9, `{"results":[{"last_insert_id":1,"rows_affected":1}],"raft_index":9}`},
		{5, `{"results":[{"columns":["x"],"types":["integer"],"values":[[1]]}]}`}, // a node behind the bookmark
		{10, `{"results":[{"error":"UNIQUE constraint failed: t.id"}],"raft_index":10}`},
		{10, `{"results":[{"columns":["x"],"types":["integer"],"values":[[1]]}]}`},
	}
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a := answers[0]
		answers = answers[1:]
		mu.Unlock()
		writeJSONAnswer(w, 200, a.index, a.body)
	})
	c, _ := newTestClient(t, f.addr())
	ctx := context.Background()
	steps := []struct {
		sql          string
		wantBookmark uint64
	}{
		{"SELECT 1", 3},
		{"INSERT INTO t VALUES(1)", 9},
		{"SELECT 1", 9}, // never goes back
		{"INSERT INTO t VALUES(1)", 10},
	}
	for _, st := range steps {
		if _, err := c.Exec(ctx, st.sql); err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
		if got := c.Bookmark(); got != st.wantBookmark {
			t.Fatalf("after %s: Bookmark() = %d, want %d", st.sql, got, st.wantBookmark)
		}
	}
	c.ResetBookmark()
	if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /db/request?blob_array=&level=linearizable&timeout=2s",             // no bookmark yet
		"POST /db/execute?blob_array=&timeout=2s",                                // writes carry none
		"POST /db/request?blob_array=&level=linearizable&min_index=9&timeout=2s", // the bookmark from the write
		"POST /db/execute?blob_array=&timeout=2s",
		"POST /db/request?blob_array=&level=linearizable&timeout=2s", // after reset
	}
	if got := f.requests(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestClient_Failover(t *testing.T) {
	for _, tc := range []struct {
		name        string
		sql         string
		first       http.HandlerFunc // nil: the first node refuses connections
		wantSecond  int              // requests the second node gets
		wantUnknown bool
		wantCode    string
	}{
		{"read after a refused connection", "SELECT 1", nil, 1, false, ""},
		{"write after a refused connection", "INSERT INTO t VALUES(1)", nil, 1, false, ""},
		{"read after a stale 503", "SELECT 1", failWith(503, "stale", true), 1, false, ""},
		{"read after unknown_outcome", "SELECT 1", failWith(503, "unknown_outcome", true), 1, false, ""},
		{"read after a hang-up", "SELECT 1", hangUp, 1, false, ""},
		{"write after no_leader", "INSERT INTO t VALUES(1)", failWith(503, "no_leader", true), 1, false, ""},
		{"write after not_leader", "DELETE FROM t", failWith(503, "not_leader", true), 1, false, ""},
		{"write after shutting_down", "UPDATE t SET x = 1", failWith(503, "shutting_down", true), 1, false, ""},
		{"no write after unknown_outcome", "INSERT INTO t VALUES(1)", failWith(503, "unknown_outcome", true), 0, true, ""},
		{"no write after a hang-up", "INSERT INTO t VALUES(1)", hangUp, 0, true, ""},
		{"no write after a timeout", "INSERT INTO t VALUES(1)", failWith(504, "timeout", false), 0, true, ""},
		{"no WITH after a hang-up", "WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", hangUp, 0, true, ""},
		{"no read after a 503 without Retry-After", "SELECT 1", failWith(503, "internal", false), 0, false, "internal"},
		{"no retry after a bad request", "SELECT 1", failWith(400, "bad_request", false), 0, false, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := deadAddr(t)
			if tc.first != nil {
				first = newFakeNode(t, tc.first).addr()
			}
			second := newFakeNode(t, okAnswer)
			c, notes := newTestClient(t, first, second.addr())
			a, err := c.Exec(context.Background(), tc.sql)
			if got := len(second.requests()); got != tc.wantSecond {
				t.Fatalf("second node got %d requests, want %d (err %v)", got, tc.wantSecond, err)
			}
			switch {
			case tc.wantUnknown:
				if !errors.Is(err, errUnknownOutcome) {
					t.Fatalf("err = %v, want an unknown outcome", err)
				}
			case tc.wantCode != "":
				var ae *APIError
				if !errors.As(err, &ae) || ae.Code != tc.wantCode {
					t.Fatalf("err = %v, want code %s", err, tc.wantCode)
				}
				if c.Host() != first {
					t.Fatalf("Host() = %s after an error that allows no retry, want %s", c.Host(), first)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if a.Index != 7 || c.Host() != second.addr() {
					t.Fatalf("answer at %d from %s, want 7 from %s", a.Index, c.Host(), second.addr())
				}
				if !strings.Contains(notes.String(), "trying "+second.addr()) {
					t.Fatalf("no failover note: %q", notes.String())
				}
			}
		})
	}
}

func TestClient_WaitsForANewLeader(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			failWith(503, "no_leader", true)(w, r)
			return
		}
		okAnswer(w, r)
	})
	c, _ := newTestClient(t, f.addr())
	start := time.Now()
	if _, err := c.Exec(context.Background(), "INSERT INTO t VALUES(1)"); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retried after %s, want Retry-After (1s)", waited)
	}

	// With no time left for another round, the error comes back at once.
	always := newFakeNode(t, failWith(503, "no_leader", true))
	c, _ = newTestClient(t, always.addr())
	c.timeout = 500 * time.Millisecond
	_, err := c.Exec(context.Background(), "INSERT INTO t VALUES(1)")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "no_leader" || len(always.requests()) != 1 {
		t.Fatalf("err = %v after %d requests, want no_leader after 1", err, len(always.requests()))
	}
}

func TestClient_ClusterCalls(t *testing.T) {
	var body string
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/nodes":
			writeJSONAnswer(w, 200, 0, `{"n2":{"id":"n2","api_addr":"http://b","addr":"rb","voter":true,"reachable":true,"leader":true},
				"n1":{"id":"n1","api_addr":"http://a","addr":"ra","voter":true,"reachable":false,"leader":false}}`)
		case "/leader":
			b, _ := io.ReadAll(r.Body)
			body = string(b)
			writeJSONAnswer(w, 200, 0, `{"ok":true,"leader":"n1"}`)
		}
	})
	c, _ := newTestClient(t, f.addr())
	ns, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 2 || ns[0].ID != "n1" || ns[1].ID != "n2" || !ns[1].Leader || ns[0].Reachable {
		t.Fatalf("Nodes() = %+v", ns)
	}
	if err := c.TransferLeader(context.Background(), "n3"); err != nil || body != `{"id":"n3"}` {
		t.Fatalf("TransferLeader: err %v, body %q", err, body)
	}
	if err := c.TransferLeader(context.Background(), ""); err != nil || body != "" {
		t.Fatalf("TransferLeader to any: err %v, body %q", err, body)
	}
}

func TestNewClient(t *testing.T) {
	c, err := NewClient(" 127.0.0.1:4001, http://127.0.0.1:4011/ ,:4021,127.0.0.1:4001", "NONE", time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(c.Hosts(), ","), "127.0.0.1:4001,127.0.0.1:4011,127.0.0.1:4021"; got != want {
		t.Fatalf("Hosts() = %s, want %s", got, want)
	}
	if c.Host() != "127.0.0.1:4001" || c.Level() != "none" {
		t.Fatalf("Host() = %s, Level() = %s", c.Host(), c.Level())
	}
	// SetHost switches only to a node that answers.
	live := newFakeNode(t, okAnswer)
	if err := c.SetHost(context.Background(), deadAddr(t)); err == nil || c.Host() != "127.0.0.1:4001" || len(c.Hosts()) != 3 {
		t.Fatalf("SetHost to a dead node: %v, Host() %s, Hosts() %v", err, c.Host(), c.Hosts())
	}
	if err := c.SetHost(context.Background(), live.addr()); err != nil || c.Host() != live.addr() || len(c.Hosts()) != 4 {
		t.Fatalf("SetHost: %v, Host() %s, Hosts() %v", err, c.Host(), c.Hosts())
	}
	if !sameNode("http://localhost:4001", "http://127.0.0.1:4001") || sameNode("http://localhost:4001", "http://127.0.0.1:4011") ||
		sameNode("http://10.0.0.1:4001", "http://127.0.0.1:4001") {
		t.Fatal("sameNode")
	}
	for _, bad := range []struct{ hosts, level string }{{"", "none"}, {"127.0.0.1:4001", "eventual"}, {"ftp://x:1", "none"}} {
		if _, err := NewClient(bad.hosts, bad.level, time.Second, io.Discard); err == nil {
			t.Errorf("NewClient(%q, %q) succeeded", bad.hosts, bad.level)
		}
	}
}

// The shell end to end against a fake node: one-shot arguments, a piped script, exit statuses.
func TestRun(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		var stmts []any
		json.NewDecoder(r.Body).Decode(&stmts)
		sql := fmt.Sprint(stmts...)
		switch {
		case strings.Contains(sql, "nosuch"):
			writeJSONAnswer(w, 200, 4, `{"results":[{"error":"no such table: nosuch"}]}`)
		case strings.Contains(sql, "lost"):
			failWith(503, "unknown_outcome", true)(w, r)
		case strings.Contains(sql, "refused"):
			failWith(400, "not_read_only", false)(w, r)
		default:
			okAnswer(w, r)
		}
	})
	for _, tc := range []struct {
		name       string
		args       []string
		stdin      string
		wantStatus int
		wantOut    string
		wantErr    string
	}{
		{"one-shot", []string{"INSERT INTO t VALUES(1); SELECT x FROM t", ".session"}, "", 0,
			"1 row affected, last insert id 1\nx\n-\n1\n(1 row)\nsession bookmark: min_index=7\n", ""},
		{"one-shot dot command unquoted", []string{".level", "none", "SELECT 1", ".level"}, "", 0,
			"level: none\nx\n-\n1\n(1 row)\nlevel: none\n", ""},
		{"one-shot dot command with a relative path", []string{".session", "./x", ".level"}, "", 1,
			"level: linearizable\n", "Error: usage: .session [reset]\n"},
		{"one-shot SQL error", []string{"SELECT * FROM nosuch", "SELECT 1"}, "", 1, "x\n-\n1\n(1 row)\n", "Error: no such table: nosuch\n"},
		{"one-shot request error", []string{"SELECT refused"}, "", 1, "", "Error: failed with not_read_only (not_read_only)\n"},
		{"unknown outcome", []string{"INSERT INTO lost VALUES(1)"}, "", 1, "",
			"Warning: the request may or may not have been applied: " + f.addr() +
				": failed with unknown_outcome (unknown_outcome)\nRead the data to find out before running it again.\n"},
		{"script", nil, "SELECT\n x FROM t;\n.session\n.level none\nINSERT INTO t\n  VALUES(1)", 0,
			"x\n-\n1\n(1 row)\nsession bookmark: min_index=7\nlevel: none\n1 row affected, last insert id 1\n", ""},
		{"script stops at .quit", nil, "SELECT 1;\n.quit\nSELECT 2;\n", 0, "x\n-\n1\n(1 row)\n", ""},
		{"script ending in an open comment", nil, "SELECT 1;\nSELECT 2 /* and then", 1, "x\n-\n1\n(1 row)\n",
			"Error: incomplete input at the end: a quote or /* comment is not closed; nothing of it was run\n"},
		{"script with an error", nil, "SELECT * FROM nosuch;\n.nosuch\n", 1, "",
			"Error: no such table: nosuch\nError: unknown command .nosuch: .help lists them\n"},
		{"bad flag", []string{"-level", "eventual", "SELECT 1"}, "", 2, "", "rowboat: unknown read level \"eventual\": use none, weak, linearizable, strong, auto\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errw strings.Builder
			args := append([]string{"-H", f.addr()}, tc.args...)
			if got := run(args, strings.NewReader(tc.stdin), false, &out, &errw); got != tc.wantStatus {
				t.Errorf("exit status %d, want %d", got, tc.wantStatus)
			}
			if out.String() != tc.wantOut || errw.String() != tc.wantErr {
				t.Fatalf("stdout:\n%s\nstderr:\n%s\nwant stdout:\n%s\nwant stderr:\n%s", out.String(), errw.String(), tc.wantOut, tc.wantErr)
			}
		})
	}
}

// The shell collects BEGIN ... COMMIT into one all-or-nothing request and sends nothing for BEGIN ...
// ROLLBACK; flags may follow the SQL; on a terminal, Ctrl-D drops a half-typed statement and "exit" leaves.
func TestRun_TransactionsFlagsAndLeaving(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/db/") {
			http.NotFound(w, r) // the shell's discovery of other members: none here
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if r.URL.Query().Has("transaction") {
			writeJSONAnswer(w, 200, 9, `{"results":[{"last_insert_id":1,"rows_affected":1},{"columns":["n"],"types":["integer"],"values":[[2]]}],"raft_index":9}`)
			return
		}
		okAnswer(w, r)
	})
	sent := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := bodies
		bodies = nil
		return out
	}
	for _, tc := range []struct {
		name       string
		args       []string
		stdin      string
		terminal   bool
		wantStatus int
		wantOut    string
		wantErr    string
		wantSent   []string
		wantPath   string // of the last request
	}{
		{"BEGIN ... ROLLBACK sends nothing", []string{"BEGIN; INSERT INTO t VALUES(1); ROLLBACK"}, "", false, 0, "", "", nil, ""},
		{"BEGIN ... COMMIT is one request", nil, "BEGIN TRANSACTION;\nINSERT INTO t VALUES(1);\nSELECT count(*) AS n FROM t;\nCOMMIT;\n", false, 0,
			"1 row affected, last insert id 1\nn\n-\n2\n(1 row)\n", "",
			[]string{`["INSERT INTO t VALUES(1)","SELECT count(*) AS n FROM t"]`}, "/db/execute?blob_array=&timeout=10s&transaction="},
		{"END commits too", []string{"BEGIN; INSERT INTO t VALUES(1); SELECT 1; END"}, "", false, 0,
			"1 row affected, last insert id 1\nn\n-\n2\n(1 row)\n", "", []string{`["INSERT INTO t VALUES(1)","SELECT 1"]`}, ""},
		{"an open transaction at the end is not sent", []string{"BEGIN", "INSERT INTO t VALUES(1)"}, "", false, 1, "",
			"Warning: the transaction was not committed: its statement was not sent\n", nil, ""},
		{"COMMIT without BEGIN", []string{"COMMIT"}, "", false, 1, "", "Error: no transaction is open\n", nil, ""},
		{"flags after the SQL", []string{"SELECT 1", "-level", "none"}, "", false, 0, "x\n-\n1\n(1 row)\n", "",
			[]string{`["SELECT 1"]`}, ""},
		{"Ctrl-D drops a half-typed statement", nil, "DELETE FROM t", true, 0, "", "", nil, ""},
		{"exit leaves", nil, "exit\nDELETE FROM t;\n", true, 0, "", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errw strings.Builder
			args := append([]string{"-H", f.addr()}, tc.args...)
			before := len(f.requests())
			if got := run(args, strings.NewReader(tc.stdin), tc.terminal, &out, &errw); got != tc.wantStatus {
				t.Errorf("exit status %d, want %d (stderr %q)", got, tc.wantStatus, errw.String())
			}
			gotOut := out.String()
			if tc.terminal { // prompts and notes are the terminal's business: check nothing ran
				gotOut = ""
			}
			if gotOut != tc.wantOut || errw.String() != tc.wantErr {
				t.Fatalf("stdout:\n%s\nstderr:\n%s\nwant stdout:\n%s\nwant stderr:\n%s", gotOut, errw.String(), tc.wantOut, tc.wantErr)
			}
			if got := sent(); !reflect.DeepEqual(got, tc.wantSent) {
				t.Fatalf("sent %q, want %q", got, tc.wantSent)
			}
			if reqs := f.requests()[before:]; tc.wantPath != "" && (len(reqs) == 0 || reqs[len(reqs)-1] != "POST "+tc.wantPath) {
				t.Fatalf("requests %q, want the last to be POST %s", reqs, tc.wantPath)
			}
		})
	}
}

// Discover adds the members /nodes lists after the given nodes, and keeps the node in use.
func TestClient_Discover(t *testing.T) {
	other := newFakeNode(t, okAnswer)
	var first *fakeNode
	first = newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSONAnswer(w, 200, 0, fmt.Sprintf(`{"n1":{"id":"n1","api_addr":"http://%s"},"n2":{"id":"n2","api_addr":"http://%s"},"n3":{"id":"n3","api_addr":""}}`,
			first.addr(), other.addr()))
	})
	c, _ := newTestClient(t, first.addr())
	c.Discover(context.Background())
	if got, want := strings.Join(c.Hosts(), ","), first.addr()+","+other.addr(); got != want || c.Host() != first.addr() {
		t.Fatalf("after Discover: Hosts() %s, Host() %s; want %s, using %s", got, c.Host(), want, first.addr())
	}
}

// rqlite's shell names reach the same commands, and .indexes, .ready and .remove do what they say.
func TestRun_RqliteNamesAndMore(t *testing.T) {
	var mu sync.Mutex
	var got []string
	ready, moved := true, false
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(body))
		isReady := ready
		mu.Unlock()
		switch r.URL.Path {
		case "/readyz":
			if isReady {
				writeJSONAnswer(w, 200, 0, `{"ready":true}`)
			} else {
				writeJSONAnswer(w, 503, 0, `{"error":"removed from the cluster","code":"not_ready"}`)
			}
		case "/remove":
			writeJSONAnswer(w, 200, 0, `{}`)
		case "/leader":
			mu.Lock()
			moved = true
			mu.Unlock()
			writeJSONAnswer(w, 200, 0, `{}`)
		case "/status":
			mu.Lock()
			leader := map[bool]string{false: "n1", true: "n2"}[moved]
			mu.Unlock()
			writeJSONAnswer(w, 200, 0, `{"id":"n1","leader_id":"`+leader+`","term":3}`)
		case "/db/request", "/db/query":
			writeJSONAnswer(w, 200, 7, `{"results":[{"columns":["name"],"types":["text"],"values":[["t_idx"]]}]}`)
		default:
			okAnswer(w, r)
		}
	})
	script := ".consistency none\n.indexes t\n.ready\n.remove r1\n.remove r2 force\n.stepdown\n"
	var out, errw strings.Builder
	if status := run([]string{"-H", f.addr()}, strings.NewReader(script), false, &out, &errw); status != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", status, errw.String())
	}
	if want := "level: none\nt_idx\nready\nremoved r1\nremoved r2\n"; !strings.HasPrefix(out.String(), want) {
		t.Fatalf("stdout:\n%s\nwant it to start with:\n%s", out.String(), want)
	}
	mu.Lock()
	all := strings.Join(got, "\n")
	mu.Unlock()
	for _, want := range []string{"tbl_name = ? COLLATE NOCASE", `DELETE /remove {"id":"r1"}`, `DELETE /remove {"force":true,"id":"r2"}`, "POST /leader"} {
		if !strings.Contains(all, want) {
			t.Errorf("no request with %q in:\n%s", want, all)
		}
	}
	mu.Lock()
	ready = false
	mu.Unlock()
	out.Reset()
	errw.Reset()
	run([]string{"-H", f.addr(), ".ready"}, strings.NewReader(""), false, &out, &errw)
	if out.String() != "not ready: removed from the cluster\n" {
		t.Fatalf(".ready on a node that is not: %q (stderr %q)", out.String(), errw.String())
	}
}

// -p gives every -H host without a port that one, as in rqlite's shell.
func TestWithPort(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1":                    "127.0.0.1:4101",
		"127.0.0.1:4001":               "127.0.0.1:4001",
		"a, b:5,http://c/,https://d:6": "a:4101,b:5,http://c:4101,https://d:6",
		"::1":                          "[::1]:4101",
	} {
		if got := withPort(in, 4101); got != want {
			t.Errorf("withPort(%q) = %q, want %q", in, got, want)
		}
	}
	var out, errw strings.Builder
	if status := run([]string{"-p", "0x", "SELECT 1"}, strings.NewReader(""), false, &out, &errw); status != 2 {
		t.Errorf("-p 0x: exit status %d, want 2", status)
	}
	if status := run([]string{"-version"}, strings.NewReader(""), false, &out, &errw); status != 0 || !strings.HasPrefix(out.String(), "rowboat ") {
		t.Errorf("-version: exit status %d, output %q", status, out.String())
	}
}

// With no leader, the shell notes each failure once, not once per round of retries, and reports what a node
// answered (no leader) rather than that another could not be reached.
func TestRun_NoLeaderSaysSo(t *testing.T) {
	f := newFakeNode(t, failWith(503, "no_leader", true))
	var out, errw strings.Builder
	status := run([]string{"-H", f.addr() + "," + deadAddr(t), "-timeout", "2500ms", "INSERT INTO t VALUES(1)"},
		strings.NewReader(""), false, &out, &errw)
	lines := strings.Split(strings.TrimSpace(errw.String()), "\n")
	if status != 1 || !strings.Contains(lines[len(lines)-1], "no_leader") {
		t.Fatalf("status %d, stderr:\n%s\nwant the last line to report no_leader", status, errw.String())
	}
	if len(lines) > 4 { // one note per failing node, the wait, the error
		t.Fatalf("%d lines of stderr, want at most 4:\n%s", len(lines), errw.String())
	}
}

// A load whose answer is lost, or that timed out, may have been applied: the shell says so, since a dump run
// again against the database as it is would apply twice.
func TestRun_LoadWithoutAnAnswerIsAnUnknownOutcome(t *testing.T) {
	dump := filepath.Join(t.TempDir(), "dump.sql")
	if err := os.WriteFile(dump, []byte("INSERT INTO t VALUES(1);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]http.HandlerFunc{"hang up": hangUp, "timeout": failWith(504, "timeout", false)} {
		f := newFakeNode(t, h)
		var out, errw strings.Builder
		if status := run([]string{"-H", f.addr(), ".load " + dump}, strings.NewReader(""), false, &out, &errw); status != 1 ||
			!strings.Contains(errw.String(), "may or may not have been applied") {
			t.Fatalf("%s: status %d, stderr %q: want the unknown outcome said", name, status, errw.String())
		}
	}
}
