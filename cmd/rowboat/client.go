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
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// errUnknownOutcome is returned when a request that may write reached a node but no answer says whether it
// was applied: the connection broke after the request was sent, or the server answered unknown_outcome or
// a timeout. The client never sends such a request again; only a read can tell what happened.
var errUnknownOutcome = errors.New("the request may or may not have been applied")

// APIError is a request-level failure: a non-200 answer, with the server's {"error","code"} when it sent one.
type APIError struct {
	Status     int
	Message    string
	Code       string
	RetryAfter time.Duration // from Retry-After; 0 when absent
}

func (e *APIError) Error() string { return e.Message + " (" + e.Code + ")" }

// Result is one statement's result, in rqlite's shape. Values hold json.Number for numbers, so that 64-bit
// integers print exactly.
type Result struct {
	Columns      []string `json:"columns"`
	Types        []string `json:"types"`
	Values       [][]any  `json:"values"`
	LastInsertID int64    `json:"last_insert_id"`
	RowsAffected int64    `json:"rows_affected"`
	Error        string   `json:"error"`
}

// Answer is what one statement got back.
type Answer struct {
	Result   Result
	Write    bool   // the statement went through the Raft log (the answer carried raft_index)
	Index    uint64 // X-Rowboat-Index: the write's entry, or the state the read saw
	ServedBy string // X-Rowboat-Served-By: the node that executed it
}

// Client talks to a rowboat cluster for one shell session. It knows the nodes it may use and which one it
// uses now, the read level, and the session bookmark: the highest Raft index the session has seen, sent as
// min_index on every read, so that the session reads its own writes (and never goes back in time) whichever
// node answers. A Client is not safe for concurrent use.
type Client struct {
	hosts    []string // base URLs, "http://host:port"
	cur      int
	level    string
	timeout  time.Duration
	http     *http.Client
	notes    io.Writer            // failover notes
	noted    map[string]time.Time // when each recent note was written (see note)
	bookmark uint64
}

// levels are the read levels the server accepts.
var levels = []string{"none", "weak", "linearizable", "strong", "auto"}

// NewClient returns a client for a comma-separated list of nodes; it uses the first one until it fails.
// timeout bounds each request on the server (?timeout) and how long the client keeps retrying through a
// leader change. Notes about failover go to notes.
func NewClient(hostList, level string, timeout time.Duration, notes io.Writer) (*Client, error) {
	c := &Client{timeout: timeout, notes: notes, noted: map[string]time.Time{}, http: &http.Client{}}
	if timeout <= 0 {
		return nil, fmt.Errorf("timeout %s: must be positive", timeout)
	}
	for _, h := range strings.Split(hostList, ",") {
		if strings.TrimSpace(h) == "" {
			continue
		}
		if err := c.addHost(h); err != nil {
			return nil, err
		}
	}
	if len(c.hosts) == 0 {
		return nil, errors.New("no host given")
	}
	c.cur = 0
	if err := c.SetLevel(level); err != nil {
		return nil, err
	}
	return c, nil
}

// normalizeHost turns "host:port", ":port", "host" (port 4001, rowboat's default) or "http://host:port/" into a
// base URL.
func normalizeHost(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("host %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("host %q: want host:port", s)
	}
	if strings.HasPrefix(u.Host, ":") {
		u.Host = "127.0.0.1" + u.Host
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "4001")
	}
	return u.Scheme + "://" + u.Host, nil
}

// addHost makes h the current node, adding it to the list if it is new.
func (c *Client) addHost(h string) error {
	base, err := normalizeHost(h)
	if err != nil {
		return err
	}
	if i := slices.Index(c.hosts, base); i >= 0 {
		c.cur = i
		return nil
	}
	c.hosts = append(c.hosts, base)
	c.cur = len(c.hosts) - 1
	return nil
}

// Host is the node in use, as host:port.
func (c *Client) Host() string { return display(c.hosts[c.cur]) }

// Hosts are all the nodes the client may use, as host:port.
func (c *Client) Hosts() []string {
	out := make([]string, len(c.hosts))
	for i, h := range c.hosts {
		out[i] = display(h)
	}
	return out
}

func display(base string) string { return strings.TrimPrefix(base, "http://") }

// SetHost switches to node h (host:port), keeping the session bookmark. A node that does not answer is
// refused, and the client stays on the node it uses.
func (c *Client) SetHost(ctx context.Context, h string) error {
	base, err := normalizeHost(h)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, _, err := c.send(ctx, base, call{method: http.MethodGet, path: "/readyz", query: url.Values{"noleader": {""}}}); err != nil {
		return fmt.Errorf("%s does not answer (%v): still using %s", display(base), err, c.Host())
	}
	return c.addHost(h)
}

// sameNode reports whether two base URLs name the same node: the same port, and the same host or two names
// of this machine (localhost, 127.0.0.1, ::1).
func sameNode(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil || ua.Port() != ub.Port() {
		return false
	}
	loopback := func(h string) bool {
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return ua.Hostname() == ub.Hostname() || loopback(ua.Hostname()) && loopback(ub.Hostname())
}

// Level is the read level sent with every read.
func (c *Client) Level() string { return c.level }

// SetLevel sets the read level; it must be one the server knows.
func (c *Client) SetLevel(l string) error {
	l = strings.ToLower(strings.TrimSpace(l))
	if !slices.Contains(levels, l) {
		return fmt.Errorf("unknown read level %q: use %s", l, strings.Join(levels, ", "))
	}
	c.level = l
	return nil
}

// Bookmark is the session bookmark: the highest Raft index seen, 0 before any.
func (c *Client) Bookmark() uint64 { return c.bookmark }

// ResetBookmark forgets the bookmark (for instance after pointing the shell at another cluster).
func (c *Client) ResetBookmark() { c.bookmark = 0 }

func (c *Client) observe(index uint64) { c.bookmark = max(c.bookmark, index) }

// call is one HTTP request, before it is given to a node.
type call struct {
	method, path string
	query        url.Values
	body         []byte
	// resend: the request may be sent again after a node received it and did not answer, because it cannot
	// write. Otherwise it is retried elsewhere only when the failure proves nothing was applied.
	resend bool
}

// reply is a node's HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// Exec runs one SQL statement with optional positional arguments. Reads (by their first keyword) go to
// /db/request at the session's level with the bookmark as min_index; the rest to /db/execute. An error in
// the SQL is no error here: it is in the Answer's Result, as the server reports it.
func (c *Client) Exec(ctx context.Context, sql string, args ...any) (*Answer, error) {
	var stmt any = sql
	if len(args) > 0 {
		stmt = append([]any{sql}, args...)
	}
	body, err := json.Marshal([]any{stmt})
	if err != nil {
		return nil, err
	}
	q := url.Values{"timeout": {c.timeout.String()}, "blob_array": {""}}
	cl := call{method: http.MethodPost, path: "/db/execute", query: q, body: body}
	if isRead(sql) {
		cl.path, cl.resend = "/db/request", resendable(sql)
		q.Set("level", c.level)
		if c.bookmark > 0 {
			q.Set("min_index", strconv.FormatUint(c.bookmark, 10))
		}
	}
	rep, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	out, err := decodeData(rep)
	if err != nil {
		return nil, err
	}
	if len(out.Results) != 1 {
		return nil, fmt.Errorf("the answer holds %d results for 1 statement", len(out.Results))
	}
	a := &Answer{Result: out.Results[0], Write: out.RaftIndex > 0, Index: max(headerIndex(rep.header), out.RaftIndex),
		ServedBy: rep.header.Get("X-Rowboat-Served-By")}
	c.observe(out.RaftIndex)
	return a, nil
}

// dataAnswer is the body of a data response.
type dataAnswer struct {
	Results   []Result `json:"results"`
	RaftIndex uint64   `json:"raft_index"`
}

// decodeData decodes a data response, numbers kept exact.
func decodeData(rep *reply) (*dataAnswer, error) {
	var out dataAnswer
	dec := json.NewDecoder(bytes.NewReader(rep.body))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("decode the answer: %w", err)
	}
	return &out, nil
}

// ExecTx runs statements as one transaction (/db/execute?transaction): all of them apply, or none does. It
// returns a result per statement (with ?transaction the server stops at the first that fails) and whether
// the transaction was applied.
func (c *Client) ExecTx(ctx context.Context, stmts []string) ([]Result, bool, error) {
	body, err := json.Marshal(stmts)
	if err != nil {
		return nil, false, err
	}
	q := url.Values{"timeout": {c.timeout.String()}, "transaction": {""}, "blob_array": {""}}
	rep, err := c.do(ctx, call{method: http.MethodPost, path: "/db/execute", query: q, body: body})
	if err != nil {
		return nil, false, err
	}
	out, err := decodeData(rep)
	if err != nil {
		return nil, false, err
	}
	c.observe(out.RaftIndex)
	applied := true
	for _, r := range out.Results {
		applied = applied && r.Error == ""
	}
	return out.Results, applied, nil
}

// Status is GET /status.
type Status struct {
	ID             string    `json:"id"`
	Role           string    `json:"role"`
	Term           uint64    `json:"term"`
	LeaderID       string    `json:"leader_id"`
	LeaderHTTPAddr string    `json:"leader_http_addr"`
	CommitIndex    uint64    `json:"commit_index"`
	AppliedIndex   uint64    `json:"applied_index"`
	LastIndex      uint64    `json:"last_index"`
	LastContact    time.Time `json:"last_contact"`
	Voter          bool      `json:"voter"`
	Ready          bool      `json:"ready"`
	NotReady       string    `json:"not_ready"`
	Members        []struct {
		ID       string `json:"id"`
		HTTPAddr string `json:"http_addr"`
		RaftAddr string `json:"raft_addr"`
		Voter    bool   `json:"voter"`
		Leader   bool   `json:"leader"`
	} `json:"members"`
	MemberLag []struct { // only from the leader
		ID           string `json:"id"`
		Reachable    bool   `json:"reachable"`
		AppliedIndex uint64 `json:"applied_index"`
		Lag          uint64 `json:"lag"`
		Error        string `json:"error"`
	} `json:"member_lag"`
}

// Status asks the node in use for its view of the cluster.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.getJSON(ctx, "/status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// NodeInfo is one member in GET /nodes.
type NodeInfo struct {
	ID        string `json:"id"`
	APIAddr   string `json:"api_addr"`
	Addr      string `json:"addr"`
	Voter     bool   `json:"voter"`
	Reachable bool   `json:"reachable"`
	Leader    bool   `json:"leader"`
	Error     string `json:"error"`
}

// Nodes lists the members, sorted by id.
func (c *Client) Nodes(ctx context.Context) ([]NodeInfo, error) {
	var m map[string]NodeInfo
	if err := c.getJSON(ctx, "/nodes", &m); err != nil {
		return nil, err
	}
	out := make([]NodeInfo, 0, len(m))
	for id, n := range m {
		if n.ID == "" {
			n.ID = id
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Discover adds the cluster's other members, as /nodes on the node in use lists them, to the nodes the client
// may use, after those it was given: a session started against one node survives that node's loss. It is
// best effort: a node that cannot answer leaves the list as it was.
func (c *Client) Discover(ctx context.Context) {
	ns, err := c.Nodes(ctx)
	if err != nil {
		return
	}
	cur := c.cur
	for _, n := range ns {
		base, err := normalizeHost(n.APIAddr)
		if n.APIAddr == "" || err != nil { // a member's address that does not parse is skipped
			continue
		}
		if !slices.ContainsFunc(c.hosts, func(h string) bool { return sameNode(h, base) }) {
			c.addHost(base) // one given as localhost:4001 is not added again as 127.0.0.1:4001
		}
	}
	c.cur = cur
}

// TransferLeader asks for a planned failover: to node id, or (id "") to the voter the leader picks. It
// returns once the old leader has handed over.
func (c *Client) TransferLeader(ctx context.Context, id string) error {
	cl := call{method: http.MethodPost, path: "/leader", query: url.Values{"timeout": {c.timeout.String()}}}
	if id != "" {
		cl.body, _ = json.Marshal(map[string]string{"id": id})
	}
	_, err := c.do(ctx, cl)
	return err
}

// Remove removes member id from the cluster (DELETE /remove). force removes it even if the voters left
// would not make a quorum of answering ones.
func (c *Client) Remove(ctx context.Context, id string, force bool) error {
	req := map[string]any{"id": id}
	if force {
		req["force"] = true
	}
	body, _ := json.Marshal(req)
	_, err := c.do(ctx, call{method: http.MethodDelete, path: "/remove", body: body})
	return err
}

// Ready asks the node in use, and only it, whether it is ready (GET /readyz), and if it is not, why.
func (c *Client) Ready(ctx context.Context) (ok bool, why string, err error) {
	rep, _, err := c.send(ctx, c.hosts[c.cur], call{method: http.MethodGet, path: "/readyz"})
	if err != nil {
		return false, "", err
	}
	if rep.status == http.StatusOK {
		return true, "", nil
	}
	return false, apiError(rep).Message, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	rep, err := c.do(ctx, call{method: http.MethodGet, path: path, resend: true})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(rep.body, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// do sends cl to the node in use and, when that node fails in a way that allows it, to the next ones in
// turn; the node that answers stays in use. A read moves on after a network error or a 503 with
// Retry-After. A request that may write moves on only when nothing was applied: it never reached the node,
// or the answer is no_leader, not_leader or shutting_down. When a round ends on such an answer (an election
// is under way), it waits Retry-After and goes round again, until the client's timeout has passed.
func (c *Client) do(ctx context.Context, cl call) (*reply, error) {
	deadline := time.Now().Add(c.timeout)
	waited := false
	for {
		// The error to report if the round fails: the last answer a node gave (no leader, say) tells more
		// than a node that could not be reached at all.
		var lastErr, lastAnswer error
		var wait time.Duration
		for range c.hosts {
			host := c.hosts[c.cur]
			rep, sent, err := c.send(ctx, host, cl)
			if err == nil && rep.status == http.StatusOK {
				c.observe(headerIndex(rep.header))
				return rep, nil
			}
			if err == nil {
				err = apiError(rep)
			}
			if ctx.Err() != nil {
				if sent && !cl.resend {
					return nil, fmt.Errorf("%w: interrupted after it was sent to %s", errUnknownOutcome, display(host))
				}
				return nil, ctx.Err()
			}
			next, unknown := judge(cl, rep, sent)
			if unknown {
				if rep != nil {
					err = fmt.Errorf("%s: %w", display(host), err)
				}
				return nil, fmt.Errorf("%w: %w", errUnknownOutcome, err)
			}
			if !next {
				return nil, err
			}
			lastErr = err
			if rep != nil {
				lastAnswer = err
			}
			var ae *APIError
			if errors.As(err, &ae) && leaderChanging(ae.Code) && ae.RetryAfter > 0 {
				wait = max(wait, ae.RetryAfter)
			}
			if len(c.hosts) > 1 {
				c.cur = (c.cur + 1) % len(c.hosts)
				what := err.Error()
				if rep != nil {
					what = display(host) + ": " + what
				}
				c.note(fmt.Sprintf("rowboat: %s; trying %s", what, display(c.hosts[c.cur])))
			}
		}
		if lastAnswer != nil {
			lastErr = lastAnswer
		}
		if wait == 0 || time.Now().Add(wait).After(deadline) {
			return nil, lastErr
		}
		if !waited {
			waited = true
			c.note(fmt.Sprintf("rowboat: waiting for a leader (up to %s; Ctrl-C cancels)", time.Until(deadline).Round(time.Second)))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// note writes a failover note, unless the same one was written in the last noteWindow: retries of a request,
// and of the requests after it, would otherwise repeat every note of every round.
func (c *Client) note(line string) {
	const noteWindow = 30 * time.Second
	now := time.Now()
	if at, ok := c.noted[line]; ok && now.Sub(at) < noteWindow {
		return
	}
	for l, at := range c.noted {
		if now.Sub(at) >= noteWindow {
			delete(c.noted, l)
		}
	}
	c.noted[line] = now
	fmt.Fprintln(c.notes, line)
}

// judge decides what a failed attempt allows: moving on to the next node, or reporting that the outcome of
// a request that may write is unknown. rep is nil after a network error; sent tells whether the request
// was written to the connection before it failed.
func judge(cl call, rep *reply, sent bool) (next, unknown bool) {
	if rep == nil {
		if !sent || cl.resend {
			return true, false
		}
		return false, true
	}
	ae := apiError(rep)
	switch {
	case nothingApplied(ae.Code):
		return rep.status == http.StatusServiceUnavailable, false
	case cl.resend:
		return rep.status == http.StatusServiceUnavailable && ae.RetryAfter > 0, false
	case ae.Code == "unknown_outcome" || rep.status == http.StatusGatewayTimeout:
		return false, true
	}
	return false, false
}

// leaderChanging reports whether an error code says that the cluster has no leader to serve a write just now.
func leaderChanging(code string) bool {
	return code == "no_leader" || code == "not_leader" || code == "shutting_down"
}

// nothingApplied reports whether an error code proves that the request changed nothing.
func nothingApplied(code string) bool {
	switch code {
	case "no_leader", "not_leader", "shutting_down", "stale":
		return true
	}
	return false
}

// send makes one attempt on one node. sent reports whether the request was written out whole, after which
// the node may have acted on it even if no answer comes back.
func (c *Client) send(ctx context.Context, base string, cl call) (rep *reply, sent bool, err error) {
	u := base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	// The server bounds its work by ?timeout; the extra second lets its 504 arrive before the client gives up.
	ctx, cancel := context.WithTimeout(ctx, c.timeout+time.Second)
	defer cancel()
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) }}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), cl.method, u, body)
	if err != nil {
		return nil, false, err
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is noise: say which node, and what went wrong
		}
		return nil, wrote.Load(), fmt.Errorf("%s: %w", display(base), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, true, fmt.Errorf("%s: read the answer: %w", display(base), err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, true, nil
}

// apiError reads a non-200 answer's {"error","code"} and Retry-After.
func apiError(rep *reply) *APIError {
	e := &APIError{Status: rep.status}
	var body struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(rep.body, &body) == nil && body.Error != "" {
		e.Message, e.Code = body.Error, body.Code
	} else {
		e.Message = strings.TrimSpace(string(rep.body))
		if e.Message == "" {
			e.Message = http.StatusText(rep.status)
		}
	}
	if e.Code == "" {
		e.Code = "HTTP " + strconv.Itoa(rep.status)
	}
	if secs, err := strconv.Atoi(rep.header.Get("Retry-After")); err == nil && secs >= 0 {
		e.RetryAfter = time.Duration(max(secs, 1)) * time.Second
	}
	return e
}

func headerIndex(h http.Header) uint64 {
	i, _ := strconv.ParseUint(h.Get("X-Rowboat-Index"), 10, 64)
	return i
}
