package system

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// errorsMaxBody is the --max-body-bytes of the cluster in TestErrors.
const errorsMaxBody = 4096

// errorsSend sends one raw request and returns the answer; the client's timeout turns a hang into a failure.
func errorsSend(t *testing.T, n *cluster.Node, method, path, body string) *cluster.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cluster.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.ID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s on %s: read: %v", method, path, n.ID, err)
	}
	return &cluster.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// errorsWant requires a JSON error {"error","code"} with status and code; it returns the message.
func errorsWant(t *testing.T, r *cluster.Response, status int, code string) string {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json: %s", ct, r.Body)
	}
	var e struct {
		Error *string `json:"error"`
		Code  *string `json:"code"`
	}
	if err := r.JSON(&e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, r.Body)
	}
	if e.Error == nil || *e.Error == "" || e.Code == nil {
		t.Fatalf("error body without error and code: %s", r.Body)
	}
	if *e.Code != code {
		t.Fatalf("code %q, want %q: %s", *e.Code, code, r.Body)
	}
	return *e.Error
}

// errorsSnapshot is every row of the test's table, read from n once it has applied index.
func errorsSnapshot(t *testing.T, n *cluster.Node, index uint64) [][]any {
	t.Helper()
	d, _ := n.Query(t, "SELECT id, v FROM e ORDER BY id", fmt.Sprintf("level=none&min_index=%d&min_index_timeout=10s", index))
	if len(d.Results) != 1 || d.Results[0].Error != "" {
		t.Fatalf("snapshot on %s: %+v", n.ID, d)
	}
	return d.Results[0].Values
}

// TestErrors sends every kind of bad request the API defines to every node of a live cluster and checks
// its status and JSON error, then that no node stopped and no data changed.
func TestErrors(t *testing.T) {
	c := cluster.Start(t, 3, fmt.Sprintf("--max-body-bytes=%d", errorsMaxBody))
	leader := c.Leader(t, 60*time.Second)
	setup := leader.Execute(t, "",
		"CREATE TABLE e(id INTEGER PRIMARY KEY, v TEXT)",
		[]any{"INSERT INTO e(v) VALUES(?), (?), (?)", "a", "b", "c"},
		"CREATE TABLE tmo(id INTEGER PRIMARY KEY, v TEXT)")
	for _, r := range setup.Results {
		if r.Error != "" {
			t.Fatalf("setup: %+v", setup)
		}
	}
	want := errorsSnapshot(t, leader, setup.RaftIndex)
	if len(want) != 3 {
		t.Fatalf("setup rows %v", want)
	}

	oversized := `["INSERT INTO e(v) VALUES('` + strings.Repeat("x", errorsMaxBody) + `')"]`
	deep := strings.Repeat("[", 2000) + strings.Repeat("]", 2000) // within the limit, nested far too deep
	q := func(sql string) string { return url.QueryEscape(sql) }
	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		code         string
		mention      string // the message must contain this
	}{
		{"bad JSON", "POST", "/db/execute", `[not json`, 400, "bad_request", ""},
		{"truncated JSON", "POST", "/db/execute", `["INSERT INTO e(v) VALUES(1)"`, 400, "bad_request", ""},
		{"body not an array", "POST", "/db/execute", `{"stmt": "DELETE FROM e"}`, 400, "bad_request", ""},
		{"empty array", "POST", "/db/execute", `[]`, 400, "bad_request", ""},
		{"empty body", "POST", "/db/execute", ``, 400, "bad_request", ""},
		{"trailing data", "POST", "/db/execute", `["DELETE FROM e"] ["DELETE FROM e"]`, 400, "bad_request", ""},
		{"deep nesting", "POST", "/db/execute", deep, 400, "bad_request", ""},
		{"statement not a string", "POST", "/db/execute", `[["DELETE FROM e"], 42]`, 400, "bad_request", "statement 2"},
		{"array parameter that is not bytes", "POST", "/db/execute", `[["INSERT INTO e(v) VALUES(?)", [1, 256]]]`, 400, "bad_request", "parameter"},
		{"nested array parameter", "POST", "/db/execute", `[["INSERT INTO e(v) VALUES(?)", [[1], 2]]]`, 400, "bad_request", "parameter"},
		{"object parameter value", "POST", "/db/execute", `[["INSERT INTO e(v) VALUES(:v)", {"v": {"x": 1}}]]`, 400, "bad_request", "parameter"},
		{"bad parameter in a later statement", "POST", "/db/execute",
			`["DELETE FROM e", ["INSERT INTO e(v) VALUES(?)", {"a": [1]}, 2]]`, 400, "bad_request", "statement 2"},
		{"bad JSON to query", "POST", "/db/query", `[1, 2`, 400, "bad_request", ""},
		{"bad JSON to request", "POST", "/db/request", `["DELETE FROM e",`, 400, "bad_request", ""},
		{"GET query without q", "GET", "/db/query", ``, 400, "bad_request", "q="},
		{"unknown level", "GET", "/db/query?level=eventual&q=" + q("SELECT 1"), ``, 400, "bad_request", "eventual"},
		{"unknown level on execute", "POST", "/db/execute?level=bogus", `["DELETE FROM e"]`, 400, "bad_request", "bogus"},
		{"bad min_index", "GET", "/db/query?min_index=soon&q=" + q("SELECT 1"), ``, 400, "bad_request", "min_index"},
		{"bad timeout", "POST", "/db/execute?timeout=forever", `["DELETE FROM e"]`, 400, "bad_request", "timeout"},
		{"bad stale", "GET", "/db/query?stale=bogus&q=" + q("SELECT 1"), ``, 400, "bad_request", "stale"},
		{"bad flag", "POST", "/db/execute?transaction=perhaps", `["DELETE FROM e"]`, 400, "bad_request", "transaction"},
		{"write to query (POST)", "POST", "/db/query", `["DELETE FROM e"]`, 400, "not_read_only", ""},
		{"write to query (GET)", "GET", "/db/query?q=" + q("UPDATE e SET v = 'z'"), ``, 400, "not_read_only", ""},
		{"write to query at level none", "GET", "/db/query?level=none&q=" + q("DELETE FROM e"), ``, 400, "not_read_only", ""},
		{"schema change to query", "POST", "/db/query?level=none", `["DROP TABLE e"]`, 400, "not_read_only", ""},
		{"write after a read in query", "POST", "/db/query", `["SELECT 1", "INSERT INTO e(v) VALUES('q')"]`, 400, "not_read_only", ""},
		{"two statements in one query string", "POST", "/db/query?level=none", `["SELECT 1; DELETE FROM e"]`, 400, "not_read_only", ""},
		{"parameterized write to query", "POST", "/db/query", `[["INSERT INTO e(v) VALUES(?)", "p"]]`, 400, "not_read_only", ""},
		{"write CTE to query", "POST", "/db/query", `["WITH x(v) AS (VALUES('w')) INSERT INTO e(v) SELECT v FROM x"]`, 400, "not_read_only", ""},
		{"setting PRAGMA to query", "POST", "/db/query?level=none", `["PRAGMA user_version = 7"]`, 400, "not_read_only", ""},
		{"oversized body to execute", "POST", "/db/execute", oversized, 413, "too_large", fmt.Sprint(errorsMaxBody)},
		{"oversized body to query", "POST", "/db/query", oversized, 413, "too_large", ""},
		{"oversized body to request", "POST", "/db/request", oversized, 413, "too_large", ""},
		{"unknown route", "GET", "/db/nope", ``, 404, "not_found", "/db/nope"},
		{"unknown route POST", "POST", "/execute", `["DELETE FROM e"]`, 404, "not_found", ""},
	}
	for _, n := range c.Nodes {
		role := "follower"
		if n == leader {
			role = "leader"
		}
		t.Run(n.ID+" "+role, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					msg := errorsWant(t, errorsSend(t, n, tc.method, tc.path, tc.body), tc.status, tc.code)
					if tc.mention != "" && !strings.Contains(msg, tc.mention) {
						t.Fatalf("message %q does not mention %q", msg, tc.mention)
					}
				})
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		// A request whose ?timeout has already passed answers at once, with 504 or another clean error.
		for _, n := range c.Nodes {
			for _, req := range []struct{ method, path, body string }{
				{"GET", "/db/query?timeout=1ns&q=" + q("SELECT COUNT(*) FROM e"), ""},
				{"GET", "/db/query?timeout=1ns&level=strong&q=" + q("SELECT COUNT(*) FROM e"), ""},
				{"POST", "/db/execute?timeout=1ns", `["INSERT INTO tmo(v) VALUES('t')"]`},
				{"POST", "/db/request?timeout=1ns", `["INSERT INTO tmo(v) VALUES('t')", "SELECT 1"]`},
			} {
				start := time.Now()
				r := errorsSend(t, n, req.method, req.path, req.body)
				if d := time.Since(start); d > 10*time.Second {
					t.Fatalf("%s %s on %s took %s", req.method, req.path, n.ID, d)
				}
				switch r.Status {
				case http.StatusOK:
				case http.StatusGatewayTimeout:
					errorsWant(t, r, http.StatusGatewayTimeout, "timeout")
				default:
					t.Fatalf("%s %s on %s: %d %s, want 504 or a clean answer", req.method, req.path, n.ID, r.Status, r.Body)
				}
				t.Logf("%s %s on %s: %d %s", req.method, req.path, n.ID, r.Status, strings.TrimSpace(string(r.Body)))
			}
		}
	})

	t.Run("nothing changed and every node still serves", func(t *testing.T) {
		// A write after all the bad requests gives an index every node must reach; the table must be as before.
		mark := leader.Execute(t, "", "INSERT INTO tmo(v) VALUES('mark')")
		for _, n := range c.Nodes {
			if !n.Running() {
				t.Fatalf("%s stopped:\n%s", n.ID, n.LogTail(30))
			}
			if r := errorsSend(t, n, "GET", "/readyz", ""); r.Status != http.StatusOK {
				t.Fatalf("/readyz on %s: %d %s", n.ID, r.Status, r.Body)
			}
			if got := errorsSnapshot(t, n, mark.RaftIndex); !reflect.DeepEqual(got, want) {
				t.Fatalf("rows on %s after the bad requests: %v, want %v", n.ID, got, want)
			}
			d, _ := n.Query(t, "PRAGMA user_version", "level=none")
			var uv []any
			if len(d.Results) == 1 && len(d.Results[0].Values) == 1 {
				uv = d.Results[0].Values[0]
			}
			if b, _ := json.Marshal(uv); string(b) != "[0]" {
				t.Fatalf("user_version on %s: %s, want 0", n.ID, b)
			}
			// And the node still takes good requests.
			if d := n.Execute(t, "", "SELECT 1"); len(d.Results) != 1 {
				t.Fatalf("execute on %s: %+v", n.ID, d)
			}
		}
	})
}
