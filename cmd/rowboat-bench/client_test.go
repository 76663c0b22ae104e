package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/rawhttp"
)

// TestClient_FollowsRedirect: a follower answering 307 with the leader's address gets the same POST, body
// and all, sent to the leader.
func TestClient_FollowsRedirect(t *testing.T) {
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/db/execute" || string(b) != `["INSERT 1"]` {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path+" "+string(b), http.StatusBadRequest)
			return
		}
		io.WriteString(w, `{"results":[{"rows_affected":1}]}`)
	}))
	defer leader.Close()
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, leader.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer follower.Close()
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer loop.Close()

	raw := rawhttp.New(5 * time.Second)
	defer raw.CloseIdle()
	for name, c := range map[string]*client{
		"raw":      {http: newHTTPClient(1, 5*time.Second), raw: raw},
		"net/http": {http: newHTTPClient(1, 5*time.Second)},
	} {
		res := c.execute(context.Background(), follower.URL, []any{"INSERT 1"})
		if res.err != nil || res.written != 1 {
			t.Fatalf("%s: redirected write: written %d, err %v", name, res.written, res.err)
		}
		if res := c.execute(context.Background(), loop.URL, []any{"INSERT 1"}); res.err == nil {
			t.Fatalf("%s: a redirect loop succeeded", name)
		}
	}
}
