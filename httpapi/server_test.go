package httpapi

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/followerread"
	"github.com/rowboatdb/rowboat/logical"
	"github.com/rowboatdb/rowboat/node"
)

var _ Store = (*fakeStore)(nil)

// fakeStore is a Store with controllable behaviour. Its zero value (via newFake) leads, executes every write
// as one inserted row per statement and answers every read with one integer row.
type fakeStore struct {
	mu         sync.Mutex
	id         string
	term       uint64
	leader     bool
	leaderID   string
	leaderAddr string
	applied    uint64
	// backupTakes is how long WriteBackup takes.
	backupTakes time.Duration
	// appliedTerm is the term of the entry at the applied index, which reads report (X-Rowboat-Term); term
	// is the node's current term.
	appliedTerm uint64
	ready       bool
	notReady    string
	// noContact makes LastContact zero: the node names a leader it has had no contact with.
	noContact bool
	members   []node.Member

	exec  func(ctx context.Context, req logical.Request) (node.WriteResult, error)
	query func(ctx context.Context, stmts []logical.Statement) ([]logical.Result, uint64, error)

	execCalls  int
	queryCalls int
	lastExec   logical.Request
	lastQuery  []logical.Statement

	recent []node.Event
	events chan node.Event

	onLeader func() // called by Leader, when set

	removed   []string // "id force=bool" of each Remove call
	loads     []string // "data replace=bool" of each Load call
	removeErr error    // what Remove fails with, when set
}

func newFake(id string) *fakeStore {
	f := &fakeStore{id: id, term: 3, appliedTerm: 2, leader: true, leaderID: id, applied: 10, ready: true, events: make(chan node.Event, 8)}
	f.exec = func(_ context.Context, req logical.Request) (node.WriteResult, error) {
		res := make([]logical.Result, len(req.Statements))
		for i := range res {
			res[i] = logical.Result{LastInsertID: int64(i + 1), RowsAffected: 1}
		}
		return node.WriteResult{Results: res, Index: 11, Term: 3}, nil
	}
	f.query = func(_ context.Context, stmts []logical.Statement) ([]logical.Result, uint64, error) {
		res := make([]logical.Result, len(stmts))
		for i := range res {
			res[i] = logical.Result{Columns: []string{"x"}, Types: []string{"integer"}, Rows: [][]logical.Value{{int64(1)}}}
		}
		return res, 10, nil
	}
	return f
}

// follower turns f into a follower of the leader id at addr ("" for no known leader).
func (f *fakeStore) follower(leaderID, addr string) *fakeStore {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader, f.leaderID, f.leaderAddr = false, leaderID, addr
	return f
}

func (f *fakeStore) calls() (execCalls, queryCalls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.execCalls, f.queryCalls
}

func (f *fakeStore) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}
func (f *fakeStore) IsVoter() bool        { return true }
func (f *fakeStore) HasLease() bool       { return f.IsLeader() }
func (f *fakeStore) AppliedIndex() uint64 { f.mu.Lock(); defer f.mu.Unlock(); return f.applied }
func (f *fakeStore) NoLeader() error      { return node.ErrNoLeader }
func (f *fakeStore) AppliedPosition() node.Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	return node.Position{Index: f.applied, Term: f.appliedTerm}
}
func (f *fakeStore) WaitApplied(ctx context.Context, index uint64) error {
	if f.AppliedIndex() >= index {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}
func (f *fakeStore) ReadIndex(ctx context.Context) (uint64, error) {
	return f.AppliedIndex(), ctx.Err()
}
func (f *fakeStore) ReadIndexFor(ctx context.Context, from string, term uint64) (uint64, error) {
	return f.ReadIndex(ctx)
}
func (f *fakeStore) StrongIndex(ctx context.Context) (uint64, error) {
	return f.AppliedIndex(), ctx.Err()
}
func (f *fakeStore) LastContact() time.Time {
	if f.noContact {
		return time.Time{}
	}
	return time.Now()
}
func (f *fakeStore) CommitIndex() uint64 { return f.AppliedIndex() }
func (f *fakeStore) ApplyTimes() (appendedAt, appliedAt time.Time) {
	return time.Time{}, time.Time{}
}
func (f *fakeStore) ID() string   { return f.id }
func (f *fakeStore) Term() uint64 { return f.term }
func (f *fakeStore) Leader() (string, string) {
	f.mu.Lock()
	id, addr, hook := f.leaderID, f.leaderAddr, f.onLeader
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	return id, addr
}

func (f *fakeStore) Execute(ctx context.Context, req logical.Request) (node.WriteResult, error) {
	f.mu.Lock()
	f.execCalls++
	f.lastExec = req
	exec := f.exec
	f.mu.Unlock()
	return exec(ctx, req)
}

func (f *fakeStore) Query(ctx context.Context, stmts []logical.Statement) ([]logical.Result, node.Position, error) {
	f.mu.Lock()
	f.queryCalls++
	f.lastQuery = stmts
	query, term := f.query, f.appliedTerm
	f.mu.Unlock()
	res, idx, err := query(ctx, stmts)
	return res, node.Position{Index: idx, Term: term}, err
}

func (f *fakeStore) Join(context.Context, node.JoinRequest) error { return nil }
func (f *fakeStore) Notify(node.JoinRequest) (bool, error)        { return false, nil }
func (f *fakeStore) BootVoters() []node.JoinRequest               { return nil }
func (f *fakeStore) Remove(_ context.Context, id string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, fmt.Sprintf("%s force=%v", id, force))
	return f.removeErr
}
func (f *fakeStore) Members() ([]node.Member, error) { return f.members, nil }
func (f *fakeStore) Status() node.Status {
	return node.Status{ID: f.id, Role: "leader", Term: f.term, LeaderID: f.leaderID, AppliedIndex: f.AppliedIndex(), Members: f.members}
}
func (f *fakeStore) Ready() (bool, string)                            { return f.ready, f.notReady }
func (f *fakeStore) TransferLeadership(context.Context, string) error { return nil }
func (f *fakeStore) WriteBackup(w io.Writer) (node.Position, error) {
	time.Sleep(f.backupTakes)
	_, err := io.WriteString(w, fakeBackup)
	return node.Position{Index: 3, Term: 1}, err
}

const fakeBackup = "SQLite format 3\x00 (a fake backup)"

func (f *fakeStore) Subscribe() ([]node.Event, <-chan node.Event, func()) {
	return f.recent, f.events, func() {}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve starts an httptest server with the API over store.
func serve(tb testing.TB, store Store, opts Options) *httptest.Server {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	srv := httptest.NewServer(New(store, opts))
	tb.Cleanup(srv.Close)
	return srv
}

// testClient never follows redirects and never waits forever.
var testClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.body) }

// call sends one request to srv and reads the whole answer.
func call(tb testing.TB, srv *httptest.Server, method, path, body string, header ...string) answer {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// wantError requires a JSON error answer with status and code, and returns its message.
func wantError(tb testing.TB, a answer, status int, code string) string {
	tb.Helper()
	if a.status != status {
		tb.Fatalf("status: got %s, want %d", a, status)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("Content-Type=%q, want application/json (%s)", ct, a)
	}
	var e map[string]any
	if err := json.Unmarshal(a.body, &e); err != nil {
		tb.Fatalf("error body is not JSON: %v: %s", err, a.body)
	}
	msg, _ := e["error"].(string)
	if msg == "" {
		tb.Fatalf("error body without an error message: %s", a.body)
	}
	if got, _ := e["code"].(string); got != code {
		tb.Fatalf("code=%q, want %q (%s)", got, code, a.body)
	}
	return msg
}

// decode decodes a JSON answer into a generic map.
func decode(tb testing.TB, a answer) map[string]any {
	tb.Helper()
	if a.status != http.StatusOK {
		tb.Fatalf("want 200, got %s", a)
	}
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		tb.Fatalf("decode %s: %v", a.body, err)
	}
	return m
}

func results(tb testing.TB, a answer) []map[string]any {
	tb.Helper()
	m := decode(tb, a)
	rs, ok := m["results"].([]any)
	if !ok {
		tb.Fatalf("no results array: %s", a.body)
	}
	out := make([]map[string]any, len(rs))
	for i, r := range rs {
		out[i], _ = r.(map[string]any)
	}
	return out
}

func TestParseStatements(t *testing.T) {
	num := func(s string) json.Number { return json.Number(s) }
	for _, tc := range []struct {
		name string
		body string
		want []logical.Statement
	}{
		{"strings", `["CREATE TABLE t(x)", "INSERT INTO t VALUES(1)"]`,
			[]logical.Statement{{SQL: "CREATE TABLE t(x)"}, {SQL: "INSERT INTO t VALUES(1)"}}},
		{"positional", `[["INSERT INTO t VALUES(?, ?, ?, ?, ?)", 1, 2.5, "a", true, null]]`,
			[]logical.Statement{{SQL: "INSERT INTO t VALUES(?, ?, ?, ?, ?)", Args: []any{num("1"), num("2.5"), "a", true, nil}}}},
		{"named", `[["INSERT INTO t VALUES(:a, :b)", {"a": 1, "b": "x"}]]`,
			[]logical.Statement{{SQL: "INSERT INTO t VALUES(:a, :b)", Named: map[string]any{"a": num("1"), "b": "x"}}}},
		{"sql only in an array", `[["SELECT 1"]]`, []logical.Statement{{SQL: "SELECT 1"}}},
		{"mixed", `["SELECT 1", ["SELECT ?", 7], ["SELECT :n", {"n": null}]]`,
			[]logical.Statement{{SQL: "SELECT 1"}, {SQL: "SELECT ?", Args: []any{num("7")}}, {SQL: "SELECT :n", Named: map[string]any{"n": nil}}}},
		{"big integer kept exact", `[["SELECT ?", 9007199254740993]]`,
			[]logical.Statement{{SQL: "SELECT ?", Args: []any{num("9007199254740993")}}}},
		// rqlite's BLOB parameters: an array of byte values (pyrqlite's bytes), or a BLOB literal as a string.
		{"blob as byte values", `[["INSERT INTO t VALUES(?, ?)", [222, 173, 190, 239], []]]`,
			[]logical.Statement{{SQL: "INSERT INTO t VALUES(?, ?)", Args: []any{[]byte{0xde, 0xad, 0xbe, 0xef}, []byte{}}}}},
		{"blob literal", `[["INSERT INTO t VALUES(:a, :b, :c)", {"a": "x'DEADbeef'", "b": " X'00' ", "c": "x'abc'"}]]`,
			[]logical.Statement{{SQL: "INSERT INTO t VALUES(:a, :b, :c)", Named: map[string]any{"a": []byte{0xde, 0xad, 0xbe, 0xef}, "b": []byte{0}, "c": "x'abc'"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatements([]byte(tc.body))
			if err != nil {
				t.Fatalf("parseStatements(%s): %v", tc.body, err)
			}
			for i := range got {
				if len(got[i].Args) == 0 {
					got[i].Args = nil // no arguments, however spelled
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseStatements(%s)=%#v, want %#v", tc.body, got, tc.want)
			}
		})
	}
}

func TestParseStatements_Bad(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"not JSON", `[not json`},
		{"empty body", ``},
		{"object", `{"q": "SELECT 1"}`},
		{"string", `"SELECT 1"`},
		{"empty array", `[]`},
		{"trailing data", `["SELECT 1"] ["SELECT 2"]`},
		{"number statement", `[42]`},
		{"empty statement array", `[[]]`},
		{"SQL not a string", `[[1, 2]]`},
		{"array of arrays parameter", `[["SELECT ?", [[1], 2]]]`},
		{"array with a value past a byte", `[["SELECT ?", [1, 256]]]`},
		{"array with a negative value", `[["SELECT ?", [-1]]]`},
		{"array with a string", `[["SELECT ?", [1, "a"]]]`},
		{"object among positional parameters", `[["SELECT ?, ?", 1, {"a": 1}]]`},
		{"named object value", `[["SELECT :a", {"a": {"b": 1}}]]`},
		{"named array value", `[["SELECT :a", {"a": [1.5]}]]`},
		{"number out of range", `[["SELECT ?", 1e400]]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseStatements([]byte(tc.body))
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("parseStatements(%s): err=%v, want errBadRequest", tc.body, err)
			}
		})
	}
}

func TestServer_BadStatements(t *testing.T) {
	store := newFake("n1")
	srv := serve(t, store, Options{})
	for _, path := range []string{"/db/execute", "/db/query", "/db/request"} {
		for _, body := range []string{`[not json`, `[]`, `{"a":1}`, `[["SELECT ?", [1000]]]`, `[["SELECT :a", {"a": {"b": 1}}]]`} {
			t.Run(path+" "+body, func(t *testing.T) {
				msg := wantError(t, call(t, srv, http.MethodPost, path, body), http.StatusBadRequest, "bad_request")
				if !strings.Contains(msg, "bad request") {
					t.Fatalf("message %q does not say what is wrong", msg)
				}
			})
		}
	}
	t.Run("GET /db/query without q", func(t *testing.T) {
		wantError(t, call(t, srv, http.MethodGet, "/db/query", ""), http.StatusBadRequest, "bad_request")
	})
	if e, q := store.calls(); e != 0 || q != 0 {
		t.Fatalf("a malformed request reached the store: %d executes, %d queries", e, q)
	}
}

func TestParseParams(t *testing.T) {
	req := func(query string, header ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/db/query?"+query, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	t.Run("defaults", func(t *testing.T) {
		p, err := parseParams(req(""))
		if err != nil {
			t.Fatal(err)
		}
		if p.read.Level != followerread.Linearizable || p.timeout != 0 || p.transaction || p.redirect {
			t.Fatalf("defaults: %+v", p)
		}
	})
	t.Run("gorqlite style", func(t *testing.T) {
		p, err := parseParams(req("timings&level=STRONG&transaction"))
		if err != nil {
			t.Fatal(err)
		}
		if !p.timings || !p.transaction || p.read.Level != followerread.Strong {
			t.Fatalf("got %+v", p)
		}
	})
	t.Run("values", func(t *testing.T) {
		p, err := parseParams(req("timeout=1.5&min_index=42&min_index_timeout=3s&stale=error&freshness=1s&associative=false&redirect=true"))
		if err != nil {
			t.Fatal(err)
		}
		if p.timeout != 1500*time.Millisecond || p.read.MinIndex != 42 || p.read.MinIndexTimeout != 3*time.Second ||
			!p.read.StaleError || p.read.Freshness != time.Second || p.associative || !p.redirect {
			t.Fatalf("got %+v", p)
		}
	})
	t.Run("min_index_timeout=0 does not wait", func(t *testing.T) {
		for q, want := range map[string]time.Duration{"min_index_timeout=0": followerread.NoWait, "min_index_timeout=0s": followerread.NoWait, "": 0} {
			p, err := parseParams(req(q))
			if err != nil || p.read.MinIndexTimeout != want {
				t.Fatalf("%q: MinIndexTimeout %v (%v), want %v", q, p.read.MinIndexTimeout, err, want)
			}
		}
	})
	t.Run("min_index header", func(t *testing.T) {
		p, err := parseParams(req("", headerMinIndex, "77"))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.read.MinIndex, uint64(77); got != want {
			t.Fatalf("MinIndex=%d, want %d", got, want)
		}
	})
}

func TestServer_BadParams(t *testing.T) {
	store := newFake("n1")
	srv := serve(t, store, Options{})
	for _, tc := range []struct {
		name, query string
		header      []string
		mention     string
	}{
		{"unknown level", "level=bogus", nil, "bogus"},
		{"bad min_index", "min_index=abc", nil, "min_index"},
		{"negative min_index", "min_index=-1", nil, "min_index"},
		{"bad min_index header", "", []string{headerMinIndex, "x"}, "min_index"},
		{"bad timeout", "timeout=soon", nil, "timeout"},
		{"negative timeout", "timeout=-1s", nil, "timeout"},
		{"timeout past what a duration holds", "timeout=1e10", nil, "timeout"},
		{"infinite timeout", "timeout=Inf", nil, "timeout"},
		{"NaN timeout", "timeout=NaN", nil, "timeout"},
		{"bad min_index_timeout", "min_index_timeout=x", nil, "min_index_timeout"},
		{"bad stale", "stale=bogus", nil, "stale"},
		{"bad freshness", "freshness=x", nil, "freshness"},
		{"bad flag", "transaction=maybe", nil, "transaction"},
		{"freshness_strict without freshness", "freshness_strict&level=none", nil, "freshness"},
		{"bad freshness_strict", "freshness_strict=sometimes&freshness=1s", nil, "freshness_strict"},
		{"a raw ';' (Go would drop the pair)", "pretty;", nil, "%3B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, a := range []answer{
				call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&"+tc.query, "", tc.header...),
				call(t, srv, http.MethodPost, "/db/execute?"+tc.query, `["INSERT INTO t VALUES(1)"]`, tc.header...),
				call(t, srv, http.MethodPost, "/db/request?"+tc.query, `["SELECT 1"]`, tc.header...),
			} {
				msg := wantError(t, a, http.StatusBadRequest, "bad_request")
				if !strings.Contains(msg, tc.mention) {
					t.Fatalf("message %q does not name %q", msg, tc.mention)
				}
			}
		})
	}
	if e, q := store.calls(); e != 0 || q != 0 {
		t.Fatalf("a request with bad parameters reached the store: %d executes, %d queries", e, q)
	}
}

func TestServer_ErrorTable(t *testing.T) {
	s := New(newFake("n1"), Options{Logger: quietLogger()})
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	for _, tc := range []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{wrap(errBadRequest), 400, "bad_request", false},
		{wrap(node.ErrBadRequest), 400, "bad_request", false},
		{wrap(logical.ErrNotReadOnly), 400, "not_read_only", false},
		{wrap(followerread.ErrBadLevel), 400, "bad_request", false},
		{wrap(errNotFound), 404, "not_found", false},
		{wrap(node.ErrUnknownMember), 404, "unknown_member", false},
		{wrap(node.ErrUnreachable), 503, "unreachable", true},
		{node.ErrNoLeader, 503, "no_leader", true},
		{wrap(node.ErrNotLeader), 503, "not_leader", true},
		{wrap(errNotSent), 503, "no_leader", true},
		{wrap(errLoop), 503, "not_leader", true},
		{node.ErrLeadershipLost, 503, "unknown_outcome", true},
		{wrap(errUnknownOutcome), 503, "unknown_outcome", true},
		{wrap(followerread.ErrStale), 503, "stale", true},
		{node.ErrShuttingDown, 503, "shutting_down", true},
		{wrap(node.ErrTimeout), 504, "timeout", false},
		{wrap(context.DeadlineExceeded), 504, "timeout", false},
		{&http.MaxBytesError{Limit: 10}, 413, "too_large", false},
		{bodyError(&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}), 408, "body_timeout", false},
		{errors.New("sqlite: disk I/O error at /secret/path"), 500, "internal", false},
	} {
		t.Run(tc.code+" "+tc.err.Error(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.writeError(rec, httptest.NewRequest(http.MethodPost, "/db/execute", nil), tc.err)
			a := answer{rec.Code, rec.Header(), rec.Body.Bytes()}
			msg := wantError(t, a, tc.status, tc.code)
			if got := a.header.Get("Retry-After") != ""; got != tc.retryAfter {
				t.Fatalf("Retry-After=%q, want set=%v", a.header.Get("Retry-After"), tc.retryAfter)
			}
			if tc.status == 500 && strings.Contains(msg, "secret") {
				t.Fatalf("500 exposes the internal error: %q", msg)
			}
		})
	}
	t.Run("client gone", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s.writeError(rec, httptest.NewRequest(http.MethodGet, "/db/query", nil), context.Canceled)
		if rec.Code != 499 {
			t.Fatalf("context.Canceled: status %d, want 499", rec.Code)
		}
	})
}

func TestServer_StoreErrors(t *testing.T) {
	store := newFake("n1")
	srv := serve(t, store, Options{})
	setExec := func(err error) {
		store.mu.Lock()
		store.exec = func(context.Context, logical.Request) (node.WriteResult, error) { return node.WriteResult{}, err }
		store.mu.Unlock()
	}
	t.Run("unexpected error is hidden", func(t *testing.T) {
		setExec(errors.New("raft log corrupt at /var/secret"))
		msg := wantError(t, call(t, srv, http.MethodPost, "/db/execute", `["INSERT INTO t VALUES(1)"]`), 500, "internal")
		if strings.Contains(msg, "secret") || strings.Contains(msg, "corrupt") {
			t.Fatalf("500 exposes the internal error: %q", msg)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		setExec(fmt.Errorf("%w: apply", node.ErrTimeout))
		wantError(t, call(t, srv, http.MethodPost, "/db/execute", `["INSERT INTO t VALUES(1)"]`), 504, "timeout")
	})
	t.Run("leadership lost", func(t *testing.T) {
		setExec(node.ErrLeadershipLost)
		a := call(t, srv, http.MethodPost, "/db/execute", `["INSERT INTO t VALUES(1)"]`)
		wantError(t, a, 503, "unknown_outcome")
		if a.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	})
	t.Run("?timeout bounds the request", func(t *testing.T) {
		store.mu.Lock()
		store.exec = func(ctx context.Context, _ logical.Request) (node.WriteResult, error) {
			<-ctx.Done()
			return node.WriteResult{}, fmt.Errorf("%w: %w", node.ErrTimeout, ctx.Err())
		}
		store.query = func(ctx context.Context, _ []logical.Statement) ([]logical.Result, uint64, error) {
			<-ctx.Done()
			return nil, 0, ctx.Err()
		}
		store.mu.Unlock()
		start := time.Now()
		wantError(t, call(t, srv, http.MethodPost, "/db/execute?timeout=50ms", `["INSERT INTO t VALUES(1)"]`), 504, "timeout")
		if msg := wantError(t, call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&timeout=1ns", ""), 504, "timeout"); !strings.Contains(msg, "?timeout") {
			t.Fatalf("a 504 that does not say which timeout ran out: %q", msg)
		}
		// rqlite's ?db_timeout bounds the request when there is no ?timeout.
		wantError(t, call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&db_timeout=1ms", ""), 504, "timeout")
		wantError(t, call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&db_timeout=11m", ""), http.StatusBadRequest, "bad_request")
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("?timeout did not bound the requests: took %s", d)
		}
	})
	t.Run("a panic is a JSON 500, and the server carries on", func(t *testing.T) {
		store.mu.Lock()
		store.exec = func(context.Context, logical.Request) (node.WriteResult, error) { panic("boom at /var/secret") }
		store.mu.Unlock()
		msg := wantError(t, call(t, srv, http.MethodPost, "/db/execute", `["INSERT INTO t VALUES(1)"]`), 500, "internal")
		if strings.Contains(msg, "secret") {
			t.Fatalf("500 exposes the panic: %q", msg)
		}
		if a := call(t, srv, http.MethodGet, "/status", ""); a.status != http.StatusOK {
			t.Fatalf("after a panic: %s", a)
		}
	})
	t.Run("a body shorter than its Content-Length", func(t *testing.T) {
		body := `["INSERT INTO t VALUES(1)"]`
		req := httptest.NewRequest(http.MethodPost, "/db/execute", strings.NewReader(body))
		req.ContentLength = int64(len(body) + 50)
		rec := httptest.NewRecorder()
		New(store, Options{Logger: quietLogger()}).ServeHTTP(rec, req)
		wantError(t, answer{rec.Code, rec.Header(), rec.Body.Bytes()}, 400, "bad_request")
	})
	t.Run("write sent to the query endpoint", func(t *testing.T) {
		store.mu.Lock()
		store.query = func(context.Context, []logical.Statement) ([]logical.Result, uint64, error) {
			return nil, 0, fmt.Errorf("statement 1: %w: send writes to /db/execute", logical.ErrNotReadOnly)
		}
		store.mu.Unlock()
		msg := wantError(t, call(t, srv, http.MethodPost, "/db/query", `["DELETE FROM t"]`), 400, "not_read_only")
		if !strings.Contains(msg, "/db/execute") {
			t.Fatalf("message %q does not say where writes go", msg)
		}
	})
}

func TestServer_BodyLimit(t *testing.T) {
	store := newFake("n1")
	srv := serve(t, store, Options{MaxBodyBytes: 64})
	small := `["INSERT INTO t VALUES(1)"]`
	if a := call(t, srv, http.MethodPost, "/db/execute", small); a.status != http.StatusOK {
		t.Fatalf("a body under the limit: %s", a)
	}
	big := `["INSERT INTO t VALUES('` + strings.Repeat("x", 100) + `')"]`
	for _, path := range []string{"/db/execute", "/db/query", "/db/request"} {
		msg := wantError(t, call(t, srv, http.MethodPost, path, big), http.StatusRequestEntityTooLarge, "too_large")
		if !strings.Contains(msg, "64") {
			t.Fatalf("413 message %q does not state the limit", msg)
		}
	}
	if e, _ := store.calls(); e != 1 {
		t.Fatalf("executes=%d, want only the small one", e)
	}
}

func TestServer_ExecuteResponse(t *testing.T) {
	store := newFake("n1")
	store.exec = func(_ context.Context, req logical.Request) (node.WriteResult, error) {
		return node.WriteResult{Index: 42, Term: 7, Results: []logical.Result{
			{}, // CREATE TABLE
			{LastInsertID: 5, RowsAffected: 1, Time: 1500 * time.Microsecond}, // INSERT
			{RowsAffected: 3}, // UPDATE
			{Error: "no such table: nosuch"},
			{Columns: []string{"n"}, Types: []string{""}, Rows: [][]logical.Value{{int64(9)}}}, // a SELECT in a write
		}}, nil
	}
	srv := serve(t, store, Options{})
	body := `["CREATE TABLE t(x)", ["INSERT INTO t VALUES(?)", 1], "UPDATE t SET x=2", "INSERT INTO nosuch VALUES(1)", "SELECT count(*) AS n FROM t"]`
	a := call(t, srv, http.MethodPost, "/db/execute?transaction", body)
	m := decode(t, a)
	if got, want := m["raft_index"], float64(42); got != want {
		t.Fatalf("raft_index=%v, want %v", got, want)
	}
	for _, k := range []string{"time", "sequence_number"} {
		if _, ok := m[k]; ok {
			t.Fatalf("%s without asking: %s", k, a.body)
		}
	}
	rs := results(t, a)
	want := []map[string]any{
		{},
		{"last_insert_id": float64(5), "rows_affected": float64(1)},
		{"rows_affected": float64(3)},
		{"error": "no such table: nosuch"},
		{"columns": []any{"n"}, "types": []any{"integer"}, "values": []any{[]any{float64(9)}}},
	}
	if !reflect.DeepEqual(rs, want) {
		t.Fatalf("results:\n got %v\nwant %v", rs, want)
	}
	for h, want := range map[string]string{headerIndex: "42", headerTerm: "7", headerServedBy: "n1"} {
		if got := a.header.Get(h); got != want {
			t.Fatalf("%s=%q, want %q", h, got, want)
		}
	}
	store.mu.Lock()
	req := store.lastExec
	store.mu.Unlock()
	if !req.Transaction || len(req.Statements) != 5 || req.Statements[1].SQL != "INSERT INTO t VALUES(?)" {
		t.Fatalf("the store got %+v", req)
	}

	t.Run("queue", func(t *testing.T) {
		// rqlite's queued writes (gorqlite's Queue): executed at once, answered with a sequence number.
		a := call(t, srv, http.MethodPost, "/db/execute?queue", `["INSERT INTO t VALUES(1)"]`)
		if m := decode(t, a); m["sequence_number"] != float64(42) {
			t.Fatalf("?queue: %s, want sequence_number 42", a.body)
		}
	})
	t.Run("timings and pretty", func(t *testing.T) {
		a := call(t, srv, http.MethodPost, "/db/execute?timings&pretty", `["CREATE TABLE t(x)"]`)
		m := decode(t, a)
		if _, ok := m["time"].(float64); !ok {
			t.Fatalf("no time with ?timings: %s", a.body)
		}
		if r := results(t, a); r[1]["time"] != 0.0015 {
			t.Fatalf("the statement's own time with ?timings: %s, want 0.0015", a.body)
		}
		if r := results(t, call(t, srv, http.MethodPost, "/db/execute", `["CREATE TABLE t(x)"]`)); r[1]["time"] != nil {
			t.Fatalf("a statement's time without ?timings: %v", r[1])
		}
		if !strings.Contains(string(a.body), "\n    ") {
			t.Fatalf("?pretty is not indented: %s", a.body)
		}
	})
}

func TestServer_QueryResponse(t *testing.T) {
	store := newFake("n1")
	store.query = func(_ context.Context, stmts []logical.Statement) ([]logical.Result, uint64, error) {
		return []logical.Result{
			{Columns: []string{"id", "v", "b", "f", "e"}, Types: []string{"integer", "text", "blob", "real", ""},
				Rows: [][]logical.Value{
					{int64(1), "x", []byte("hi"), math.Inf(1), 2.5},
					{int64(2), nil, nil, math.Inf(-1), nil},
				}},
			{Columns: []string{"id"}, Types: []string{"integer"}}, // no rows
			{Error: "no such column: nope"},
		}, 17, nil
	}
	srv := serve(t, store, Options{})
	body := `["SELECT * FROM t", "SELECT id FROM t WHERE 0", "SELECT nope FROM t"]`

	t.Run("values", func(t *testing.T) {
		a := call(t, srv, http.MethodPost, "/db/query", body)
		m := decode(t, a)
		if _, ok := m["raft_index"]; ok {
			t.Fatalf("a read carries raft_index: %s", a.body)
		}
		rs := results(t, a)
		want := []map[string]any{
			{"columns": []any{"id", "v", "b", "f", "e"}, "types": []any{"integer", "text", "blob", "real", "real"},
				"values": []any{
					[]any{float64(1), "x", "aGk=", "+Inf", 2.5},
					[]any{float64(2), nil, nil, "-Inf", nil},
				}},
			{"columns": []any{"id"}, "types": []any{"integer"}},
			{"error": "no such column: nope"},
		}
		if !reflect.DeepEqual(rs, want) {
			t.Fatalf("results:\n got %v\nwant %v", rs, want)
		}
		// The term is the applied entry's (2), not the node's current one (3): (term, index) is a position.
		for h, want := range map[string]string{headerIndex: "17", headerTerm: "2", headerServedBy: "n1"} {
			if got := a.header.Get(h); got != want {
				t.Fatalf("%s=%q, want %q", h, got, want)
			}
		}
	})
	t.Run("associative", func(t *testing.T) {
		rs := results(t, call(t, srv, http.MethodPost, "/db/query?associative", body))
		want := []map[string]any{
			{"types": map[string]any{"id": "integer", "v": "text", "b": "blob", "f": "real", "e": "real"},
				"rows": []any{
					map[string]any{"id": float64(1), "v": "x", "b": "aGk=", "f": "+Inf", "e": 2.5},
					map[string]any{"id": float64(2), "v": nil, "b": nil, "f": "-Inf", "e": nil},
				}},
			{"types": map[string]any{"id": "integer"}, "rows": []any{}},
			{"error": "no such column: nope"},
		}
		if !reflect.DeepEqual(rs, want) {
			t.Fatalf("results:\n got %v\nwant %v", rs, want)
		}
	})
	t.Run("blob_array", func(t *testing.T) {
		// rqlite's ?blob_array: BLOBs as arrays of byte values, in both shapes; text and NULL unchanged.
		blob := []any{float64('h'), float64('i')}
		rs := results(t, call(t, srv, http.MethodPost, "/db/query?blob_array", body))
		if got := rs[0]["values"]; !reflect.DeepEqual(got, []any{
			[]any{float64(1), "x", blob, "+Inf", 2.5},
			[]any{float64(2), nil, nil, "-Inf", nil},
		}) {
			t.Fatalf("values with ?blob_array: %v", got)
		}
		rs = results(t, call(t, srv, http.MethodPost, "/db/query?blob_array&associative", body))
		if got := rs[0]["rows"].([]any)[0].(map[string]any)["b"]; !reflect.DeepEqual(got, blob) {
			t.Fatalf("associative b with ?blob_array: %v", got)
		}
		if a := call(t, srv, http.MethodPost, "/db/query?blob_array=maybe", body); a.status != http.StatusBadRequest {
			t.Fatalf("?blob_array=maybe: %s", a)
		}
	})
	t.Run("GET with several q", func(t *testing.T) {
		a := call(t, srv, http.MethodGet, "/db/query?q="+url.QueryEscape("SELECT 1")+"&q="+url.QueryEscape("SELECT 2"), "")
		if a.status != http.StatusOK {
			t.Fatal(a)
		}
		store.mu.Lock()
		got := store.lastQuery
		store.mu.Unlock()
		if want := []logical.Statement{{SQL: "SELECT 1"}, {SQL: "SELECT 2"}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("statements %+v, want %+v", got, want)
		}
	})
}

func TestAllReads(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want bool
	}{
		{"SELECT 1", true},
		{"  select * from t", true},
		{"(SELECT 1) UNION SELECT 2", true},
		{"SELECT(1)", true},
		{"SELECT*FROM t", true},
		{"VALUES(1),(2)", true},
		{"WITH x AS (SELECT 1) SELECT * FROM x", true}, // a guess: the read path refuses a WITH that writes
		{"EXPLAIN QUERY PLAN SELECT 1", true},
		{"PRAGMA table_info(t)", true},
		{"INSERT INTO t VALUES(1)", false},
		{"UPDATE t SET x=1", false},
		{"DELETE FROM t", false},
		{"CREATE TABLE t(x)", false},
		{"SELECTED", false},
		{"-- comment\nSELECT 1", true}, {"/* c */ SELECT 1", true}, {"-- c\nINSERT INTO t VALUES(1)", false},
		{"", false},
	} {
		stmts := []logical.Statement{{SQL: tc.sql}}
		if got := allReads(stmts); got != tc.want {
			t.Errorf("allReads(%q)=%v, want %v", tc.sql, got, tc.want)
		}
	}
	if allReads([]logical.Statement{{SQL: "SELECT 1"}, {SQL: "DELETE FROM t"}}) {
		t.Error("allReads with one write = true")
	}
}

func TestServer_RequestRouting(t *testing.T) {
	store := newFake("n1")
	srv := serve(t, store, Options{})
	for _, tc := range []struct {
		name        string
		body        string
		exec, query int
	}{
		{"all reads", `["SELECT 1", " (SELECT 2)", "WITH x AS (SELECT 1) SELECT * FROM x", "PRAGMA user_version", "EXPLAIN SELECT 1", "VALUES(1)"]`, 0, 1},
		{"a write", `["SELECT 1", ["INSERT INTO t VALUES(?)", 1]]`, 1, 0},
		{"only a write", `["DELETE FROM t"]`, 1, 0},
		{"empty SQL", `[""]`, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e0, q0 := store.calls()
			if a := call(t, srv, http.MethodPost, "/db/request", tc.body); a.status != http.StatusOK {
				t.Fatal(a)
			}
			e1, q1 := store.calls()
			if e1-e0 != tc.exec || q1-q0 != tc.query {
				t.Fatalf("executes %d, queries %d; want %d, %d", e1-e0, q1-q0, tc.exec, tc.query)
			}
		})
	}
	t.Run("a WITH that writes falls back to Execute", func(t *testing.T) {
		store.mu.Lock()
		store.query = func(context.Context, []logical.Statement) ([]logical.Result, uint64, error) {
			return nil, 0, fmt.Errorf("statement 1: %w", logical.ErrNotReadOnly)
		}
		store.mu.Unlock()
		e0, q0 := store.calls()
		a := call(t, srv, http.MethodPost, "/db/request", `["WITH x(v) AS (VALUES(1)) INSERT INTO t SELECT v FROM x"]`)
		e1, q1 := store.calls()
		if e1-e0 != 1 || q1-q0 != 1 {
			t.Fatalf("executes %d, queries %d; want 1, 1", e1-e0, q1-q0)
		}
		rs := results(t, a)
		if len(rs) != 1 || rs[0]["last_insert_id"] != float64(1) || rs[0]["rows_affected"] != float64(1) {
			t.Fatalf("results %v, want the write's", rs)
		}
		if got := a.header.Get(headerIndex); got != "11" {
			t.Fatalf("%s=%q, want the write's index 11", headerIndex, got)
		}
	})
	t.Run("other read errors are not retried as writes", func(t *testing.T) {
		store.mu.Lock()
		store.query = func(context.Context, []logical.Statement) ([]logical.Result, uint64, error) {
			return nil, 0, errors.New("reader pool closed")
		}
		store.mu.Unlock()
		e0, _ := store.calls()
		wantError(t, call(t, srv, http.MethodPost, "/db/request", `["SELECT 1"]`), 500, "internal")
		if e1, _ := store.calls(); e1 != e0 {
			t.Fatal("a failed read was executed as a write")
		}
	})
}

// leaderServer starts a leader's API and records the requests that reach it.
type leaderServer struct {
	*httptest.Server
	store *fakeStore
	mu    sync.Mutex
	reqs  []*http.Request
}

func startLeader(tb testing.TB, id string) *leaderServer {
	tb.Helper()
	l := &leaderServer{store: newFake(id)}
	l.store.term = 9
	api := New(l.store, Options{Logger: quietLogger()})
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, r.Clone(context.Background()))
		l.mu.Unlock()
		api.ServeHTTP(w, r)
	}))
	tb.Cleanup(l.Close)
	return l
}

func (l *leaderServer) addr() string { return strings.TrimPrefix(l.URL, "http://") }

func (l *leaderServer) requests() []*http.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*http.Request(nil), l.reqs...)
}

// deadAddr is an address nothing listens on.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hangUpServer reads each request and then drops the connection without answering.
func hangUpServer(tb testing.TB) (addr string, hits func() int) {
	tb.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		n++
		mu.Unlock()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	}))
	tb.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func TestServer_Follower(t *testing.T) {
	leader := startLeader(t, "n1")
	store := newFake("n2").follower("n1", leader.addr())
	srv := serve(t, store, Options{})
	write := `[["INSERT INTO t VALUES(?)", 1]]`

	t.Run("redirect", func(t *testing.T) {
		for _, path := range []string{"/db/execute?redirect&transaction", "/db/query?q=SELECT+1&redirect&level=strong", "/db/request?redirect"} {
			method, body := http.MethodPost, write
			if strings.HasPrefix(path, "/db/query") {
				method, body = http.MethodGet, ""
			}
			a := call(t, srv, method, path, body)
			msg := wantError(t, a, http.StatusTemporaryRedirect, "redirect")
			if got, want := a.header.Get("Location"), leader.URL+path; got != want {
				t.Fatalf("Location=%q, want %q", got, want)
			}
			if !strings.Contains(msg, "n1") {
				t.Fatalf("redirect message %q does not name the leader", msg)
			}
		}
		if n := len(leader.requests()); n != 0 {
			t.Fatalf("?redirect still forwarded %d requests", n)
		}
	})

	t.Run("forward a write", func(t *testing.T) {
		a := call(t, srv, http.MethodPost, "/db/execute?transaction&timings", write)
		m := decode(t, a)
		if m["raft_index"] != float64(11) {
			t.Fatalf("forwarded write answer %s", a.body)
		}
		for h, want := range map[string]string{headerIndex: "11", headerTerm: "3", headerServedBy: "n1"} {
			if got := a.header.Get(h); got != want {
				t.Fatalf("%s=%q, want %q (the leader's)", h, got, want)
			}
		}
		reqs := leader.requests()
		if len(reqs) != 1 {
			t.Fatalf("leader got %d requests, want 1", len(reqs))
		}
		r := reqs[0]
		if got := r.Header.Get(headerForwarded); got != "n2" {
			t.Fatalf("%s=%q, want n2", headerForwarded, got)
		}
		if got, want := r.URL.RequestURI(), "/db/execute?transaction&timings"; got != want {
			t.Fatalf("forwarded URI %q, want %q", got, want)
		}
		leader.store.mu.Lock()
		got := leader.store.lastExec
		leader.store.mu.Unlock()
		if !got.Transaction || len(got.Statements) != 1 || got.Statements[0].SQL != "INSERT INTO t VALUES(?)" {
			t.Fatalf("the leader executed %+v", got)
		}
		if e, _ := store.calls(); e != 0 {
			t.Fatal("the follower executed a write")
		}
	})

	t.Run("forward a read", func(t *testing.T) {
		before := len(leader.requests())
		a := call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&level=weak", "", headerMinIndex, "5")
		if a.status != http.StatusOK || a.header.Get(headerServedBy) != "n1" {
			t.Fatalf("forwarded read: %s served by %q", a, a.header.Get(headerServedBy))
		}
		reqs := leader.requests()
		if len(reqs) != before+1 || reqs[before].Header.Get(headerMinIndex) != "5" {
			t.Fatalf("the forwarded read lost its %s header", headerMinIndex)
		}
	})

	t.Run("level none is served locally", func(t *testing.T) {
		before := len(leader.requests())
		a := call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&level=none", "")
		if a.status != http.StatusOK || a.header.Get(headerServedBy) != "n2" {
			t.Fatalf("level=none: %s served by %q", a, a.header.Get(headerServedBy))
		}
		if len(leader.requests()) != before {
			t.Fatal("level=none was forwarded")
		}
	})

	t.Run("a forwarded request is not forwarded again", func(t *testing.T) {
		before := len(leader.requests())
		a := call(t, srv, http.MethodPost, "/db/execute", write, headerForwarded, "n3")
		wantError(t, a, http.StatusServiceUnavailable, "not_leader")
		if a.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		a = call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&level=weak", "", headerForwarded, "n3")
		if a.status != http.StatusServiceUnavailable {
			t.Fatalf("forwarded read at a follower: %s, want 503", a)
		}
		if len(leader.requests()) != before {
			t.Fatal("a forwarded request was forwarded again")
		}
	})

	t.Run("two followers that each think the other leads", func(t *testing.T) {
		// n3 believes n4 leads and n4 believes n3 leads: a write must not bounce between them.
		s3 := newFake("n3")
		s4 := newFake("n4")
		srv3 := serve(t, s3, Options{})
		srv4 := serve(t, s4, Options{})
		s3.follower("n4", strings.TrimPrefix(srv4.URL, "http://"))
		s4.follower("n3", strings.TrimPrefix(srv3.URL, "http://"))
		a := call(t, srv3, http.MethodPost, "/db/execute", write)
		wantError(t, a, http.StatusServiceUnavailable, "not_leader")
		a = call(t, srv3, http.MethodGet, "/db/query?q=SELECT+1&level=weak", "")
		if a.status != http.StatusServiceUnavailable {
			t.Fatalf("read between two followers: %s, want 503", a)
		}
	})
}

func TestServer_NoLeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		leaderID string
		addr     string
	}{
		{"unknown", "", ""},
		{"address not known", "n1", ""},
		{"itself", "n2", "127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, newFake("n2").follower(tc.leaderID, tc.addr), Options{})
			for _, a := range []answer{
				call(t, srv, http.MethodPost, "/db/execute", `["INSERT INTO t VALUES(1)"]`),
				call(t, srv, http.MethodPost, "/db/execute?redirect", `["INSERT INTO t VALUES(1)"]`),
				call(t, srv, http.MethodGet, "/db/query?q=SELECT+1", ""),
				call(t, srv, http.MethodPost, "/db/request", `["SELECT 1"]`),
			} {
				wantError(t, a, http.StatusServiceUnavailable, "no_leader")
				if a.header.Get("Retry-After") == "" {
					t.Fatalf("503 without Retry-After: %s", a)
				}
			}
		})
	}
}

func TestServer_ForwardFailures(t *testing.T) {
	t.Run("dead leader", func(t *testing.T) {
		srv := serve(t, newFake("n2").follower("n1", deadAddr(t)), Options{})
		for _, a := range []answer{
			call(t, srv, http.MethodPost, "/db/execute", `["INSERT INTO t VALUES(1)"]`),
			call(t, srv, http.MethodGet, "/db/query?q=SELECT+1", ""),
		} {
			wantError(t, a, http.StatusServiceUnavailable, "no_leader")
			if a.header.Get("Retry-After") == "" {
				t.Fatalf("503 without Retry-After: %s", a)
			}
		}
	})
	t.Run("request timeout before the forward", func(t *testing.T) {
		// The request's own ?timeout ran out: a 504, not a "no leader" 503 that invites an identical retry.
		leader := startLeader(t, "n1")
		follower := newFake("n2").follower("n1", leader.addr())
		// The follower looks up the leader after it created the request's context and before it forwards.
		// Waiting there for the clock to tick once puts the 1 ns deadline in the past even where the clock is
		// coarse (a CI sandbox once read the same time before and after, and forwarded).
		follower.onLeader = func() {
			for start := time.Now(); !time.Now().After(start); {
				runtime.Gosched()
			}
		}
		srv := serve(t, follower, Options{})
		for _, a := range []answer{
			call(t, srv, http.MethodPost, "/db/execute?timeout=1ns", `["INSERT INTO t VALUES(1)"]`),
			call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&timeout=1ns", ""),
		} {
			wantError(t, a, http.StatusGatewayTimeout, "timeout")
		}
	})
	t.Run("leader hangs up after a write was delivered", func(t *testing.T) {
		addr, hits := hangUpServer(t)
		srv := serve(t, newFake("n2").follower("n1", addr), Options{})
		a := call(t, srv, http.MethodPost, "/db/execute", `["INSERT INTO t VALUES(1)"]`)
		msg := wantError(t, a, http.StatusServiceUnavailable, "unknown_outcome")
		if hits() != 1 {
			t.Fatalf("the leader got %d requests, want 1 (a write must not be resent)", hits())
		}
		if !strings.Contains(msg, "may") {
			t.Fatalf("message %q does not say the write may have applied", msg)
		}
	})
	t.Run("leader hangs up after a read was delivered", func(t *testing.T) {
		addr, _ := hangUpServer(t)
		srv := serve(t, newFake("n2").follower("n1", addr), Options{})
		a := call(t, srv, http.MethodGet, "/db/query?q=SELECT+1", "")
		wantError(t, a, http.StatusServiceUnavailable, "no_leader")
	})
	t.Run("leader hangs up after a /db/request that may write was delivered", func(t *testing.T) {
		// The follower guesses from the first keyword that a WITH reads and forwards it as a read; if it turns
		// out to write, the leader executes it, so a lost answer leaves the outcome unknown.
		addr, _ := hangUpServer(t)
		srv := serve(t, newFake("n2").follower("n1", addr), Options{})
		a := call(t, srv, http.MethodPost, "/db/request?level=weak", `["WITH x(v) AS (VALUES(1)) INSERT INTO t SELECT v FROM x"]`)
		wantError(t, a, http.StatusServiceUnavailable, "unknown_outcome")
	})
}

func TestServer_NotFound(t *testing.T) {
	srv := serve(t, newFake("n1"), Options{})
	for _, path := range []string{"/nope", "/db", "/db/executex", "/status/x"} {
		msg := wantError(t, call(t, srv, http.MethodGet, path, ""), http.StatusNotFound, "not_found")
		if !strings.Contains(msg, path) {
			t.Fatalf("404 message %q does not name %s", msg, path)
		}
	}
	for path, allow := range map[string]string{"/db/execute": "POST", "/remove": "POST, DELETE", "/status": "GET", "/db/query": "GET, POST"} {
		method := http.MethodDelete
		if allow == "POST, DELETE" {
			method = http.MethodGet
		}
		a := call(t, srv, method, path, "")
		wantError(t, a, http.StatusMethodNotAllowed, "bad_method")
		if got := a.header.Get("Allow"); got != allow {
			t.Errorf("%s %s: Allow %q, want %q", method, path, got, allow)
		}
	}
}

func TestServer_Readyz(t *testing.T) {
	store := newFake("n1")
	srv := serve(t, store, Options{})
	a := call(t, srv, http.MethodGet, "/readyz", "")
	if m := decode(t, a); m["ready"] != true || m["id"] != "n1" {
		t.Fatalf("/readyz: %s", a)
	}
	store.mu.Lock()
	store.ready, store.notReady = false, "no leader"
	store.mu.Unlock()
	a = call(t, srv, http.MethodGet, "/readyz", "")
	msg := wantError(t, a, http.StatusServiceUnavailable, "not_ready")
	if !strings.Contains(msg, "no leader") || a.header.Get("Retry-After") == "" {
		t.Fatalf("/readyz not ready: %s (Retry-After %q)", a, a.header.Get("Retry-After"))
	}
	// rqlite's liveness probe asks only whether the node answers.
	if a := call(t, srv, http.MethodGet, "/readyz?noleader", ""); a.status != http.StatusOK || decode(t, a)["node"] != "ok" {
		t.Fatalf("/readyz?noleader without a leader: %s", a)
	}
}

func TestServer_StatusAndNodes(t *testing.T) {
	// gorqlite finds the leader from /status (store.leader.node_id) and its address from /nodes.
	store := newFake("n1")
	store.members = []node.Member{
		{ID: "n1", HTTPAddr: "127.0.0.1:4001", RaftAddr: "127.0.0.1:4002", Voter: true, Leader: true},
		{ID: "n2", RaftAddr: "127.0.0.1:4012", Voter: true},
	}
	srv := serve(t, store, Options{})
	var st struct {
		ID    string `json:"id"`
		Store struct {
			Leader struct {
				NodeID string `json:"node_id"`
				Addr   string `json:"addr"`
			} `json:"leader"`
			Raft struct { // what scripts written for rqlite poll
				State        string `json:"state"`
				Term         uint64 `json:"term"`
				AppliedIndex uint64 `json:"applied_index"`
				NumPeers     int    `json:"num_peers"`
			} `json:"raft"`
		} `json:"store"`
	}
	store.term = 7
	store.applied = 42
	a := call(t, srv, http.MethodGet, "/status?probe", "")
	if err := json.Unmarshal(a.body, &st); err != nil || a.status != http.StatusOK {
		t.Fatalf("/status: %s (%v)", a, err)
	}
	if st.ID != "n1" || st.Store.Leader.NodeID != "n1" || st.Store.Leader.Addr != "127.0.0.1:4002" {
		t.Fatalf("/status: %s", a.body)
	}
	if r := st.Store.Raft; r.State != "Leader" || r.Term != 7 || r.AppliedIndex != 42 || r.NumPeers != 1 {
		t.Fatalf("/status store.raft: %+v in %s", r, a.body)
	}
	var nodes map[string]nodeJSON
	a = call(t, srv, http.MethodGet, "/nodes", "")
	if err := json.Unmarshal(a.body, &nodes); err != nil || a.status != http.StatusOK {
		t.Fatalf("/nodes: %s (%v)", a, err)
	}
	if n := nodes["n1"]; n.APIAddr != "http://127.0.0.1:4001" || !n.Leader || !n.Reachable || !n.Voter {
		t.Fatalf("/nodes n1: %+v", n)
	}
	if n := nodes["n2"]; n.APIAddr != "" || n.Reachable || n.Error == "" {
		t.Fatalf("/nodes n2 (no HTTP address): %+v", n)
	}
	// rqlite v8's ?ver=2 shape: {"nodes": [...]}, sorted by id, the same entries.
	var v2 struct {
		Nodes []nodeJSON `json:"nodes"`
	}
	a = call(t, srv, http.MethodGet, "/nodes?ver=2", "")
	if err := json.Unmarshal(a.body, &v2); err != nil || a.status != http.StatusOK {
		t.Fatalf("/nodes?ver=2: %s (%v)", a, err)
	}
	if len(v2.Nodes) != 2 || v2.Nodes[0] != nodes["n1"] || v2.Nodes[1] != nodes["n2"] {
		t.Fatalf("/nodes?ver=2: %s, want n1 and n2 as in %v", a.body, nodes)
	}
	wantError(t, call(t, srv, http.MethodGet, "/nodes?ver=3", ""), http.StatusBadRequest, "bad_request")
	// rqlite's GET /leader: the leader's entry of /nodes; 503 when there is none.
	var ldr nodeJSON
	a = call(t, srv, http.MethodGet, "/leader", "")
	if err := json.Unmarshal(a.body, &ldr); err != nil || a.status != http.StatusOK || ldr != nodes["n1"] {
		t.Fatalf("GET /leader: %s (%v), want %+v", a, err, nodes["n1"])
	}
	store.mu.Lock()
	store.members[0].Leader = false
	store.mu.Unlock()
	wantError(t, call(t, srv, http.MethodGet, "/leader", ""), http.StatusServiceUnavailable, "no_leader")
}

func TestServer_StatusMemberLag(t *testing.T) {
	// The leader's /status probes every member concurrently. Members it cannot probe (no HTTP address yet,
	// as right after a join) are answered without a goroutine; all of them must end up in member_lag, and the
	// race detector checks that the two kinds of answers do not collide.
	peer := func(id string, applied uint64) string {
		p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := r.URL.Query()["probe"]; !ok {
				t.Errorf("a member's status was asked without ?probe: %s", r.URL)
			}
			fmt.Fprintf(w, `{"id": %q, "applied_index": %d}`, id, applied)
		}))
		t.Cleanup(p.Close)
		return strings.TrimPrefix(p.URL, "http://")
	}
	store := newFake("n1")
	store.members = []node.Member{
		{ID: "n1", HTTPAddr: "127.0.0.1:4001", Voter: true, Leader: true},
		{ID: "n2", HTTPAddr: peer("n2", 7), Voter: true},
		{ID: "n3", HTTPAddr: peer("n3", 10), Voter: true},
		{ID: "n4"},
		{ID: "n5"},
		{ID: "n6", HTTPAddr: peer("n6", 4)},
		{ID: "n7", HTTPAddr: peer("n9", 10)}, // n7's old address, now another node's
	}
	srv := serve(t, store, Options{})
	for range 20 {
		var st struct {
			MemberLag []memberLagJSON `json:"member_lag"`
		}
		a := call(t, srv, http.MethodGet, "/status", "")
		if err := json.Unmarshal(a.body, &st); err != nil || a.status != http.StatusOK {
			t.Fatalf("/status: %s (%v)", a, err)
		}
		want := []memberLagJSON{
			{ID: "n1", Reachable: true, AppliedIndex: 10},
			{ID: "n2", Reachable: true, AppliedIndex: 7, Lag: 3},
			{ID: "n3", Reachable: true, AppliedIndex: 10},
			{ID: "n4", Error: "HTTP address not known yet"},
			{ID: "n5", Error: "HTTP address not known yet"},
			{ID: "n6", Reachable: true, AppliedIndex: 4, Lag: 6},
			{ID: "n7", Error: fmt.Sprintf("%s answers as \"n9\", not as n7", store.members[6].HTTPAddr)},
		}
		if !reflect.DeepEqual(st.MemberLag, want) {
			t.Fatalf("member_lag = %+v, want %+v", st.MemberLag, want)
		}
	}
}

func TestServer_Events(t *testing.T) {
	store := newFake("n1")
	store.recent = []node.Event{
		{Seq: 1, Type: node.EventLeaderChanged, Node: "n1", Term: 2, Leader: "n1"},
		{Seq: 2, Type: node.EventLeaderReady, Node: "n1", Term: 2, Index: 3},
	}
	api := New(store, Options{Logger: quietLogger()})
	srv := httptest.NewServer(api)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("Last-Event-ID", api.instance+"-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	// next returns the fields of the next event, skipping comments.
	next := func() map[string]string {
		t.Helper()
		ev := map[string]string{}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read event: %v (so far %v)", err, ev)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && len(ev) > 0:
				return ev
			case line == "" || strings.HasPrefix(line, ":"):
			default:
				k, v, _ := strings.Cut(line, ": ")
				ev[k] = v
			}
		}
	}
	ev := next()
	if ev["id"] != api.instance+"-2" || ev["event"] != "leader_ready" {
		t.Fatalf("first event after Last-Event-ID 1: %v", ev)
	}
	// Resuming with another process's id (the node restarted) replays every recent event: its sequence
	// numbers are not this process's.
	for _, id := range []string{"OTHERPROCESS-1", "1"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
		req.Header.Set("Last-Event-ID", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		line, _ := br.ReadString('\n')
		for strings.HasPrefix(line, ":") || line == "\n" {
			line, _ = br.ReadString('\n')
		}
		resp.Body.Close()
		if line != "id: "+api.instance+"-1\n" {
			t.Fatalf("first line after Last-Event-ID %s: %q, want event 1", id, line)
		}
	}
	store.events <- node.Event{Seq: 3, Type: node.EventMemberAdded, Node: "n1", Term: 2, Index: 4, Peer: "n4"}
	ev = next()
	if ev["id"] != api.instance+"-3" || ev["event"] != "member_added" {
		t.Fatalf("live event: %v", ev)
	}
	var data node.Event
	if err := json.Unmarshal([]byte(ev["data"]), &data); err != nil {
		t.Fatalf("event data %q: %v", ev["data"], err)
	}
	if data.Peer != "n4" || data.Index != 4 || data.Term != 2 {
		t.Fatalf("event data %+v", data)
	}
	// A graceful shutdown ends the stream instead of waiting for the client to leave.
	api.CloseStreams()
	if rest, err := io.ReadAll(br); err != nil {
		t.Fatalf("the stream did not end when the server closed its streams: %v (read %q)", err, rest)
	}
}

func TestServer_FollowerLinearizableRead(t *testing.T) {
	leader := startLeader(t, "n1") // answers /readindex with its applied index, 10
	t.Run("served locally once caught up", func(t *testing.T) {
		srv := serve(t, newFake("n2").follower("n1", leader.addr()), Options{})
		a := call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&level=linearizable", "")
		if a.status != http.StatusOK || a.header.Get(headerServedBy) != "n2" {
			t.Fatalf("linearizable read on a follower: %s, served by %q", a, a.header.Get(headerServedBy))
		}
		var asked bool
		for _, r := range leader.requests() {
			if r.URL.Path != "/readindex" {
				continue
			}
			asked = true
			// It names itself and its term, so that the leader may count it towards the quorum.
			if by, term := r.Header.Get(headerForwarded), r.Header.Get(headerTerm); by != "n2" || term != "3" {
				t.Fatalf("read-index request from %q at term %q, want n2 at 3", by, term)
			}
		}
		if !asked {
			t.Fatal("the follower did not ask the leader for a read index")
		}
		// /status counts it; a weak read, which only the leader serves, counts as forwarded.
		if a := call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&level=weak", ""); a.status != http.StatusOK {
			t.Fatalf("weak read on a follower: %s", a)
		}
		var st struct {
			Reads map[string]float64 `json:"reads"`
		}
		if a := call(t, srv, http.MethodGet, "/status?probe", ""); a.status != http.StatusOK || json.Unmarshal(a.body, &st) != nil {
			t.Fatalf("/status: %s", a)
		}
		for k, want := range map[string]float64{"read_index_rounds": 1, "read_index_reads": 1, "forwarded_reads": 1, "confirm_rounds": 0} {
			if got, ok := st.Reads[k]; !ok || got != want {
				t.Errorf("/status reads.%s = %v (present %v), want %v: %v", k, got, ok, want, st.Reads)
			}
		}
	})
	t.Run("a bad term is refused", func(t *testing.T) {
		srv := serve(t, newFake("n1"), Options{})
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/readindex", nil)
		req.Header.Set(headerTerm, "seven")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), headerTerm) {
			t.Fatalf("/readindex with a bad term: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("behind the read index: stale=error", func(t *testing.T) {
		f := newFake("n2").follower("n1", leader.addr())
		f.applied = 5 // the leader's read index is 10
		srv := serve(t, f, Options{})
		a := call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&level=linearizable&stale=error&min_index_timeout=10ms", "")
		wantError(t, a, http.StatusServiceUnavailable, "stale")
	})
	t.Run("leader unreachable", func(t *testing.T) {
		srv := serve(t, newFake("n2").follower("n1", deadAddr(t)), Options{})
		a := call(t, srv, http.MethodGet, "/db/query?q=SELECT+1", "")
		wantError(t, a, http.StatusServiceUnavailable, "no_leader")
	})
	t.Run("another server at the leader's address", func(t *testing.T) {
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"index":5,"term":3,"id":"n9"}`))
		}))
		defer other.Close()
		f := newFake("n2").follower("n1", strings.TrimPrefix(other.URL, "http://"))
		f.applied = 10 // past the index 5 it answers: believed, the read would be served
		srv := serve(t, f, Options{})
		wantError(t, call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&level=linearizable", ""), http.StatusServiceUnavailable, "no_leader")
	})
	t.Run("the leader could not confirm in time: 504", func(t *testing.T) {
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusGatewayTimeout)
			w.Write([]byte(`{"error":"timed out","code":"timeout"}`))
		}))
		defer slow.Close()
		srv := serve(t, newFake("n2").follower("n1", strings.TrimPrefix(slow.URL, "http://")), Options{})
		wantError(t, call(t, srv, http.MethodGet, "/db/query?q=SELECT+1", ""), http.StatusGatewayTimeout, "timeout")
	})
}

func (f *fakeStore) DumpSQL(w interface{ Write([]byte) (int, error) }) (node.Position, error) {
	_, err := w.Write([]byte("BEGIN TRANSACTION;\nCOMMIT;\n"))
	return node.Position{Index: f.AppliedIndex(), Term: f.appliedTerm}, err
}

func (f *fakeStore) Load(ctx context.Context, data []byte, replace bool) (node.LoadResult, error) {
	f.mu.Lock()
	f.loads = append(f.loads, fmt.Sprintf("%s replace=%v", data, replace))
	f.mu.Unlock()
	if bytes.HasPrefix(data, []byte("SQLite format 3\x00")) {
		return node.LoadResult{Statements: 1, Index: 11}, ctx.Err()
	}
	return node.LoadResult{Statements: 1, Results: []logical.Result{{RowsAffected: 2, LastInsertID: 5}}, Index: 11}, ctx.Err()
}

func (f *fakeStore) Snapshot() error { return nil }

func TestServer_EveryResponseCarriesPosition(t *testing.T) {
	srv := serve(t, newFake("n1"), Options{})
	for _, a := range []answer{
		call(t, srv, http.MethodGet, "/db/query?q=SELECT+1&level=bogus", ""),
		call(t, srv, http.MethodGet, "/status", ""),
		call(t, srv, http.MethodGet, "/nosuch", ""),
	} {
		if a.header.Get(headerIndex) == "" || a.header.Get(headerServedBy) != "n1" {
			t.Errorf("%s: no position headers: %v", a, a.header)
		}
	}
}

func TestServer_TermAndConfirmTerm(t *testing.T) {
	// Peers: n2 at term 9 (confirms), n3 at term 8 (does not), n4's address answers as someone else, n5 is down.
	peer := func(id string, term uint64) *httptest.Server {
		f := newFake(id)
		f.term = term
		return serve(t, f, Options{})
	}
	// n2 follows n1 (the node asking), n7 is at n1's term but follows another leader.
	follower := func(id string, term uint64, leader string) *httptest.Server {
		f := newFake(id).follower(leader, "127.0.0.1:1")
		f.term = term
		return serve(t, f, Options{})
	}
	n2, n3, imposter, n7 := follower("n2", 9, "n1"), peer("n3", 8), peer("x9", 9), follower("n7", 9, "n0")
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

	a := call(t, n2, http.MethodGet, "/term", "")
	var tj termJSON
	if a.status != http.StatusOK || json.Unmarshal(a.body, &tj) != nil || tj.ID != "n2" || tj.Term != 9 || tj.Leader != "n1" ||
		tj.LeaderContactNS < 0 || tj.LeaderContactNS > int64(time.Second) {
		t.Fatalf("GET /term: %s", a)
	}

	// n8 names n1 at n1's term but has had no contact with it (raft names a leader from an append it refused).
	n8fake := newFake("n8").follower("n1", "127.0.0.1:1")
	n8fake.term, n8fake.noContact = 9, true
	n8 := serve(t, n8fake, Options{})
	if a := call(t, n8, http.MethodGet, "/term", ""); a.status != http.StatusOK || json.Unmarshal(a.body, &tj) != nil || tj.LeaderContactNS != -1 {
		t.Fatalf("GET /term of a node without contact with the leader it names: %s, want leader_contact_ns -1", a)
	}

	s := New(newFake("n1"), Options{Logger: quietLogger()})
	peers := []node.Peer{{ID: "n2", HTTPAddr: addr(n2)}, {ID: "n3", HTTPAddr: addr(n3)},
		{ID: "n4", HTTPAddr: addr(imposter)}, {ID: "n5", HTTPAddr: deadAddr(t)}, {ID: "n6"}, {ID: "n7", HTTPAddr: addr(n7)},
		{ID: "n8", HTTPAddr: addr(n8)}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := s.confirmTerm(ctx, 9, peers, 5)
	slices.SortFunc(got, func(a, b node.Confirmation) int { return strings.Compare(a.ID, b.ID) })
	if len(got) != 3 || got[0].ID != "n2" || got[1].ID != "n7" || got[2].ID != "n8" {
		t.Fatalf("confirmTerm(term 9) = %v, want n2, n7 and n8: n3 is at another term, n4's address answers as another node, n5 is down, n6 has no address", got)
	}
	if got[0].LeaderContact < 0 || got[0].LeaderContact > time.Second || got[1].LeaderContact != -1 || got[2].LeaderContact != -1 {
		t.Fatalf("confirmTerm(term 9) = %v: want n2's recent contact with n1, and -1 for n7, which follows n0, and for n8, which never heard from n1", got)
	}
	if got := s.confirmTerm(ctx, 8, peers, 1); len(got) != 1 || got[0].ID != "n3" {
		t.Fatalf("confirmTerm(term 8, need 1) = %v, want n3", got)
	}

	// A peer that takes connections but never answers (cut off) does not hold the round: whichever peer a
	// round asks first, the other is asked too and confirms, long before the round's context ends.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	two := []node.Peer{{ID: "n5", HTTPAddr: hole.Addr().String()}, {ID: "n2", HTTPAddr: addr(n2)}}
	for range 2 { // the turn moves on each round
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got := s.confirmTerm(ctx, 9, two, 1)
		cancel()
		if len(got) != 1 || got[0].ID != "n2" {
			t.Fatalf("with a silent peer: confirmTerm = %v, want n2", got)
		}
	}
}

func TestServer_ConfirmTermPrefersLastFirst(t *testing.T) {
	// Two peers that both confirm term 9. After a round, the peer that confirmed first is asked first in the
	// next rounds (taking turns would ask it first only every other round), until it stops answering.
	var asked [2]atomic.Int64
	var peers []node.Peer
	var servers []*httptest.Server
	for i, id := range []string{"n2", "n3"} {
		f := newFake(id).follower("n1", "127.0.0.1:1")
		f.term = 9
		h := New(f, Options{Logger: quietLogger()})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			asked[i].Add(1)
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		servers = append(servers, srv)
		peers = append(peers, node.Peer{ID: id, HTTPAddr: strings.TrimPrefix(srv.URL, "http://")})
	}
	s := New(newFake("n1"), Options{Logger: quietLogger()})
	round := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got := s.confirmTerm(ctx, 9, peers, 1)
		if len(got) != 1 {
			t.Fatalf("confirmTerm = %v, want one confirmation", got)
		}
		return got[0].ID
	}
	orig := slices.Clone(peers)
	first := round()
	i := slices.IndexFunc(peers, func(p node.Peer) bool { return p.ID == first })
	before := asked[i].Load()
	for range 4 {
		if id := round(); id != first {
			t.Fatalf("a round was confirmed by %s, want %s, which confirmed first before", id, first)
		}
	}
	if n := asked[i].Load() - before; n != 4 {
		t.Fatalf("%s was asked %d times in 4 rounds, want 4", first, n)
	}
	if !slices.Equal(peers, orig) {
		t.Fatalf("confirmTerm reordered its caller's peers: %v, was %v", peers, orig)
	}
	servers[i].Close() // the preferred peer goes away: the other confirms, and is preferred from then on
	other := peers[1-i].ID
	for range 3 {
		if id := round(); id != other {
			t.Fatalf("with %s down, a round was confirmed by %s, want %s", first, id, other)
		}
	}
}

// TestServer_LeaderTransferToItself: POST /leader naming the node that already leads answers at once that it
// still leads, instead of waiting for a new leader that will not come.
func TestServer_LeaderTransferToItself(t *testing.T) {
	srv := serve(t, newFake("n1"), Options{})
	m := decode(t, call(t, srv, http.MethodPost, "/leader?timeout=3s", `{"id":"n1"}`))
	if m["leader"] != "n1" || m["previous_leader"] != "n1" {
		t.Fatalf("transfer to the leader itself: %v, want n1 still leading", m)
	}
}

// rqlite's names for loading a SQLite file (/boot) and for Go's runtime statistics (/debug/vars) are served:
// the rqlite shell's .boot and .expvar use them.
func TestServer_RqliteAliases(t *testing.T) {
	srv := serve(t, newFake("n1"), Options{})
	a := call(t, srv, http.MethodGet, "/debug/vars", "")
	if a.status != http.StatusOK || !strings.Contains(string(a.body), `"memstats"`) {
		t.Fatalf("/debug/vars: %s", a)
	}
	load := call(t, srv, http.MethodPost, "/db/load", "not sql, not sqlite")
	boot := call(t, srv, http.MethodPost, "/boot", "not sql, not sqlite")
	if boot.status == http.StatusNotFound || boot.status != load.status || string(boot.body) != string(load.body) {
		t.Fatalf("/boot answered %s, /db/load %s", boot, load)
	}
}

// /db/load answers as rqlite does: SQL text's results as /db/execute gives them, and an empty list for a
// database file; ?replace reaches the store.
func TestServer_LoadAnswers(t *testing.T) {
	f := newFake("n1")
	srv := serve(t, f, Options{})
	a := call(t, srv, http.MethodPost, "/db/load", "INSERT INTO t VALUES (1), (2)")
	if a.status != http.StatusOK || !strings.Contains(string(a.body), `"results":[{"last_insert_id":5,"rows_affected":2}]`) || !strings.Contains(string(a.body), `"raft_index":11`) {
		t.Fatalf("load of SQL text: %s", a)
	}
	if a := call(t, srv, http.MethodPost, "/db/load?replace", "SQLite format 3\x00..."); a.status != http.StatusOK || !strings.HasPrefix(string(a.body), `{"results":[],`) {
		t.Fatalf("load of a database file: %s", a)
	}
	wantError(t, call(t, srv, http.MethodPost, "/db/load?replace=maybe", "SELECT 1"), http.StatusBadRequest, "bad_request")
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{"INSERT INTO t VALUES (1), (2) replace=false", "SQLite format 3\x00... replace=true"}; !slices.Equal(f.loads, want) {
		t.Fatalf("loads %q, want %q", f.loads, want)
	}
}

// A text/plain body is one SQL statement, as rqlite accepts it (curl -H 'Content-Type: text/plain' -d 'SQL').
func TestServer_PlainTextBody(t *testing.T) {
	for _, path := range []string{"/db/execute", "/db/query", "/db/request"} {
		r := httptest.NewRequest(http.MethodPost, path, nil)
		r.Header.Set("Content-Type", "text/plain; charset=utf-8")
		parse := bodyStatements
		if path == "/db/query" {
			parse = queryStatements
		}
		got, err := parse(r, []byte(`INSERT INTO t VALUES ('["not json"]')`))
		if err != nil || len(got) != 1 || got[0].SQL != `INSERT INTO t VALUES ('["not json"]')` || got[0].Args != nil {
			t.Fatalf("%s: %#v, %v", path, got, err)
		}
		for _, bad := range []string{"", "  \n", "\xff\xfe"} {
			if _, err := parse(r, []byte(bad)); !errors.Is(err, errBadRequest) {
				t.Fatalf("%s with body %q: %v, want errBadRequest", path, bad, err)
			}
		}
	}
	// A JSON array sent as text/plain (a browser's fetch with a string body) is still JSON.
	r := httptest.NewRequest(http.MethodPost, "/db/execute", nil)
	r.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	if got, err := bodyStatements(r, []byte(` ["CREATE TABLE t(x)"]`)); err != nil || len(got) != 1 || got[0].SQL != "CREATE TABLE t(x)" {
		t.Fatalf("JSON sent as text/plain: %#v, %v", got, err)
	}
	// Without the header the body is JSON, as before.
	r = httptest.NewRequest(http.MethodPost, "/db/execute", nil)
	if _, err := bodyStatements(r, []byte("CREATE TABLE t(x)")); !errors.Is(err, errBadRequest) {
		t.Fatalf("SQL text sent as JSON: %v, want errBadRequest", err)
	}
}

// ?compress gzips a backup (rqlite's option); ?tables, which would dump only some tables, is refused rather
// than ignored.
func TestServer_BackupOptions(t *testing.T) {
	srv := serve(t, newFake("n1"), Options{})
	a := call(t, srv, http.MethodGet, "/db/backup", "")
	if a.status != http.StatusOK || string(a.body) != fakeBackup {
		t.Fatalf("/db/backup: %s", a)
	}
	a = call(t, srv, http.MethodGet, "/db/backup?compress", "")
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/gzip" {
		t.Fatalf("/db/backup?compress: %s", a)
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.body))
	if err != nil {
		t.Fatalf("/db/backup?compress is not gzip: %v", err)
	}
	if got, err := io.ReadAll(zr); err != nil || string(got) != fakeBackup {
		t.Fatalf("/db/backup?compress unzips to %q (%v)", got, err)
	}
	wantError(t, call(t, srv, http.MethodGet, "/db/backup?fmt=sql&tables=t", ""), http.StatusBadRequest, "bad_request")
	wantError(t, call(t, srv, http.MethodGet, "/db/backup?compress=maybe", ""), http.StatusBadRequest, "bad_request")
}

// A request may hold at most maxStatements statements.
func TestServer_TooManyStatements(t *testing.T) {
	body := "[" + strings.Repeat(`"SELECT 1",`, maxStatements) + `"SELECT 1"]`
	if _, err := parseStatements([]byte(body)); !errors.Is(err, errBadRequest) || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("%d statements: %v", maxStatements+1, err)
	}
	body = "[" + strings.Repeat(`"SELECT 1",`, maxStatements-1) + `"SELECT 1"]`
	if stmts, err := parseStatements([]byte(body)); err != nil || len(stmts) != maxStatements {
		t.Fatalf("%d statements: %d, %v", maxStatements, len(stmts), err)
	}
}

// A client that stops sending its body does not hold the connection past the request's timeout (plus slack).
func TestServer_StalledBodyIsCut(t *testing.T) {
	s := New(newFake("n1"), Options{Logger: quietLogger(), Timeout: 200 * time.Millisecond})
	s.slack = 0
	srv := httptest.NewServer(s)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /db/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n["); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // the test's own bound: the server must act well before
	start := time.Now()
	answer, _ := io.ReadAll(conn) // an error answer and then the end of the connection
	if time.Since(start) > 10*time.Second {
		t.Fatalf("the stalled request held the connection for %s (answer %q)", time.Since(start), answer)
	}
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 408")) || !bytes.Contains(answer, []byte(`"code":"body_timeout"`)) {
		t.Fatalf("answer to a stalled body: %q, want a 408", answer)
	}
}

// A backup takes as long as it takes: the request deadline does not cut it off. A timeout past the largest
// the node allows is refused.
func TestServer_DeadlinesSpareBackupsAndHugeTimeouts(t *testing.T) {
	store := newFake("n1")
	store.backupTakes = 300 * time.Millisecond
	s := New(store, Options{Logger: quietLogger(), Timeout: 50 * time.Millisecond})
	s.slack = 50 * time.Millisecond
	srv := httptest.NewServer(s)
	defer srv.Close()
	if a := call(t, srv, http.MethodGet, "/db/backup", ""); a.status != http.StatusOK || string(a.body) != fakeBackup {
		t.Fatalf("a backup slower than the request deadline: %s", a)
	}
	// A timeout past --max-timeout is refused, on every route; up to it, it is taken.
	wantError(t, call(t, srv, http.MethodGet, "/status?timeout=9223372030", ""), http.StatusBadRequest, "bad_request")
	wantError(t, call(t, srv, http.MethodPost, "/db/execute?timeout=11m", `["SELECT 1"]`), http.StatusBadRequest, "bad_request")
	if a := call(t, srv, http.MethodGet, "/status?timeout=10m", ""); a.status != http.StatusOK {
		t.Fatalf("/status?timeout=10m (the default --max-timeout): %s", a)
	}
}

// TestServer_RemoveForce: DELETE /remove passes force from the body or the query; a removal the node refuses
// for want of a quorum is a 409 that says so.
func TestServer_RemoveForce(t *testing.T) {
	f := newFake("n1")
	srv := serve(t, f, Options{})
	for _, c := range []struct{ path, body string }{
		{"/remove", `{"id":"n2"}`},
		{"/remove", `{"id":"n2","force":true}`},
		{"/remove?force", `{"id":"n2"}`},
		{"/remove?force=false", `{"id":"n2"}`},
	} {
		if a := call(t, srv, http.MethodDelete, c.path, c.body); a.status != http.StatusOK {
			t.Fatalf("DELETE %s %s: %s", c.path, c.body, a)
		}
	}
	wantError(t, call(t, srv, http.MethodDelete, "/remove?force=maybe", `{"id":"n2"}`), http.StatusBadRequest, "bad_request")
	f.mu.Lock()
	got := slices.Clone(f.removed)
	f.removeErr = fmt.Errorf("%w: removing n2 would leave the voters [n1 n3], of which only [n1] answer", node.ErrWouldLoseQuorum)
	f.mu.Unlock()
	if want := []string{"n2 force=false", "n2 force=true", "n2 force=true", "n2 force=false"}; !slices.Equal(got, want) {
		t.Fatalf("removals %q, want %q", got, want)
	}
	if msg := wantError(t, call(t, srv, http.MethodDelete, "/remove", `{"id":"n2"}`), http.StatusConflict, "no_quorum"); !strings.Contains(msg, "only [n1] answer") {
		t.Fatalf("409 without the reason: %q", msg)
	}
}

// TestServer_JoinAtALiveMembersAddress: a join naming another member's Raft address is refused while that
// member still answers as itself (Join would evict it), and goes through once it is gone.
func TestServer_JoinAtALiveMembersAddress(t *testing.T) {
	n2 := serve(t, newFake("n2").follower("n1", "127.0.0.1:1"), Options{})
	f := newFake("n1")
	f.members = []node.Member{
		{ID: "n1", HTTPAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:7001", Voter: true, Leader: true},
		{ID: "n2", HTTPAddr: strings.TrimPrefix(n2.URL, "http://"), RaftAddr: "127.0.0.1:7002", Voter: true},
	}
	srv := serve(t, f, Options{})
	body := `{"id":"n9","raft_addr":"127.0.0.1:7002","http_addr":"127.0.0.1:7003"}`
	if msg := wantError(t, call(t, srv, http.MethodPost, "/join", body), http.StatusBadRequest, "bad_request"); !strings.Contains(msg, "n2") {
		t.Fatalf("the refusal does not name the member: %q", msg)
	}
	// The same id rejoining at its own address, and a new id at an address nobody has, are not affected.
	for _, ok := range []string{`{"id":"n2","raft_addr":"127.0.0.1:7002","http_addr":"127.0.0.1:7003"}`,
		`{"id":"n9","raft_addr":"127.0.0.1:7009","http_addr":"127.0.0.1:7003"}`} {
		if a := call(t, srv, http.MethodPost, "/join", ok); a.status != http.StatusOK {
			t.Fatalf("join %s: %s", ok, a)
		}
	}
	// A second node started under n2's id, at addresses of its own, while n2 runs: n2 would be evicted.
	twin := `{"id":"n2","raft_addr":"127.0.0.1:7012","http_addr":"127.0.0.1:7013","fresh":true}`
	if msg := wantError(t, call(t, srv, http.MethodPost, "/join", twin), http.StatusBadRequest, "bad_request"); !strings.Contains(msg, "n2") || !strings.Contains(msg, "--id") {
		t.Fatalf("the refusal of a second n2 does not say what to do: %q", msg)
	}
	// n2 itself, joining at a new Raft address with its HTTP address spelled another way, is not a second n2.
	port := n2.URL[strings.LastIndex(n2.URL, ":")+1:]
	moved := `{"id":"n2","raft_addr":"127.0.0.1:7099","http_addr":"localhost:` + port + `"}`
	if a := call(t, srv, http.MethodPost, "/join", moved); a.status != http.StatusOK {
		t.Fatalf("n2 joining under another spelling of its own HTTP address: %s", a)
	}
	n2.Close() // n2 is gone: its address may be reused, and its id moved to new addresses
	for _, ok := range []string{body, twin} {
		if a := call(t, srv, http.MethodPost, "/join", ok); a.status != http.StatusOK {
			t.Fatalf("join %s once n2 is gone: %s", ok, a)
		}
	}
}

// Columns declared DATE, DATETIME or TIMESTAMP answer times in RFC 3339, as rqlite's driver answers them
// (gorqlite's Scan into a time.Time failed on "2024-01-02"); other columns, and text that is not a time, are
// answered as they are. BOOLEAN stays 0 and 1, which gorqlite's Scan into a bool takes (rqlite's true and
// false it refuses).
func TestEncode_RqliteTypeConversions(t *testing.T) {
	r := logical.Result{
		Columns: []string{"d", "dt", "ts", "ok", "n"},
		Types:   []string{"date", "datetime", "timestamp", "boolean", "integer"},
		Rows: [][]logical.Value{
			{"2024-01-02", "2024-01-02 03:04:05", int64(1704164645), int64(1), int64(7)},
			{"2024-01-02T03:04:05.5Z", "2021-10-22T19:39:32", int64(1704164645123), int64(0), int64(0)},
			{"2024-01-02 03:04:05-07:00", "not a time", 1.5, "yes", nil},
			{nil, "2024-01-02 03:04", int64(-5), int64(2), int64(1)},
		},
	}
	got := encodeResult(&r, encoding{})
	want := [][]any{
		{"2024-01-02T00:00:00Z", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z", int64(1), int64(7)},
		{"2024-01-02T03:04:05.5Z", "2021-10-22T19:39:32Z", "2024-01-02T03:04:05.123Z", int64(0), int64(0)},
		{"2024-01-02T03:04:05-07:00", "not a time", 1.5, "yes", nil},
		{nil, "2024-01-02T03:04:00Z", "1969-12-31T23:59:55Z", int64(2), int64(1)},
	}
	if !reflect.DeepEqual(got.Values, want) {
		t.Fatalf("values:\n got %v\nwant %v", got.Values, want)
	}
	if !reflect.DeepEqual(got.Types, []string{"date", "datetime", "timestamp", "boolean", "integer"}) {
		t.Fatalf("types %v", got.Types)
	}
	assoc := encodeResult(&r, encoding{associative: true})
	if row := assoc.Rows[0]; row["d"] != "2024-01-02T00:00:00Z" || row["ok"] != int64(1) {
		t.Fatalf("associative row %v", row)
	}
}

// A follower's backup includes every write committed before the request, as rqlite's does (it forwards to the
// leader): the follower waits until it has applied the leader's commit index. ?noleader backs up what it has.
func TestServer_FollowerBackupIsCurrent(t *testing.T) {
	leader := startLeader(t, "n1") // answers /readindex with its applied index, 10
	f := newFake("n2").follower("n1", leader.addr())
	f.mu.Lock()
	f.applied = 7
	f.mu.Unlock()
	srv := serve(t, f, Options{})
	wantError(t, call(t, srv, http.MethodGet, "/db/backup?timeout=100ms", ""), http.StatusServiceUnavailable, "stale")
	if a := call(t, srv, http.MethodGet, "/db/backup?noleader", ""); a.status != http.StatusOK || string(a.body) != fakeBackup {
		t.Fatalf("a follower's ?noleader backup: %s", a)
	}
	f.mu.Lock()
	f.applied = 10
	f.mu.Unlock()
	if a := call(t, srv, http.MethodGet, "/db/backup", ""); a.status != http.StatusOK || string(a.body) != fakeBackup {
		t.Fatalf("a caught-up follower's backup: %s", a)
	}
	asked := 0
	for _, r := range leader.requests() {
		if r.URL.Path == "/readindex" {
			asked++
		}
	}
	if asked != 2 {
		t.Fatalf("the follower asked the leader for its commit index %d times, want 2 (not for ?noleader)", asked)
	}
	// Without a leader there is no telling what was committed.
	srv = serve(t, newFake("n3").follower("", ""), Options{})
	wantError(t, call(t, srv, http.MethodGet, "/db/backup", ""), http.StatusServiceUnavailable, "no_leader")
}

// Every answer, an error too, carries the node's position as a pair: the applied index and its entry's term.
func TestServer_ErrorsCarryThePosition(t *testing.T) {
	f := newFake("n1")
	srv := serve(t, f, Options{})
	for _, path := range []string{"/db/query?q=SELECT+1&level=bogus", "/no/such/route", "/db/query?q=SELECT+1&level=none&min_index=99&min_index_timeout=0&stale=error"} {
		a := call(t, srv, http.MethodGet, path, "")
		if a.status < 400 || a.header.Get(headerIndex) != "10" || a.header.Get(headerTerm) != "2" || a.header.Get(headerServedBy) != "n1" {
			t.Fatalf("GET %s: %s with index %q term %q served by %q, want an error at index 10, term 2, by n1", path, a,
				a.header.Get(headerIndex), a.header.Get(headerTerm), a.header.Get(headerServedBy))
		}
	}
}

// A follower forwarding a write waits a moment past the request's timeout for the leader's answer: the leader
// holds the write to the same timeout and answers just after it, and a definite "nothing was applied" must
// not reach the client as an unknown outcome.
func TestServer_ForwardedWriteGetsTheLeadersAnswerToATimeout(t *testing.T) {
	leader := startLeader(t, "n1")
	leader.store.mu.Lock()
	leader.store.exec = func(ctx context.Context, req logical.Request) (node.WriteResult, error) {
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // the statements are interrupted, then answered
		return node.WriteResult{}, fmt.Errorf("%w: interrupted; nothing was applied", node.ErrTimeout)
	}
	leader.store.mu.Unlock()
	srv := serve(t, newFake("n2").follower("n1", strings.TrimPrefix(leader.URL, "http://")), Options{})
	msg := wantError(t, call(t, srv, http.MethodPost, "/db/execute?timeout=300ms", `["INSERT INTO t VALUES(1)"]`), http.StatusGatewayTimeout, "timeout")
	if !strings.Contains(msg, "nothing was applied") {
		t.Fatalf("a forwarded write the leader timed out: %q, want the leader's answer", msg)
	}
}

// A body that is not a statement array says what it is and what is wanted, without Go's type names.
func TestParseStatements_SaysWhatIsWrong(t *testing.T) {
	for body, want := range map[string]string{
		"":                            "empty body",
		"  \n":                        "empty body",
		"INSERT INTO b(ok) VALUES(1)": "Content-Type: text/plain",
		`{"q":"SELECT 1"}`:            "a JSON object",
		`"SELECT 1"`:                  "a JSON string",
		"42":                          "not an array",
		`["SELECT 1",`:                "not valid JSON",
	} {
		_, err := parseStatements([]byte(body))
		if !errors.Is(err, errBadRequest) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Go value") {
			t.Errorf("body %q: %v, want a bad request saying %q", body, err, want)
		}
	}
}

// A leader asks a voter catching up for its applied index on GET /term; a node of an earlier version, whose
// answer has none, counts as caught up (it becomes a voter at once, as before).
func TestServer_PeerApplied(t *testing.T) {
	n2 := serve(t, newFake("n2").follower("n1", "127.0.0.1:1"), Options{})
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"n9","term":3,"leader":"n1","leader_contact_ns":5}`)
	}))
	defer old.Close()
	s := New(newFake("n1"), Options{Logger: quietLogger()})
	ctx := context.Background()
	if got, err := s.peerApplied(ctx, node.Peer{ID: "n2", HTTPAddr: strings.TrimPrefix(n2.URL, "http://")}); err != nil || got != 10 {
		t.Fatalf("n2's applied index: %d, %v; want 10", got, err)
	}
	if got, err := s.peerApplied(ctx, node.Peer{ID: "n9", HTTPAddr: strings.TrimPrefix(old.URL, "http://")}); err != nil || got != math.MaxUint64 {
		t.Fatalf("an earlier version's applied index: %d, %v; want the most there is", got, err)
	}
	if _, err := s.peerApplied(ctx, node.Peer{ID: "n5", HTTPAddr: deadAddr(t)}); err == nil {
		t.Fatal("a node that does not answer reported an applied index")
	}
}

// A leader-only request forwarded to a leader that has just taken over (Raft leader, its barrier not yet
// applied) waits for it to be ready instead of bouncing back as "not the leader": the old leader of a
// hand-over forwards the removal of itself to the new one as soon as it hears of it.
func TestServer_ForwardedToALeaderNotReadyYet(t *testing.T) {
	f := newFake("n2")
	f.leader = false // Status says "leader" (Raft state); IsLeader waits for the barrier
	srv := serve(t, f, Options{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		f.mu.Lock()
		f.leader = true
		f.mu.Unlock()
	}()
	a := call(t, srv, http.MethodDelete, "/remove", `{"id":"n1"}`, headerForwarded, "n1")
	f.mu.Lock()
	removed := slices.Clone(f.removed)
	f.mu.Unlock()
	if a.status != http.StatusOK || len(removed) != 1 {
		t.Fatalf("a removal forwarded to a leader becoming ready: %s, removed %v", a, removed)
	}
}
