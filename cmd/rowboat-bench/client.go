package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rowboatdb/rowboat/internal/rawhttp"
)

// newHTTPClient returns the one client the whole run shares, keeping up to conc idle connections per node
// so that no worker pays for a new connection once the run is warm.
func newHTTPClient(conc int, timeout time.Duration) *http.Client {
	t := &http.Transport{
		Proxy:               nil, // benchmarks target the nodes directly
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no global limit; the per-host one below is what matters
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: t, Timeout: timeout}
}

// result is one element of "results" in an execute or query response; only the fields the bench uses.
type result struct {
	Error        string   `json:"error,omitempty"`
	RowsAffected int64    `json:"rows_affected"`
	LastInsertID int64    `json:"last_insert_id"`
	Columns      []string `json:"columns"`
	Values       [][]any  `json:"values"`
}

type response struct {
	Results []result `json:"results"`
	Error   string   `json:"error"`
}

// call is the outcome of one request. A call succeeded only if err is nil: HTTP 200, a decodable body with
// one result per statement, no top-level "error" and no result with an "error".
type call struct {
	results []result
	// written counts the rows the request applied, even when it failed as a whole: without ?transaction the
	// statements that did not fail are applied anyway, and the row-count check must know about them.
	written int64
	status  int // HTTP status; 0 when no answer arrived
	err     error
}

// client sends statements to rqlite-compatible nodes: over the lean keep-alive client for http:// URLs
// (package rawhttp), over net/http for anything else.
type client struct {
	http *http.Client
	raw  *rawhttp.Client // nil: use http for everything
}

// maxRedirects bounds how many 3xx answers one request follows (a follower may answer 307 with the leader).
const maxRedirects = 10

// execute POSTs stmts to base/db/execute.
func (c *client) execute(ctx context.Context, base string, stmts []any) call {
	return c.post(ctx, base+"/db/execute", stmts)
}

// query POSTs stmts to base/db/query at the given read level.
func (c *client) query(ctx context.Context, base, level string, stmts []any) call {
	return c.post(ctx, base+"/db/query?level="+url.QueryEscape(level), stmts)
}

// queryGET sends one statement as GET base/db/query?q=...&level=....
func (c *client) queryGET(ctx context.Context, base, level, sql string) call {
	return c.do(ctx, http.MethodGet, base+"/db/query?q="+url.QueryEscape(sql)+"&level="+url.QueryEscape(level), nil, 1)
}

func (c *client) post(ctx context.Context, u string, stmts []any) call {
	body, err := json.Marshal(stmts)
	if err != nil {
		return call{err: fmt.Errorf("encode statements: %w", err)}
	}
	return c.do(ctx, http.MethodPost, u, body, len(stmts))
}

// do sends the request, following redirects with the same method and body, and decodes the answer.
func (c *client) do(ctx context.Context, method, u string, body []byte, nstmts int) call {
	for range maxRedirects + 1 {
		status, location, out := c.roundTrip(ctx, method, u, body, nstmts)
		if location == "" {
			return out
		}
		base, err := url.Parse(u)
		if err != nil {
			return call{status: status, err: err}
		}
		next, err := base.Parse(location)
		if err != nil {
			return call{status: status, err: fmt.Errorf("HTTP %d with a bad Location %q: %w", status, location, err)}
		}
		u = next.String()
	}
	return call{err: fmt.Errorf("more than %d redirects", maxRedirects)}
}

// roundTrip sends one request. A 301, 302, 307 or 308 answer with a Location returns it and no call.
func (c *client) roundTrip(ctx context.Context, method, u string, body []byte, nstmts int) (status int, location string, out call) {
	if c.raw != nil {
		if host, target, err := rawhttp.SplitURL(u); err == nil {
			err := c.raw.Do(ctx, rawhttp.Request{Method: method, Host: host, Target: target, Body: body}, func(r rawhttp.Response) error {
				status = r.Status
				if isRedirect(r.Status) && r.Location != "" {
					location = r.Location
					return nil
				}
				out = decodeCall(r.Status, r.Body, nstmts)
				return nil
			})
			if err != nil {
				return 0, "", call{err: err}
			}
			return status, location, out
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, "", call{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, "", call{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, "", call{status: resp.StatusCode, err: fmt.Errorf("read body: %w", err)}
	}
	return resp.StatusCode, "", decodeCall(resp.StatusCode, raw, nstmts)
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// decodeCall turns an answer into a call; see call for what counts as success.
func decodeCall(status int, raw []byte, nstmts int) call {
	if status != http.StatusOK {
		return call{status: status, err: fmt.Errorf("HTTP %d: %s", status, snippet(raw))}
	}
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		return call{status: status, err: fmt.Errorf("decode body: %w: %s", err, snippet(raw))}
	}
	out := call{results: r.Results, status: status}
	for _, res := range r.Results {
		if res.Error == "" {
			out.written += res.RowsAffected
		} else if out.err == nil {
			out.err = fmt.Errorf("statement error: %s", res.Error)
		}
	}
	switch {
	case r.Error != "":
		out.err = fmt.Errorf("request error: %s", r.Error)
	case out.err == nil && len(r.Results) != nstmts:
		out.err = fmt.Errorf("%d results for %d statements", len(r.Results), nstmts)
	}
	return out
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// node is one member as discovery saw it.
type node struct {
	URL  string
	ID   string // empty when /status does not say
	Role string // "leader", "follower", ... lower case; empty if /status did not answer
}

// label is how a node appears in the results table.
func (n node) label() string {
	host := strings.TrimPrefix(strings.TrimPrefix(n.URL, "http://"), "https://")
	if n.ID != "" {
		return n.ID + " " + host
	}
	return host
}

// roleFromStatus reads the Raft role out of a /status body: rowboat's {"role":"leader","id":"n1"} or
// rqlite v8's {"store":{"node_id":"1","raft":{"state":"Leader"}}}.
func roleFromStatus(body []byte) (role, id string, err error) {
	var s struct {
		Role  string `json:"role"`
		ID    string `json:"id"`
		Store struct {
			NodeID string `json:"node_id"`
			Raft   struct {
				State string `json:"state"`
			} `json:"raft"`
		} `json:"store"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return "", "", fmt.Errorf("decode status: %w", err)
	}
	switch {
	case s.Role != "":
		return strings.ToLower(s.Role), s.ID, nil
	case s.Store.Raft.State != "":
		return strings.ToLower(s.Store.Raft.State), s.Store.NodeID, nil
	}
	return "", "", errors.New("status has neither role nor store.raft.state")
}

// discover asks every node for its /status and picks the leader and one follower. A node whose status cannot
// be read is still listed, without a role. With no node claiming leadership, the first URL is taken to be the
// leader; follower is the zero node when there is no other node.
func discover(ctx context.Context, hc *http.Client, urls []string, logf func(string, ...any)) (leader, follower node) {
	nodes := make([]node, len(urls))
	leaderAt := -1
	for i, u := range urls {
		nodes[i] = node{URL: u}
		role, id, err := fetchRole(ctx, hc, u)
		if err != nil {
			logf("discovery: %s: %v", u, err)
			continue
		}
		nodes[i].Role, nodes[i].ID = role, id
		if role == "leader" && leaderAt < 0 {
			leaderAt = i
		}
	}
	if leaderAt < 0 {
		logf("discovery: no node says it leads; using the first URL, %s, as the leader", urls[0])
		leaderAt = 0
	}
	leader = nodes[leaderAt]
	// Prefer a node that says it follows; otherwise any other node (it may be unreachable, and the reads
	// against it will show errors, which is the truth).
	for pass := 0; pass < 2 && follower.URL == ""; pass++ {
		for i, n := range nodes {
			if i != leaderAt && (pass == 1 || n.Role == "follower") {
				follower = n
				break
			}
		}
	}
	return leader, follower
}

func fetchRole(ctx context.Context, hc *http.Client, base string) (role, id string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	if err != nil {
		return "", "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("status: HTTP %d: %s", resp.StatusCode, snippet(body))
	}
	return roleFromStatus(body)
}
