// Package cluster starts real rowboatd processes on 127.0.0.1 for end-to-end and fault tests: it builds the
// binary once per test binary, picks free ports and temporary data directories, and stops every process it
// started, by PID, when the test ends. Nodes can be stopped, killed, paused, resumed and restarted on their
// data directory.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/faultproxy"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of a rowboatd binary: $ROWBOATD if set, otherwise one built once per test binary,
// with the race detector when ROWBOAT_RACE=1 (the processes then print any data race to their stderr, which
// the tests show when they fail, and exit with status 66).
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("ROWBOATD"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rowboatd-build-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "rowboatd")
		args := []string{"build", "-o", buildPath}
		if os.Getenv("ROWBOAT_RACE") == "1" {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "github.com/rowboatdb/rowboat/cmd/rowboatd")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build rowboatd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildPath
}

// Cleanup removes the binary Binary built, if any. Call it from TestMain after m.Run.
func Cleanup() {
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Ports come from below the kernel's
// ephemeral range (which starts at 32768), so a port handed out here cannot be taken meanwhile by a listener
// or connection that asks the kernel for any port (the fault proxies do); never twice in one process, nor to
// two test processes at once (see reserve: go test runs packages in parallel, and a node restarted on its
// port needs it still free).
func FreePort(tb testing.TB) int {
	tb.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if portsUsed[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		if !reserve(p) {
			continue
		}
		portsUsed[p] = true
		return p
	}
	tb.Fatal("no free port found")
	return 0
}

// FreePorts returns a base port such that base+offset was free a moment ago for every offset (scripts that
// derive several ports from one base need that), from the same range as FreePort and never overlapping a port
// this process handed out before.
func FreePorts(tb testing.TB, offsets ...int) int {
	tb.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	span := slices.Max(append(offsets, 0))
	for range 1000 {
		base := 20000 + rand.IntN(12000-span)
		var lns []net.Listener
		free := true
		for _, off := range offsets {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if portsUsed[base+off] || err != nil {
				free = false
				if err == nil {
					ln.Close()
				}
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		for _, off := range offsets {
			if !free || !reserve(base+off) {
				free = false
				break
			}
		}
		if !free {
			continue
		}
		for _, off := range offsets {
			portsUsed[base+off] = true
		}
		return base
	}
	tb.Fatal("no free block of ports found")
	return 0
}

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
	portLocks []*os.File // held open, locked, for the life of the process
)

// reserve claims port p for this process against other test processes on the machine: an exclusive flock on
// a file named for it, in a directory every test process shares. The kernel drops the lock when the process
// ends, however it ends, so nothing is left claimed. (Ports another process claimed stay out of reach even
// while free; there are 12,000 to choose from.) Where locking is not possible, p is taken as it is.
func reserve(p int) bool {
	dir := filepath.Join(os.TempDir(), "rowboat-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return !errors.Is(err, syscall.EWOULDBLOCK)
	}
	portLocks = append(portLocks, f)
	return true
}

// Cluster is a set of rowboatd processes started by one test.
type Cluster struct {
	tb  testing.TB
	bin string
	dir string
	mu  sync.Mutex // guards Nodes against Add while other goroutines look (use All there)
	// Nodes are the nodes in the order they were added. Goroutines other than the test's own should use All.
	Nodes []*Node
	// Args are passed to every node started after they are set.
	Args []string
	// Env is added to the environment of every node started after it is set.
	Env []string
	// Net holds a fault proxy on every directed Raft link when faults are enabled (EnableFaults or
	// StartWithFaults); nil otherwise.
	Net *faultproxy.Network
}

// Node is one rowboatd process and its data directory.
type Node struct {
	c        *Cluster
	ID       string
	HTTPAddr string
	RaftAddr string
	DataDir  string
	Voter    bool
	args     []string
	baseArgs int // how many of args Define set: the node's identity and addresses
	logPath  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused atomic.Bool // SIGSTOPped and not yet SIGCONTed
	// stopping is set while the harness stops the process; expectExit when the test expects it to exit by
	// itself (ExpectExit). Any other exit is recorded in selfExits, and fails the test (StopAll).
	stopping   atomic.Bool
	expectExit atomic.Bool
	selfExits  []string
}

// New returns an empty cluster whose processes are stopped when tb ends.
func New(tb testing.TB) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, bin: Binary(tb), dir: tb.TempDir()}
	tb.Cleanup(c.StopAll)
	return c
}

// EnableFaults routes every Raft link between nodes added from now on through its own fault proxy (c.Net):
// node A dials node B's Raft address through proxy A->B.
func (c *Cluster) EnableFaults() {
	if c.Net == nil {
		c.Net = faultproxy.NewNetwork()
		c.tb.Cleanup(func() { c.Net.Close() })
	}
}

// StartWithFaults is Start with every Raft link behind a fault proxy.
func StartWithFaults(tb testing.TB, n int, args ...string) *Cluster {
	tb.Helper()
	return start(tb, n, true, args)
}

// Start starts a cluster of n voters (the first bootstraps, the others join it) and waits until all are ready.
func Start(tb testing.TB, n int, args ...string) *Cluster {
	tb.Helper()
	return start(tb, n, false, args)
}

func start(tb testing.TB, n int, faults bool, args []string) *Cluster {
	tb.Helper()
	c := New(tb)
	if faults {
		c.EnableFaults()
	}
	c.Args = args
	for i := 0; i < n; i++ {
		c.Add(true)
	}
	for _, nd := range c.Nodes {
		nd.WaitReady(tb, 60*time.Second)
	}
	return c
}

// Add starts a new node: the first bootstraps, later ones join the first running node. It does not wait.
func (c *Cluster) Add(voter bool, args ...string) *Node {
	c.tb.Helper()
	var join []string
	for _, other := range c.Nodes {
		if other.Running() {
			join = []string{"--join", other.HTTPAddr}
			break
		}
	}
	nd := c.Define(voter, append(join, args...)...)
	nd.Start()
	return nd
}

// Define adds a node with its own ports and data directory, c.Args and then args, without starting it and
// without a --join: the caller gives the flags that say how it finds the cluster, and starts it (Start).
func (c *Cluster) Define(voter bool, args ...string) *Node {
	c.tb.Helper()
	id := fmt.Sprintf("n%d", len(c.Nodes)+1)
	nd := &Node{
		c: c, ID: id, Voter: voter,
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", FreePort(c.tb)),
		RaftAddr: fmt.Sprintf("127.0.0.1:%d", FreePort(c.tb)),
		DataDir:  filepath.Join(c.dir, id),
		logPath:  filepath.Join(c.dir, id+".log"),
	}
	nd.args = []string{"--id", id, "--http-addr", nd.HTTPAddr, "--raft-addr", nd.RaftAddr, "--data-dir", nd.DataDir}
	if !voter {
		nd.args = append(nd.args, "--voter=false")
	}
	nd.baseArgs = len(nd.args)
	nd.args = append(nd.args, c.Args...)
	nd.args = append(nd.args, args...)
	c.mu.Lock()
	c.Nodes = append(c.Nodes, nd)
	c.mu.Unlock()
	if c.Net != nil {
		for _, o := range c.Nodes[:len(c.Nodes)-1] {
			if _, err := c.Net.Link(o.ID, nd.ID, nd.RaftAddr); err != nil {
				c.tb.Fatal(err)
			}
			if _, err := c.Net.Link(nd.ID, o.ID, o.RaftAddr); err != nil {
				c.tb.Fatal(err)
			}
		}
		for _, o := range c.Nodes {
			if err := c.Net.WriteDialMap(o.dialMap(), o.ID); err != nil {
				c.tb.Fatal(err)
			}
		}
	}
	return nd
}

// SetArgs replaces the node's flags after the ones Define gave it (id, addresses, data directory, voter) for
// its next Start.
func (n *Node) SetArgs(args ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.args = append(n.args[:n.baseArgs:n.baseArgs], args...)
}

func (n *Node) dialMap() string { return filepath.Join(n.c.dir, n.ID+".dialmap") }

// Link returns the fault proxy on the Raft link from -> to (faults must be enabled).
func (c *Cluster) Link(from, to *Node) *faultproxy.Proxy {
	c.tb.Helper()
	if c.Net == nil {
		c.tb.Fatal("faults are not enabled on this cluster")
	}
	return c.Net.Get(from.ID, to.ID)
}

// All returns the nodes added so far; safe while another goroutine adds one.
func (c *Cluster) All() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.Nodes...)
}

// Running returns the nodes whose process is running (paused ones included; see Node.Paused).
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.All() {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// ExpectExit tells the harness that the node's process will exit by itself (a test of a fatal condition), so
// StopAll does not count that exit as a failure.
func (n *Node) ExpectExit() { n.expectExit.Store(true) }

// StopAll kills every process still running and fails the test if a node exited without the harness or the
// test asking (ExpectExit), or if a node's log holds a Go panic, runtime error or data race report. If the test
// failed, it prints the tail of every node's log.
func (c *Cluster) StopAll() {
	for _, nd := range c.All() {
		nd.Kill()
	}
	for _, nd := range c.All() {
		nd.mu.Lock()
		exits := nd.selfExits
		nd.mu.Unlock()
		if len(exits) > 0 {
			c.tb.Errorf("%s exited without being asked to (%s); the end of its log:\n%s", nd.ID, strings.Join(exits, "; "), nd.LogTail(15))
		}
		if report := nd.crashReport(); report != "" {
			c.tb.Errorf("%s's log has a Go panic, runtime error or data race report:\n%s", nd.ID, report)
		}
	}
	if c.tb.Failed() {
		for _, nd := range c.All() {
			c.tb.Logf("---- log of %s (last lines) ----\n%s", nd.ID, nd.LogTail(envLines()))
		}
	}
}

// Leader polls until one running node reports that it leads, and returns it.
func (c *Cluster) Leader(tb testing.TB, timeout time.Duration) *Node {
	tb.Helper()
	return LeaderAmong(tb, timeout, c.All())
}

// LeaderAmong polls until one of nodes (running ones) reports that it leads and is ready, and returns it. Use
// it to ignore a node that may still believe it leads (a paused or isolated old leader).
func LeaderAmong(tb testing.TB, timeout time.Duration, nodes []*Node) *Node {
	tb.Helper()
	var found *Node
	Eventually(tb, timeout, "a leader", func() bool {
		for _, nd := range nodes {
			if nd.Running() && nd.LeadsReady() {
				found = nd
				return true
			}
		}
		return false
	})
	return found
}

// LeadsReady reports whether the node answers /status saying it leads and is ready. It needs only HTTPAddr,
// so it also works for a Node made by hand for a process this harness did not start.
func (n *Node) LeadsReady() bool {
	var st struct {
		Role  string `json:"role"`
		Ready bool   `json:"ready"`
	}
	return n.GetJSON("/status?probe", &st) == nil && st.Role == "leader" && st.Ready
}

// Followers returns the running nodes other than leader.
func (c *Cluster) Followers(leader *Node) []*Node {
	var out []*Node
	for _, nd := range c.All() {
		if nd != leader && nd.Running() {
			out = append(out, nd)
		}
	}
	return out
}

// Start starts the node's process (again) with its arguments and data directory.
func (n *Node) Start() {
	n.c.tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.c.tb.Fatalf("%s is already running", n.ID)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.c.tb.Fatal(err)
	}
	fmt.Fprintf(logf, "=== start %s %s\n", n.c.bin, strings.Join(n.args, " "))
	cmd := exec.Command(n.c.bin, n.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), n.c.Env...)
	if n.c.Net != nil {
		cmd.Env = append(cmd.Env, "ROWBOAT_RAFT_DIAL_MAP="+n.dialMap())
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.c.tb.Fatalf("start %s: %v", n.ID, err)
	}
	n.stopping.Store(false)
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		logf.Close()
		if !n.stopping.Load() && !n.expectExit.Load() {
			n.mu.Lock()
			n.selfExits = append(n.selfExits, fmt.Sprintf("pid %d: %v", cmd.Process.Pid, err))
			n.mu.Unlock()
		}
		close(done)
	}()
	n.cmd, n.done = cmd, done
}

// PID is the process id, 0 when not running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether the process was started and has not exited.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Exited returns a channel closed when the current process exits (nil if none).
func (n *Node) Exited() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done
}

func (n *Node) signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.cmd.Process.Signal(sig)
	}
}

// stopWith signals the process and waits for it to exit (SIGKILL after timeout).
func (n *Node) stopWith(sig syscall.Signal, timeout time.Duration) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	n.stopping.Store(true)
	cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot act on SIGTERM
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	n.mu.Lock()
	n.cmd, n.done = nil, nil
	n.mu.Unlock()
}

// Stop sends SIGTERM and waits for a graceful exit.
func (n *Node) Stop() { n.stopWith(syscall.SIGTERM, 20*time.Second) }

// Kill sends SIGKILL and waits for the process to die.
func (n *Node) Kill() { n.stopWith(syscall.SIGKILL, 10*time.Second) }

// Pause stops the process with SIGSTOP; Resume continues it.
func (n *Node) Pause() {
	n.paused.Store(true)
	n.signal(syscall.SIGSTOP)
}

func (n *Node) Resume() {
	n.signal(syscall.SIGCONT)
	n.paused.Store(false)
}

// Paused reports whether the node was paused and not resumed (a paused node holds requests unanswered).
func (n *Node) Paused() bool { return n.paused.Load() }

// Restart stops the node (gracefully) and starts it again on its data directory.
func (n *Node) Restart() {
	n.Stop()
	n.Start()
}

// LogTail returns the last lines of the node's log.
func (n *Node) LogTail(lines int) string {
	b, _ := os.ReadFile(n.logPath)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// crashReport returns the first data race report, runtime fatal error or panic in the node's log, or "". Each
// means a bug in rowboatd, whatever the test itself checked.
func (n *Node) crashReport() string {
	log := n.Log()
	i := -1
	for _, mark := range []string{"WARNING: DATA RACE", "fatal error: ", "\npanic: "} {
		if j := strings.Index(log, mark); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	if i < 0 {
		return ""
	}
	report := log[i:]
	if len(report) > 8000 {
		report = report[:8000]
	}
	return report
}

// Log returns the node's whole log.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

// URL is the node's HTTP base URL.
func (n *Node) URL() string { return "http://" + n.HTTPAddr }

var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	// Tests look at redirects themselves.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Client is the HTTP client the helpers use.
func Client() *http.Client { return client }

// Response is a decoded HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Index is X-Rowboat-Index.
func (r *Response) Index() uint64 {
	i, _ := strconv.ParseUint(r.Header.Get("X-Rowboat-Index"), 10, 64)
	return i
}

// Do sends a request to the node.
func (n *Node) Do(method, path string, body any) (*Response, error) {
	return n.DoContext(context.Background(), method, path, body)
}

// DoContext sends a request to the node that gives up when ctx ends (a paused node never answers).
func (n *Node) DoContext(ctx context.Context, method, path string, body any) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.URL()+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// GetJSON GETs path and decodes a 200 answer into v.
func (n *Node) GetJSON(path string, v any) error {
	r, err := n.Do(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, r.Status, r.Body)
	}
	return r.JSON(v)
}

// Result is one statement's result in a data response.
type Result struct {
	Columns      []string `json:"columns"`
	Types        []string `json:"types"`
	Values       [][]any  `json:"values"`
	LastInsertID int64    `json:"last_insert_id"`
	RowsAffected int64    `json:"rows_affected"`
	Error        string   `json:"error"`
}

// DataResponse is the body of a data response.
type DataResponse struct {
	Results   []Result `json:"results"`
	RaftIndex uint64   `json:"raft_index"`
	Error     string   `json:"error"`
	Code      string   `json:"code"`
}

// Execute posts statements to /db/execute (with query string q, e.g. "?transaction") and requires a 200.
func (n *Node) Execute(tb testing.TB, q string, stmts ...any) DataResponse {
	tb.Helper()
	r, err := n.Do(http.MethodPost, "/db/execute"+q, stmts)
	if err != nil {
		tb.Fatalf("execute on %s: %v", n.ID, err)
	}
	if r.Status != http.StatusOK {
		tb.Fatalf("execute on %s: %d %s", n.ID, r.Status, r.Body)
	}
	var d DataResponse
	if err := r.JSON(&d); err != nil {
		tb.Fatalf("execute on %s: %v: %s", n.ID, err, r.Body)
	}
	return d
}

// Query runs one SQL query at the given query string (e.g. "level=none&min_index=5") and requires a 200.
func (n *Node) Query(tb testing.TB, sql, q string) (DataResponse, *Response) {
	tb.Helper()
	path := "/db/query?q=" + url.QueryEscape(sql)
	if q != "" {
		path += "&" + q
	}
	r, err := n.Do(http.MethodGet, path, nil)
	if err != nil {
		tb.Fatalf("query on %s: %v", n.ID, err)
	}
	if r.Status != http.StatusOK {
		tb.Fatalf("query %q on %s: %d %s", sql, n.ID, r.Status, r.Body)
	}
	var d DataResponse
	if err := r.JSON(&d); err != nil {
		tb.Fatalf("query on %s: %v", n.ID, err)
	}
	return d, r
}

// WaitReady polls /readyz until it answers 200.
func (n *Node) WaitReady(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	Eventually(tb, timeout, n.ID+" ready", func() bool {
		if !n.Running() {
			tb.Fatalf("%s exited:\n%s", n.ID, n.LogTail(30))
		}
		r, err := n.Do(http.MethodGet, "/readyz", nil)
		return err == nil && r.Status == http.StatusOK
	})
}

// Eventually polls cond every 20ms until it holds or timeout passes (then the test fails).
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// envLines is how many lines of each node's log a failed test prints: ROWBOAT_TEST_LOG_LINES, default 40.
func envLines() int {
	if n, err := strconv.Atoi(os.Getenv("ROWBOAT_TEST_LOG_LINES")); err == nil && n > 0 {
		return n
	}
	return 40
}
