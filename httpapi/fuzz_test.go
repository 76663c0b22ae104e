package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzServer_DataRequests sends arbitrary bodies and query strings to the data endpoints of a leader (a fake
// store, so the fuzzer exercises parsing and routing, not SQLite). Whatever arrives, the server answers with
// a status it documents and a JSON body, and never panics.
func FuzzServer_DataRequests(f *testing.F) {
	for _, seed := range []struct {
		endpoint uint8
		query    string
		body     string
	}{
		{0, "", `["CREATE TABLE t(x)", ["INSERT INTO t VALUES(?)", 1]]`},
		{0, "transaction&timeout=2s", `[["INSERT INTO t VALUES(:x)", {"x": "y"}]]`},
		{1, "level=none&min_index=3&associative&blob_array", `["SELECT * FROM t"]`},
		{1, "level=bogus", `["SELECT 1"]`},
		{2, "freshness=1s&level=none", `["SELECT 1", "INSERT INTO t VALUES(2)"]`},
		{3, "q=SELECT+1&q=SELECT+2&pretty&timings", ``},
		{0, "", `[["INSERT INTO t VALUES(?)", [1, 2]]]`},
		{0, "", `[[]]`},
		{1, "", `{"not": "an array"}`},
		{0, "", "[\"\x00\"]"},
		{1, "min_index=18446744073709551616", `["SELECT 1"]`},
	} {
		f.Add(seed.endpoint, seed.query, seed.body)
	}
	srv := New(newFake("n1"), Options{Logger: quietLogger(), MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, endpoint uint8, query, body string) {
		method, path := http.MethodPost, []string{"/db/execute", "/db/query", "/db/request", "/db/query"}[endpoint%4]
		if endpoint%4 == 3 {
			method, body = http.MethodGet, ""
		}
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		// Bounded waits: a min_index the fake never reaches answers 503 after min_index_timeout.
		req.URL = &url.URL{Path: path, RawQuery: query + "&min_index_timeout=1ms"}
		req.RequestURI = ""
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge,
			http.StatusServiceUnavailable: // a min_index beyond what the leader has applied
		default:
			t.Fatalf("%s %s?%s %q: status %d %s", method, path, query, body, rec.Code, rec.Body)
		}
		var v any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %s?%s %q: %d with a body that is not JSON (%v): %q", method, path, query, body, rec.Code, err, rec.Body)
		}
		if rec.Code != http.StatusOK {
			if m, ok := v.(map[string]any); !ok || m["error"] == nil || m["code"] == nil {
				t.Fatalf("%s %s?%s %q: %d without an error and a code: %s", method, path, query, body, rec.Code, rec.Body)
			}
		}
	})
}
