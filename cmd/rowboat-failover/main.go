// Command rowboat-failover shows a leader failover under write load, as it happens, and checks afterwards
// that no acknowledged write was lost.
//
// It creates the table failover_demo(id, client, seq, UNIQUE(client, seq)) and starts -clients writers, each
// inserting (client, seq) rows with an increasing seq through POST /db/execute, rotating among the nodes. A
// write that fails (any non-200, any network error) is retried, with the SAME (client, seq), after a short
// backoff, until a node acknowledges it; the statement is always INSERT OR IGNORE, so a retry of a write whose
// first attempt did apply (503 unknown_outcome, a timeout, a connection lost mid-request) is acknowledged with
// rows_affected 0 rather than failing on the UNIQUE constraint.
//
// Meanwhile it follows GET /events on every node and prints each event as it arrives, timed relative to the
// kill (before the kill: to the moment the kill is planned for):
//
//	+0.412s n2 leader_changed term=3 leader=n2
//
// After -before it finds the leader (GET /status, role "leader") and kills it: with SIGKILL to the pid in
// -pid-dir/<id>.pid (the files scripts/cluster.sh writes), or by running -kill through sh -c (with
// ROWBOAT_LEADER_ID and ROWBOAT_LEADER_URL in its environment). That moment is T0, +0.000s; with -kill it is
// when the leader's /events stream broke while the command ran (or, failing that, when the command returned),
// since a script may take a while to find the leader before it kills it. From then on the writers use the
// surviving nodes only. It measures the time to a new leader (the first leader_changed event naming another node, or
// the first /status of a survivor naming one, whichever comes first), and the time to the first write sent
// after the kill and acknowledged. -after that first write, the writers stop, and every surviving node is
// asked, at level=none with min_index = the highest raft_index acknowledged (and stale=error, so that a node
// which has not caught up says so instead of forwarding), for the rows: every acknowledged (client, seq) must
// be there on every one of them.
//
// Exit status: 0 when a new leader appeared within 30s and no acknowledged write is missing; 1 otherwise (or
// when the run could not be carried out); 2 for bad usage.
//
// Like rowboat-bench it imports nothing of rowboat's: it talks to the HTTP API only.
package main

import (
	"github.com/rowboatdb/rowboat/internal/nodeurl"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	createSQL = "CREATE TABLE IF NOT EXISTS failover_demo(id INTEGER PRIMARY KEY, client INTEGER, seq INTEGER, UNIQUE(client, seq))"
	insertSQL = "INSERT OR IGNORE INTO failover_demo(client, seq) VALUES(?, ?)"
	selectSQL = "SELECT client, seq FROM failover_demo"

	leaderDeadline = 30 * time.Second       // no new leader this long after the kill: the run fails
	writeDeadline  = 30 * time.Second       // no acknowledged write this long after the kill: stop waiting
	retryBackoff   = 50 * time.Millisecond  // between a failed attempt and its retry
	writeTimeout   = 10 * time.Second       // one write attempt
	pollInterval   = 100 * time.Millisecond // GET /status on the survivors while waiting for a new leader
	checkTimeout   = 10 * time.Second       // min_index_timeout of the final reads
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags ask for.
type config struct {
	urls     []string
	clients  int
	before   time.Duration
	after    time.Duration
	kill     string // a shell command; empty: SIGKILL the pid in pidDir
	pidDir   string
	jsonPath string // "-": stdout
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "rowboat-failover: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	r := newRunner(cfg, stdout)
	sum, err := r.run(ctx)
	if sum != nil {
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, formatSummary(sum))
		if cfg.jsonPath != "" {
			if werr := writeJSON(cfg.jsonPath, sum, stdout); werr != nil {
				fmt.Fprintf(stderr, "rowboat-failover: %v\n", werr)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "rowboat-failover: %v\n", err)
		return 1
	}
	if !sum.OK {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("rowboat-failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defPidDir := os.Getenv("ROWBOAT_CLUSTER_DIR")
	if defPidDir == "" {
		defPidDir = ".cluster"
	}
	urls := fs.String("urls", "127.0.0.1:4001,127.0.0.1:4011,127.0.0.1:4021",
		"comma-separated node base URLs (`host:port` is accepted)")
	clients := fs.Int("clients", 4, "concurrent writers")
	before := fs.Duration("before", 3*time.Second, "how long to write before killing the leader")
	after := fs.Duration("after", 5*time.Second, "how long to keep writing after the first successful write following the kill")
	kill := fs.String("kill", "", "shell `command` that kills the leader (ROWBOAT_LEADER_ID and ROWBOAT_LEADER_URL are set);\n"+
		"empty: SIGKILL the pid in -pid-dir/<leader id>.pid")
	pidDir := fs.String("pid-dir", defPidDir, "`dir` holding the nN.pid files scripts/cluster.sh writes ($ROWBOAT_CLUSTER_DIR when set)")
	jsonPath := fs.String("json", "", "also write the summary as JSON to this `file` (- for stdout)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: rowboat-failover [flags]\n\n"+
			"Kills a rowboat cluster's leader under write load, shows the failover as the nodes report it, and\n"+
			"checks that every acknowledged write survived.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q (node URLs go in -urls)", fs.Args())
	}
	cfg := config{clients: *clients, before: *before, after: *after, kill: strings.TrimSpace(*kill), pidDir: *pidDir, jsonPath: *jsonPath}
	var err error
	if cfg.urls, err = nodeurl.ParseList(*urls); err != nil {
		return config{}, fmt.Errorf("-urls: %w", err)
	}
	if len(cfg.urls) < 2 {
		return config{}, errors.New("-urls: a failover needs at least two nodes")
	}
	switch {
	case cfg.clients < 1:
		return config{}, errors.New("-clients must be at least 1")
	case cfg.before < 0:
		return config{}, errors.New("-before must not be negative")
	case cfg.after < 0:
		return config{}, errors.New("-after must not be negative")
	case cfg.kill == "" && cfg.pidDir == "":
		return config{}, errors.New("-pid-dir is needed when -kill is not given")
	}
	return cfg, nil
}

// ---- Server-Sent Events ----

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	ID    string // the last event ID seen on the stream, as the spec defines it
	Event string // the event type; "" means "message"
	Data  string // the data lines, joined with "\n"
}

// readSSE reads a text/event-stream and calls fn for every event, until the stream ends (nil) or fails.
// Comment lines (": keepalive") are skipped; a "field: value" line loses one space after the colon; an event
// is dispatched at the blank line that ends it, and only if it carried data.
func readSSE(r io.Reader, fn func(sseEvent)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var id, typ string
	var data []string
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if data != nil {
				fn(sseEvent{ID: id, Event: typ, Data: strings.Join(data, "\n")})
			}
			typ, data = "", nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			if !strings.Contains(value, "\x00") {
				id = value
			}
		case "event":
			typ = value
		case "data":
			data = append(data, value)
		}
	}
	return sc.Err()
}

// event is one rowboat node event, as GET /events sends it in an SSE data line.
type event struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Node   string    `json:"node"`
	Term   uint64    `json:"term"`
	Index  uint64    `json:"index"`
	Leader string    `json:"leader"`
	Peer   string    `json:"peer"`
	State  string    `json:"state"`
	Detail string    `json:"detail"`
}

// parseEvent decodes an SSE event from /events. The type comes from the data, or else the SSE event name.
func parseEvent(ev sseEvent) (event, error) {
	var e event
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		return event{}, fmt.Errorf("event %s: %w", ev.ID, err)
	}
	if e.Type == "" {
		e.Type = ev.Event
	}
	if e.Seq == 0 && ev.ID != "" {
		e.Seq, _ = strconv.ParseUint(ev.ID, 10, 64)
	}
	return e, nil
}

// relTime formats an offset from the kill: "+0.412s", "-1.203s".
func relTime(d time.Duration) string {
	return fmt.Sprintf("%+.3fs", d.Seconds())
}

// formatEvent is the line printed for an event, without its time: "n2 leader_changed term=3 leader=n2". A
// detail "last contact <RFC 3339 time>" is shown relative to ref, as the lines' times are.
func formatEvent(e event, ref time.Time) string {
	var b strings.Builder
	node := e.Node
	if node == "" {
		node = "?"
	}
	fmt.Fprintf(&b, "%s %s term=%d", node, e.Type, e.Term)
	switch {
	case e.Type == "leader_changed":
		leader := e.Leader
		if leader == "" {
			leader = "none"
		}
		b.WriteString(" leader=" + leader)
	case e.Leader != "":
		b.WriteString(" leader=" + e.Leader)
	}
	if e.State != "" {
		b.WriteString(" state=" + e.State)
	}
	if e.Peer != "" {
		b.WriteString(" peer=" + e.Peer)
	}
	if e.Type == "leader_ready" || e.Type == "state_changed" {
		fmt.Fprintf(&b, " index=%d", e.Index)
	}
	if e.Detail != "" {
		detail := e.Detail
		if v, ok := strings.CutPrefix(detail, "last contact "); ok && !ref.IsZero() {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				detail = "last contact " + relTime(t.Sub(ref))
			}
		}
		fmt.Fprintf(&b, " (%s)", detail)
	}
	return b.String()
}

// ---- write outcomes ----

// outcome is what one write attempt came to.
type outcome struct {
	rows     int64  // rows_affected: 1 written now, 0 already there
	index    uint64 // raft_index of the acknowledgement
	servedBy string
	failure  string // empty: acknowledged; else how it failed, the key of the failure tally
	unknown  bool   // the failed attempt may have been applied
	detail   string // the failure's full text, for the first of its kind
}

// parseExecute judges a /db/execute answer to a one-statement request: acknowledged only as HTTP 200 with
// one result, no error, and rows_affected 0 or 1.
func parseExecute(status int, header http.Header, body []byte) outcome {
	if status != http.StatusOK {
		key, code := statusFailure(status, body)
		// Only these promise that nothing was applied; anything else may have been.
		sure := code == "no_leader" || code == "not_leader" || code == "shutting_down" || status == http.StatusBadRequest
		return outcome{failure: key, unknown: !sure, detail: fmt.Sprintf("HTTP %d: %s", status, snippet(body))}
	}
	var r struct {
		Results []struct {
			Error        string `json:"error"`
			RowsAffected int64  `json:"rows_affected"`
		} `json:"results"`
		RaftIndex uint64 `json:"raft_index"`
		Error     string `json:"error"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return outcome{failure: "200 undecodable body", unknown: true, detail: snippet(body)}
	}
	switch {
	case r.Error != "":
		return outcome{failure: "200 request error", unknown: true, detail: r.Error}
	case len(r.Results) != 1:
		return outcome{failure: "200 wrong result count", unknown: true, detail: snippet(body)}
	case r.Results[0].Error != "":
		return outcome{failure: "200 statement error", unknown: true, detail: r.Results[0].Error}
	case r.Results[0].RowsAffected != 0 && r.Results[0].RowsAffected != 1:
		return outcome{failure: "200 bad rows_affected", unknown: true, detail: snippet(body)}
	}
	idx := r.RaftIndex
	if idx == 0 {
		idx, _ = strconv.ParseUint(header.Get("X-Rowboat-Index"), 10, 64)
	}
	return outcome{rows: r.Results[0].RowsAffected, index: idx, servedBy: header.Get("X-Rowboat-Served-By")}
}

// statusFailure names a non-200 answer by its status and the code of its JSON error body: "503 no_leader",
// or "HTTP 502" without one.
func statusFailure(status int, body []byte) (key, code string) {
	var e struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(body, &e) == nil && e.Code != "" {
		return fmt.Sprintf("%d %s", status, e.Code), e.Code
	}
	return fmt.Sprintf("HTTP %d", status), ""
}

// netFailure names a request that got no answer.
func netFailure(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "network error"
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// ---- the summary ----

// nodeCheck is the final read of one surviving node.
type nodeCheck struct {
	Node     string   `json:"node"`
	URL      string   `json:"url"`
	Index    uint64   `json:"index,omitempty"` // the applied index the read reflects
	Rows     int      `json:"rows"`            // rows of this run's clients found
	Missing  int      `json:"missing"`         // acknowledged writes not found
	Examples []string `json:"missing_examples,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// summary is the result of a run, as printed and as -json writes it.
type summary struct {
	OldLeader    string `json:"old_leader"`
	OldLeaderPID int    `json:"old_leader_pid,omitempty"`
	KillCommand  string `json:"kill_command,omitempty"`
	// With -kill: when the command started, relative to T0, and what T0 is.
	KillCommandStart *float64       `json:"kill_command_started_s,omitempty"`
	KillT0           string         `json:"kill_t0,omitempty"`
	KilledAt         time.Time      `json:"killed_at"`
	NewLeader        string         `json:"new_leader,omitempty"`
	NewLeaderVia     string         `json:"new_leader_seen_via,omitempty"`
	NewLeaderAfter   *float64       `json:"new_leader_after_s"`  // nil: none within leaderDeadline
	FirstWriteAfter  *float64       `json:"first_write_after_s"` // nil: none
	FirstWriteVia    string         `json:"first_write_via,omitempty"`
	Clients          int            `json:"clients"`
	Acknowledged     int            `json:"writes_acknowledged"`
	AckedAfterKill   int            `json:"writes_acknowledged_after_kill"`
	FailedAttempts   int            `json:"failed_attempts"`
	Failures         map[string]int `json:"failures"`
	// FoundWritten counts acknowledgements with rows_affected 0 for a write retried after an attempt whose
	// outcome was unknown: that attempt had been applied.
	FoundWritten int `json:"retries_found_already_written"`
	// AppliedDespiteFailure counts acknowledgements with rows_affected 0 where every earlier attempt had
	// failed in a way that promises nothing was applied (503 no_leader, connection refused, ...), or there
	// was none: the server said "not applied" and had applied it, or the row predates the run.
	AppliedDespiteFailure int         `json:"applied_despite_failure"`
	MaxIndex              uint64      `json:"max_raft_index_acknowledged"`
	Lost                  *int        `json:"writes_lost"` // nil: could not be checked
	Checks                []nodeCheck `json:"checks"`
	Unacknowledged        int         `json:"unacknowledged_rows_present"` // rows whose write was never acknowledged
	Notes                 []string    `json:"notes,omitempty"`             // oddities that do not fail the run
	Problems              []string    `json:"problems,omitempty"`          // why the run failed
	OK                    bool        `json:"ok"`
}

func seconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

// formatFailures is the tally of failed attempts, most frequent first: "503 no_leader: 30, connection refused: 7".
func formatFailures(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// formatSummary is the block printed at the end of a run.
func formatSummary(s *summary) string {
	var b strings.Builder
	how := fmt.Sprintf("pid %d", s.OldLeaderPID)
	if s.KillCommand != "" {
		how = fmt.Sprintf("with %q", s.KillCommand)
	}
	fmt.Fprintf(&b, "killed leader %s (%s) at +0.000s\n", s.OldLeader, how)
	if s.KillT0 != "" && s.KillCommandStart != nil {
		fmt.Fprintf(&b, "  (+0.000s is %s; the command started at %s)\n", s.KillT0, relTime(time.Duration(*s.KillCommandStart*float64(time.Second))))
	}
	if s.NewLeaderAfter != nil {
		fmt.Fprintf(&b, "new leader: %s after %.2fs", s.NewLeader, *s.NewLeaderAfter)
		if s.NewLeaderVia != "" {
			fmt.Fprintf(&b, " (%s)", s.NewLeaderVia)
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "new leader: none within %s\n", leaderDeadline)
	}
	if s.FirstWriteAfter != nil {
		fmt.Fprintf(&b, "first successful write after the kill: %.2fs", *s.FirstWriteAfter)
		if s.FirstWriteVia != "" {
			fmt.Fprintf(&b, " (%s)", s.FirstWriteVia)
		}
		b.WriteString("\n")
	} else {
		b.WriteString("first successful write after the kill: none\n")
	}
	fmt.Fprintf(&b, "writes acknowledged: %d   failed attempts: %d", s.Acknowledged, s.FailedAttempts)
	if len(s.Failures) > 0 {
		fmt.Fprintf(&b, " (%s)", formatFailures(s.Failures))
	}
	b.WriteString("\n")
	var perNode []string
	for _, c := range s.Checks {
		switch {
		case c.Error != "":
			perNode = append(perNode, fmt.Sprintf("%s: not checked: %s", c.Node, c.Error))
		case c.Missing > 0:
			perNode = append(perNode, fmt.Sprintf("%s: %d missing, e.g. %s", c.Node, c.Missing, strings.Join(c.Examples, " ")))
		}
	}
	switch {
	case s.Lost == nil:
		fmt.Fprintf(&b, "writes lost: unknown (%s)\n", strings.Join(perNode, "; "))
	case len(perNode) > 0:
		fmt.Fprintf(&b, "writes lost: %d (%s)\n", *s.Lost, strings.Join(perNode, "; "))
	default:
		fmt.Fprintf(&b, "writes lost: %d\n", *s.Lost)
	}
	if len(s.Checks) > 0 {
		var names []string
		for _, c := range s.Checks {
			if c.Error == "" {
				names = append(names, fmt.Sprintf("%s (index %d, %d rows)", c.Node, c.Index, c.Rows))
			}
		}
		if len(names) > 0 {
			fmt.Fprintf(&b, "  checked at level=none, min_index=%d: %s\n", s.MaxIndex, strings.Join(names, ", "))
		}
	}
	if s.FoundWritten > 0 {
		fmt.Fprintf(&b, "  retries that found their row already written: %d (an earlier attempt's outcome was unknown; it had applied)\n", s.FoundWritten)
	}
	if s.Unacknowledged > 0 {
		fmt.Fprintf(&b, "  rows present but never acknowledged: %d (their outcome was unknown when the run stopped)\n", s.Unacknowledged)
	}
	if s.AppliedDespiteFailure > 0 {
		fmt.Fprintf(&b, "  WARNING: %d writes were found already applied although every earlier attempt had failed as \"not applied\"\n", s.AppliedDespiteFailure)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "FAIL: %s\n", p)
	}
	return b.String()
}

func writeJSON(path string, s *summary, stdout io.Writer) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	data = append(data, '\n')
	if path == "-" {
		_, err = stdout.Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// ---- the run ----

type runner struct {
	cfg   config
	hc    *http.Client // writes, /status, queries
	sc    *http.Client // event streams: no overall timeout
	start time.Time    // events older than this are history, not printed

	pmu sync.Mutex // serializes printing
	out io.Writer

	mu            sync.Mutex
	ref           time.Time         // printed times are relative to this: the kill, or the moment it is planned for
	ids           map[string]string // URL -> node id
	dead          map[string]bool   // URL -> killed
	killed        bool
	t0            time.Time
	oldLeader     string
	newLeader     string
	newLeaderVia  string
	newLeaderAt   time.Time
	newLeaderCh   chan struct{} // closed when a new leader is first seen
	firstWriteAt  time.Time
	firstWriteVia string
	firstWriteCh  chan struct{} // closed at the first acknowledged write sent after the kill
	acked         int
	ackedAfter    int
	failures      map[string]int
	firstDetail   map[string]string
	foundWritten  int
	appliedAnyway int
	maxIndex      uint64
	hbFailed      map[string]int // "node peer" -> heartbeat_failed events since the last heartbeat_resumed
	firstSeq      []int64        // per client: the first seq of this run
	// While a -kill command runs (killing), T0 is not known yet: what depends on it waits here.
	killing        bool
	killURL        string
	streamEndAt    time.Time // when killURL's /events stream broke during the command
	holding        bool      // logf holds lines in held
	held           []heldLine
	pendingAcks    []ack
	pendingLeaders []sighting
	lastSeq        []int64 // per client: the highest acknowledged seq (firstSeq-1: none)
}

func newRunner(cfg config, out io.Writer) *runner {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.clients + 4,
		IdleConnTimeout:     90 * time.Second,
	}
	str := &http.Transport{
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 5 * time.Second}).DialContext,
	}
	return &runner{
		cfg: cfg, out: out,
		hc:           &http.Client{Transport: tr, Timeout: writeTimeout + checkTimeout},
		sc:           &http.Client{Transport: str},
		start:        time.Now(),
		ids:          map[string]string{},
		dead:         map[string]bool{},
		newLeaderCh:  make(chan struct{}),
		firstWriteCh: make(chan struct{}),
		failures:     map[string]int{},
		firstDetail:  map[string]string{},
		hbFailed:     map[string]int{},
	}
}

// logf prints a line timed relative to the kill (or holds it while the time of the kill is not known yet).
func (r *runner) logf(at time.Time, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	if r.holding {
		r.held = append(r.held, heldLine{at, msg})
		r.mu.Unlock()
		return
	}
	ref := r.ref
	r.mu.Unlock()
	r.pmu.Lock()
	defer r.pmu.Unlock()
	if ref.IsZero() {
		fmt.Fprintf(r.out, "%s\n", msg)
		return
	}
	fmt.Fprintf(r.out, "%s %s\n", relTime(at.Sub(ref)), msg)
}

func (r *runner) name(u string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id := r.ids[u]; id != "" {
		return id
	}
	return strings.TrimPrefix(u, "http://")
}

// alive is the URLs writes may go to: all but the killed node's.
func (r *runner) alive() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, u := range r.cfg.urls {
		if !r.dead[u] {
			out = append(out, u)
		}
	}
	return out
}

func (r *runner) isDead(u string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dead[u]
}

func (r *runner) run(ctx context.Context) (*summary, error) {
	// Who is who: the node ids behind the URLs.
	for _, u := range r.cfg.urls {
		st, err := r.status(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (is the cluster running?)", u, err)
		}
		r.ids[u] = st.ID
	}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var watchers sync.WaitGroup
	for _, u := range r.cfg.urls {
		watchers.Add(1)
		go func() { defer watchers.Done(); r.watch(watchCtx, u) }()
	}

	r.mu.Lock()
	r.ref = time.Now().Add(r.cfg.before)
	r.mu.Unlock()
	r.logf(time.Now(), "writing with %d clients through %s; killing the leader in %s", r.cfg.clients, strings.Join(r.namesOf(r.cfg.urls), ", "), r.cfg.before)
	stopClients := make(chan struct{})
	var clients sync.WaitGroup
	for c := range r.cfg.clients {
		clients.Add(1)
		go func() { defer clients.Done(); r.client(ctx, stopClients, c) }()
	}
	halt := func() {
		close(stopClients)
		clients.Wait()
	}

	select {
	case <-time.After(time.Until(r.ref)):
	case <-ctx.Done():
		halt()
		return nil, ctx.Err()
	}
	sum := &summary{Clients: r.cfg.clients}
	if err := r.killLeader(ctx, sum); err != nil {
		halt()
		return nil, err
	}
	r.mu.Lock()
	t0 := r.t0
	r.mu.Unlock()
	pollCtx, stopPoll := context.WithTimeout(ctx, leaderDeadline)
	defer stopPoll()
	for _, u := range r.alive() {
		go r.pollLeader(pollCtx, u)
	}

	select {
	case <-r.firstWriteCh:
		r.mu.Lock()
		first := r.firstWriteAt
		r.mu.Unlock()
		select {
		case <-time.After(time.Until(first.Add(r.cfg.after))):
		case <-ctx.Done():
		}
	case <-time.After(time.Until(t0.Add(writeDeadline))):
		r.logf(time.Now(), "== no write acknowledged %s after the kill; stopping", writeDeadline)
	case <-ctx.Done():
	}
	halt()
	r.logf(time.Now(), "== writers stopped")
	select {
	case <-r.newLeaderCh:
	case <-pollCtx.Done():
	}
	stopPoll()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	r.verify(ctx, sum)
	stopWatch()
	watchers.Wait()
	r.mu.Lock()
	hb := maps.Clone(r.hbFailed)
	r.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(hb)) {
		if hb[k] > 1 {
			node, peer, _ := strings.Cut(k, " ")
			r.logf(time.Now(), "%s heartbeat_failed peer=%s: %d in all, the member never answered again", node, peer, hb[k])
		}
	}
	r.fill(sum)
	return sum, nil
}

func (r *runner) namesOf(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = r.name(u)
	}
	return out
}

// statusJSON is the part of GET /status the tool reads.
type statusJSON struct {
	ID       string `json:"id"`
	Role     string `json:"role"`
	Term     uint64 `json:"term"`
	LeaderID string `json:"leader_id"`
}

func (r *runner) status(ctx context.Context, base string) (statusJSON, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var st statusJSON
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status?probe", nil)
	if err != nil {
		return st, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: HTTP %d: %s", resp.StatusCode, snippet(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("GET /status: %w", err)
	}
	return st, nil
}

// post sends statements to base+path and returns the status, headers and body.
func (r *runner) post(ctx context.Context, base, path string, stmts []any) (int, http.Header, []byte, error) {
	body, err := json.Marshal(stmts)
	if err != nil {
		return 0, nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp.StatusCode, resp.Header, raw, err
}

// setup creates the table and starts every client's seq after the highest one already in it, so that a run
// against a table from an earlier run still writes only new rows.
func (r *runner) setup(ctx context.Context) error {
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, u := range r.cfg.urls {
			status, _, body, err := r.post(ctx, u, "/db/execute", []any{createSQL})
			if err == nil && status == http.StatusOK {
				if o := parseExecute(status, nil, body); o.failure != "" && o.failure != "200 bad rows_affected" {
					return fmt.Errorf("%s: %s: %s", createSQL, o.failure, o.detail)
				}
				return r.loadSeqs(ctx, u)
			}
			if err != nil {
				last = err
			} else {
				last = fmt.Errorf("HTTP %d: %s", status, snippet(body))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("create table failover_demo: %w", last)
}

func (r *runner) loadSeqs(ctx context.Context, base string) error {
	status, _, body, err := r.post(ctx, base, "/db/query?level=strong", []any{"SELECT client, MAX(seq) FROM failover_demo GROUP BY client"})
	if err != nil {
		return fmt.Errorf("read the highest seq per client: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("read the highest seq per client: HTTP %d: %s", status, snippet(body))
	}
	rows, err := parseRows(body)
	if err != nil {
		return fmt.Errorf("read the highest seq per client: %w", err)
	}
	maxSeq := map[int64]int64{}
	for _, row := range rows {
		maxSeq[row[0]] = row[1]
	}
	r.firstSeq = make([]int64, r.cfg.clients)
	r.lastSeq = make([]int64, r.cfg.clients)
	for c := range r.cfg.clients {
		r.firstSeq[c] = maxSeq[int64(c)] + 1
		r.lastSeq[c] = r.firstSeq[c] - 1
	}
	return nil
}

// parseRows reads the (integer, integer) rows of a one-statement query answer.
func parseRows(body []byte) ([][2]int64, error) {
	var r struct {
		Results []struct {
			Error  string    `json:"error"`
			Values [][]int64 `json:"values"`
		} `json:"results"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode: %w: %s", err, snippet(body))
	}
	if r.Error != "" {
		return nil, errors.New(r.Error)
	}
	if len(r.Results) != 1 {
		return nil, fmt.Errorf("%d results for one statement", len(r.Results))
	}
	if r.Results[0].Error != "" {
		return nil, errors.New(r.Results[0].Error)
	}
	out := make([][2]int64, 0, len(r.Results[0].Values))
	for _, v := range r.Results[0].Values {
		if len(v) != 2 {
			return nil, fmt.Errorf("a row of %d columns", len(v))
		}
		out = append(out, [2]int64{v[0], v[1]})
	}
	return out, nil
}

// client writes (c, seq) rows one after another until stop, retrying each seq until it is acknowledged.
func (r *runner) client(ctx context.Context, stop <-chan struct{}, c int) {
	r.mu.Lock()
	seq := r.firstSeq[c]
	r.mu.Unlock()
	turn := c
	unknown := false // an earlier attempt at this seq may have applied
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		urls := r.alive()
		base := urls[turn%len(urls)]
		turn++
		sent := time.Now()
		o := r.write(ctx, base, c, seq)
		if ctx.Err() != nil {
			return
		}
		if o.failure != "" {
			r.failed(o)
			unknown = unknown || o.unknown
			select {
			case <-time.After(retryBackoff):
			case <-ctx.Done():
				return
			}
			continue
		}
		r.acknowledged(c, seq, sent, base, o, unknown)
		seq++
		unknown = false
	}
}

func (r *runner) write(ctx context.Context, base string, c int, seq int64) outcome {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	body, _ := json.Marshal([]any{[]any{insertSQL, c, seq}})
	wrote := false
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote = true }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, base+"/db/execute", bytes.NewReader(body))
	if err != nil {
		return outcome{failure: "bad request", detail: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return outcome{failure: netFailure(err), unknown: wrote, detail: err.Error()}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return outcome{failure: netFailure(err), unknown: true, detail: err.Error()}
	}
	return parseExecute(resp.StatusCode, resp.Header, raw)
}

func (r *runner) failed(o outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures[o.failure]++
	if _, ok := r.firstDetail[o.failure]; !ok {
		r.firstDetail[o.failure] = o.detail
	}
}

func (r *runner) acknowledged(c int, seq int64, sent time.Time, base string, o outcome, unknown bool) {
	now := time.Now()
	r.mu.Lock()
	r.acked++
	r.lastSeq[c] = seq
	r.maxIndex = max(r.maxIndex, o.index)
	anomaly := false
	if o.rows == 0 {
		if unknown {
			r.foundWritten++
		} else {
			r.appliedAnyway++
			anomaly = true
		}
	}
	a := ack{client: c, seq: seq, sent: sent, at: now, via: r.ids[base], o: o}
	first := false
	switch {
	case r.killing:
		r.pendingAcks = append(r.pendingAcks, a) // judged once T0 is known
	case r.killed:
		first = r.afterKill(a)
	}
	r.mu.Unlock()
	if first {
		r.logFirstWrite(a)
	}
	if anomaly {
		r.logf(now, "== WARNING: client %d seq %d was already written, but no earlier attempt could have applied it", c, seq)
	}
}

// ack is one acknowledged write.
type ack struct {
	client int
	seq    int64
	sent   time.Time
	at     time.Time
	via    string // the node it was sent to
	o      outcome
}

// afterKill counts an acknowledgement once T0 is known, and reports whether it is the first one sent after
// T0. The caller holds r.mu.
func (r *runner) afterKill(a ack) bool {
	if a.sent.Before(r.t0) {
		return false
	}
	r.ackedAfter++
	if !r.firstWriteAt.IsZero() {
		return false
	}
	r.firstWriteAt = a.at
	r.firstWriteVia = fmt.Sprintf("client %d through %s", a.client, a.via)
	if a.o.servedBy != "" && a.o.servedBy != a.via {
		r.firstWriteVia += ", executed by " + a.o.servedBy
	}
	close(r.firstWriteCh)
	return true
}

func (r *runner) logFirstWrite(a ack) {
	r.logf(a.at, "== first successful write after the kill: client %d seq %d through %s, served by %s, raft index %d",
		a.client, a.seq, a.via, a.o.servedBy, a.o.index)
}

// killLeader finds the leader and kills it, recording the moment as T0.
func (r *runner) killLeader(ctx context.Context, sum *summary) error {
	var leaderURL, leaderID string
	var best uint64
	deadline := time.Now().Add(5 * time.Second)
	for leaderID == "" {
		for _, u := range r.cfg.urls {
			st, err := r.status(ctx, u)
			// Two nodes may both claim to lead for a moment; the higher term is the real one.
			if err == nil && st.Role == "leader" && (leaderID == "" || st.Term > best) {
				leaderURL, leaderID, best = u, st.ID, st.Term
			}
		}
		if leaderID != "" {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("no node says it is the leader")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	sum.OldLeader = leaderID
	var proc *os.Process
	if r.cfg.kill == "" {
		pid, err := leaderPID(r.cfg.pidDir, leaderID)
		if err != nil {
			return err
		}
		if proc, err = os.FindProcess(pid); err != nil {
			return fmt.Errorf("leader %s (pid %d): %w", leaderID, pid, err)
		}
		sum.OldLeaderPID = pid
	} else {
		sum.KillCommand = r.cfg.kill
	}

	if proc == nil {
		return r.runKill(ctx, sum, leaderID, leaderURL)
	}
	now := time.Now()
	r.mu.Lock()
	r.killed, r.t0, r.ref, r.oldLeader = true, now, now, leaderID
	r.dead[leaderURL] = true
	r.mu.Unlock()
	sum.KilledAt = now
	if err := proc.Kill(); err != nil {
		return fmt.Errorf("kill leader %s (pid %d): %w", leaderID, proc.Pid, err)
	}
	r.logf(now, "== killed leader %s (pid %d, %s) with SIGKILL", leaderID, proc.Pid, strings.TrimPrefix(leaderURL, "http://"))
	return nil
}

// runKill kills the leader with the -kill command. The moment it died, T0, is not when the command started
// (a script may take a second to find the leader): it is when the leader's /events stream broke, if that
// happened while the command ran, or else when the command returned. Until then the lines to print, the
// acknowledgements and the leader sightings are held, and judged against T0 once it is known.
func (r *runner) runKill(ctx context.Context, sum *summary, leaderID, leaderURL string) error {
	start := time.Now()
	r.mu.Lock()
	r.killing, r.holding, r.killURL, r.oldLeader = true, true, leaderURL, leaderID
	r.dead[leaderURL] = true
	r.mu.Unlock()
	r.logf(start, "== killing leader %s (%s): sh -c %q", leaderID, strings.TrimPrefix(leaderURL, "http://"), r.cfg.kill)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "sh", "-c", r.cfg.kill)
	cmd.Env = append(os.Environ(), "ROWBOAT_LEADER_ID="+leaderID, "ROWBOAT_LEADER_URL="+leaderURL)
	out := &prefixWriter{r: r, prefix: "kill: "}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	end := time.Now()

	r.mu.Lock()
	t0, how := end, "when the -kill command returned"
	if !r.streamEndAt.IsZero() && r.streamEndAt.Before(end) {
		t0, how = r.streamEndAt, fmt.Sprintf("when %s's /events stream broke", leaderID)
	}
	r.killing, r.killed, r.t0 = false, true, t0
	acks, sightings := r.pendingAcks, r.pendingLeaders
	r.pendingAcks, r.pendingLeaders = nil, nil
	var first *ack
	for _, a := range acks {
		if r.afterKill(a) {
			first = &a
		}
	}
	r.mu.Unlock()
	sum.KilledAt = t0
	sum.KillCommandStart = seconds(start.Sub(t0))
	sum.KillT0 = how
	if first != nil {
		r.logFirstWrite(*first)
	}
	r.logf(t0, "== taking this as the moment %s died: %s (the command ran from %s to %s)", leaderID, how, relTime(start.Sub(t0)), relTime(end.Sub(t0)))
	r.release(t0)
	for _, l := range sightings {
		r.sawLeader(l.id, l.via, l.at)
	}
	if err != nil {
		return fmt.Errorf("-kill %q: %w", r.cfg.kill, err)
	}
	return nil
}

// sighting is a new leader named while the -kill command ran.
type sighting struct {
	id, via string
	at      time.Time
}

// release prints the held lines, in time order, relative to t0.
func (r *runner) release(t0 time.Time) {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	r.mu.Lock()
	held := r.held
	r.held, r.holding, r.ref = nil, false, t0
	r.mu.Unlock()
	slices.SortStableFunc(held, func(a, b heldLine) int { return a.at.Compare(b.at) })
	for _, l := range held {
		fmt.Fprintf(r.out, "%s %s\n", relTime(l.at.Sub(t0)), l.msg)
	}
}

type heldLine struct {
	at  time.Time
	msg string
}

// prefixWriter prints a command's output line by line through logf.
type prefixWriter struct {
	r      *runner
	prefix string
	buf    []byte
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.r.logf(time.Now(), "%s%s", w.prefix, w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

// leaderPID reads dir/<id>.pid and, where /proc tells, checks that the process is that node's rowboatd.
func leaderPID(dir, id string) (int, error) {
	f := filepath.Join(dir, id+".pid")
	b, err := os.ReadFile(f)
	if err != nil {
		return 0, fmt.Errorf("leader %s: %w (set -pid-dir, or give -kill)", id, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("leader %s: %s does not hold a pid", id, f)
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		args := strings.Split(string(cmdline), "\x00")
		if !slices.Contains(args, "--id="+id) && !slices.Contains(args, "-id="+id) &&
			!hasPair(args, "--id", id) && !hasPair(args, "-id", id) {
			return 0, fmt.Errorf("leader %s: pid %d from %s is not rowboatd --id %s (a stale pid file?)", id, pid, f, id)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat("/proc/self"); serr == nil {
			return 0, fmt.Errorf("leader %s: pid %d from %s is not running", id, pid, f)
		}
	}
	return pid, nil
}

func hasPair(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

// sawLeader records a leader named by a survivor after the kill; the earliest sighting counts.
func (r *runner) sawLeader(id, via string, at time.Time) {
	r.mu.Lock()
	if r.killing && id != "" && id != r.oldLeader {
		r.pendingLeaders = append(r.pendingLeaders, sighting{id, via, at})
		r.mu.Unlock()
		return
	}
	if !r.killed || id == "" || id == r.oldLeader {
		r.mu.Unlock()
		return
	}
	if at.Before(r.t0) {
		at = r.t0
	}
	first := r.newLeaderAt.IsZero()
	if first || at.Before(r.newLeaderAt) {
		r.newLeader, r.newLeaderVia, r.newLeaderAt = id, via, at
	}
	if first {
		close(r.newLeaderCh)
	}
	r.mu.Unlock()
	if first {
		r.logf(at, "== new leader %s (%s)", id, via)
	}
}

// pollLeader asks a survivor for its /status until a new leader is known.
func (r *runner) pollLeader(ctx context.Context, u string) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.newLeaderCh:
			return
		case <-time.After(pollInterval):
		}
		if st, err := r.status(ctx, u); err == nil {
			r.sawLeader(st.LeaderID, "GET /status on "+r.name(u), time.Now())
		}
	}
}

// watch follows u's /events, printing every event, reconnecting (with Last-Event-ID) when the stream breaks,
// until ctx ends or the node has been killed.
func (r *runner) watch(ctx context.Context, u string) {
	name := r.name(u)
	var last string
	connected := false
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/events", nil)
		if err != nil {
			r.logf(time.Now(), "%s -- events: %v", name, err)
			return
		}
		req.Header.Set("Accept", "text/event-stream")
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := r.sc.Do(req)
		if err == nil && resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(body))
		}
		if err == nil {
			if !connected {
				r.logf(time.Now(), "%s -- following /events", name)
			} else {
				r.logf(time.Now(), "%s -- /events reconnected", name)
			}
			connected = true
			err = readSSE(resp.Body, func(ev sseEvent) {
				if ev.ID != "" {
					last = ev.ID
				}
				r.onEvent(ev, name)
			})
			resp.Body.Close()
			if err == nil {
				err = io.EOF
			}
		}
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		if r.killing && u == r.killURL && r.streamEndAt.IsZero() {
			r.streamEndAt = time.Now()
		}
		r.mu.Unlock()
		if r.isDead(u) {
			r.logf(time.Now(), "%s -- /events ended: %s", name, netFailure(err))
			return
		}
		r.logf(time.Now(), "%s -- /events failed: %v; reconnecting", name, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (r *runner) onEvent(ev sseEvent, from string) {
	arrived := time.Now()
	e, err := parseEvent(ev)
	if err != nil {
		r.logf(arrived, "%s -- %v", from, err)
		return
	}
	if !e.Time.IsZero() && e.Time.Before(r.start) {
		return // history the stream replays on connecting
	}
	at := e.Time
	if at.IsZero() || at.After(arrived) {
		at = arrived
	}
	// A leader reports a failed heartbeat to a dead member several times a second: show the first, count the
	// rest, and say how many there were when the member answers again (or at the end).
	key := e.Node + " " + e.Peer
	suffix := ""
	r.mu.Lock()
	ref := r.ref
	switch e.Type {
	case "heartbeat_failed":
		r.hbFailed[key]++
		if r.hbFailed[key] > 1 {
			r.mu.Unlock()
			return
		}
		suffix = " (repeats not shown)"
	case "heartbeat_resumed":
		if n := r.hbFailed[key]; n > 1 {
			suffix = fmt.Sprintf(" (after %d heartbeat_failed)", n)
		}
		delete(r.hbFailed, key)
	}
	r.mu.Unlock()
	r.logf(at, "%s%s", formatEvent(e, ref), suffix)
	if e.Type == "leader_changed" {
		node := e.Node
		if node == "" {
			node = from
		}
		r.mu.Lock()
		after := r.killing || r.killed && !arrived.Before(r.t0)
		r.mu.Unlock()
		if after {
			r.sawLeader(e.Leader, "leader_changed event from "+node, at)
		}
	}
}

// verify reads every surviving node's rows at level=none once it has applied the highest acknowledged index,
// and counts the acknowledged writes missing from any of them.
func (r *runner) verify(ctx context.Context, sum *summary) {
	r.mu.Lock()
	minIndex := r.maxIndex
	first, last := slices.Clone(r.firstSeq), slices.Clone(r.lastSeq)
	r.mu.Unlock()
	sum.MaxIndex = minIndex
	lost := map[[2]int64]bool{}
	checked := 0
	for _, u := range r.alive() {
		c := nodeCheck{Node: r.name(u), URL: u}
		present, index, err := r.readRows(ctx, u, c.Node, minIndex)
		if err != nil {
			c.Error = err.Error()
			sum.Checks = append(sum.Checks, c)
			continue
		}
		checked++
		c.Index = index
		unacked := 0
		for k := range present {
			if k[0] < 0 || k[0] >= int64(len(first)) || k[1] < first[k[0]] {
				continue // another run's row
			}
			c.Rows++
			if k[1] > last[k[0]] {
				unacked++
			}
		}
		sum.Unacknowledged = max(sum.Unacknowledged, unacked)
		for cl := range first {
			for s := first[cl]; s <= last[cl]; s++ {
				k := [2]int64{int64(cl), s}
				if !present[k] {
					c.Missing++
					lost[k] = true
					if len(c.Examples) < 5 {
						c.Examples = append(c.Examples, fmt.Sprintf("(%d,%d)", cl, s))
					}
				}
			}
		}
		sum.Checks = append(sum.Checks, c)
	}
	if checked == len(sum.Checks) && checked > 0 {
		n := len(lost)
		sum.Lost = &n
	}
}

// readRows reads base's rows once it has applied minIndex, from its own copy: stale=error makes a node that
// has not caught up within checkTimeout answer 503 instead of forwarding the read to the leader.
func (r *runner) readRows(ctx context.Context, base, id string, minIndex uint64) (map[[2]int64]bool, uint64, error) {
	q := url.Values{"q": {selectSQL}, "level": {"none"}, "stale": {"error"}}
	if minIndex > 0 {
		q.Set("min_index", strconv.FormatUint(minIndex, 10))
		q.Set("min_index_timeout", checkTimeout.String())
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/db/query?"+q.Encode(), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(body))
	}
	if by := resp.Header.Get("X-Rowboat-Served-By"); by != "" && id != "" && by != id {
		return nil, 0, fmt.Errorf("the read was served by %s, not %s", by, id)
	}
	index, _ := strconv.ParseUint(resp.Header.Get("X-Rowboat-Index"), 10, 64)
	if index < minIndex && resp.Header.Get("X-Rowboat-Index") != "" {
		return nil, 0, fmt.Errorf("answered at index %d, below min_index %d", index, minIndex)
	}
	rows, err := parseRows(body)
	if err != nil {
		return nil, 0, err
	}
	present := make(map[[2]int64]bool, len(rows))
	for _, row := range rows {
		present[row] = true
	}
	return present, index, nil
}

// fill copies the run's tallies into the summary and judges it.
func (r *runner) fill(sum *summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.newLeaderAt.IsZero() {
		sum.NewLeader, sum.NewLeaderVia, sum.NewLeaderAfter = r.newLeader, r.newLeaderVia, seconds(r.newLeaderAt.Sub(r.t0))
	}
	if !r.firstWriteAt.IsZero() {
		sum.FirstWriteAfter, sum.FirstWriteVia = seconds(r.firstWriteAt.Sub(r.t0)), r.firstWriteVia
	}
	sum.Acknowledged, sum.AckedAfterKill = r.acked, r.ackedAfter
	sum.Failures = maps.Clone(r.failures)
	for _, n := range r.failures {
		sum.FailedAttempts += n
	}
	sum.FoundWritten, sum.AppliedDespiteFailure = r.foundWritten, r.appliedAnyway
	if sum.NewLeaderAfter == nil {
		sum.Problems = append(sum.Problems, fmt.Sprintf("no new leader within %s of the kill", leaderDeadline))
	}
	if sum.FirstWriteAfter == nil {
		sum.Problems = append(sum.Problems, "no write sent after the kill was acknowledged")
	}
	switch {
	case sum.Lost == nil:
		sum.Problems = append(sum.Problems, "the surviving nodes could not all be checked for lost writes")
	case *sum.Lost > 0:
		sum.Problems = append(sum.Problems, fmt.Sprintf("%d acknowledged writes are missing", *sum.Lost))
	}
	for _, k := range slices.Sorted(maps.Keys(r.failures)) {
		if strings.HasPrefix(k, "200 ") || k == "network error" || strings.HasPrefix(k, "HTTP ") || strings.HasPrefix(k, "500") {
			sum.Notes = append(sum.Notes, fmt.Sprintf("unexpected failure %q, the first: %s", k, r.firstDetail[k]))
		}
	}
	sum.OK = len(sum.Problems) == 0
}
