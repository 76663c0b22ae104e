// Package bench holds benchmark companions that start real rowboatd processes (internal/cluster) and print
// figures. They never fail on time; they fail only when the database gives a wrong answer.
package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// Issue 6: how long a new voter, a read replica and a restarted follower take to become ready on a database
// of N rows, whether a joining node ever serves a half-restored database, and what a snapshot does to write
// latency on the leader.
//
//	ROWBOAT_SNAPSHOT_BENCH=200000,1000000 go test -count=1 -timeout 60m -v -run TestSnapshotBench ./test/bench/
//
// or scripts/bench-snapshot.sh 200000 1000000.

const (
	benchEnv    = "ROWBOAT_SNAPSHOT_BENCH"
	fillChunk   = 10000
	readyPoll   = 20 * time.Millisecond
	samplePoll  = 50 * time.Millisecond
	readyLimit  = 10 * time.Minute // reported as "never" beyond this, not a failure on time
	loadClients = 8
	loadFor     = 6 * time.Second
	snapAt      = 2 * time.Second
)

var (
	// Snapshots exist and the log compacts, so a joining node needs a snapshot.
	benchEnvVars []string
	benchArgs    = []string{"--snapshot-threshold=64", "--trailing-logs=16"}
)

func TestSnapshotBench(t *testing.T) {
	spec := os.Getenv(benchEnv)
	if spec == "" {
		t.Skipf("set %s=200000,1000000 (row counts) to run the snapshot benchmark", benchEnv)
	}
	var sizes []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			t.Fatalf("%s: bad row count %q", benchEnv, f)
		}
		sizes = append(sizes, n)
	}
	var results []*snapResult
	for _, n := range sizes {
		r := &snapResult{rows: n}
		results = append(results, r)
		t.Run(fmt.Sprintf("rows=%d", n), func(t *testing.T) { runSnapshotBench(t, r) })
	}
	var out strings.Builder
	out.WriteString(tableBegin + "\n")
	out.WriteString(formatTable(results))
	out.WriteString("\n(snap) = the node installed a snapshot. db MB = the SQLite database as snapshotted. Write p99 \"during\" = writes\n")
	out.WriteString("whose request overlapped the POST /snapshot window. Half-restored reads = level=none counts, while /readyz\n")
	out.WriteString("said 503, that were neither 0 / no such table nor all rows.\n\n")
	out.WriteString(formatDetails(results))
	findingsMu.Lock()
	if len(findings) > 0 {
		out.WriteString("\nFindings:\n")
		for _, f := range findings {
			out.WriteString("- " + f + "\n")
		}
	}
	findingsMu.Unlock()
	out.WriteString(tableEnd + "\n")
	t.Logf("results:\n%s", out.String())
	fmt.Println()
	fmt.Print(out.String())
}

// snapResult holds one row count's figures.
type snapResult struct {
	rows                  int
	dbBytes               int64
	fillRate              float64
	snapSeconds           float64
	voter, replica, rest  joinResult
	p99During, p99Outside float64 // ms
	done                  bool
}

// joinResult is one node's way to ready.
type joinResult struct {
	measured      bool
	kind, id      string
	seconds       float64 // to the first 200 from /readyz; -1: never within readyLimit
	allRows       float64 // to the first level=none read that saw all rows; -1: never
	snapshot      bool    // the node restored a snapshot
	atReady       string  // what a level=none count read returned right after the first 200
	partialBefore int     // level=none reads that saw neither 0 rows nor all rows, before /readyz said 200
	partialAfter  int     // ... and after
	torn          int     // partial reads whose count is not a whole number of fill requests
}

func (j joinResult) cell() string {
	switch {
	case !j.measured:
		return "-"
	case j.seconds < 0:
		return "never"
	case j.snapshot:
		return fmt.Sprintf("%.2f (snap)", j.seconds)
	default:
		return fmt.Sprintf("%.2f", j.seconds)
	}
}

var (
	findingsMu sync.Mutex
	findings   []string
)

// finding logs something the server did wrong (not a test failure) and keeps it for the summary.
func finding(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	t.Logf("FINDING: %s", msg)
	findingsMu.Lock()
	findings = append(findings, t.Name()+": "+strings.SplitN(msg, "\n", 2)[0])
	findingsMu.Unlock()
}

const (
	tableBegin = "==== snapshot bench results ===="
	tableEnd   = "==== end of snapshot bench results ===="
)

func formatTable(rs []*snapResult) string {
	var b strings.Builder
	b.WriteString("| rows | db MB | fill rows/s | snapshot s | new voter ready s | replica ready s | restart ready s | write p99 ms (during snapshot / outside) | half-restored reads |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		rows := strconv.Itoa(r.rows)
		if !r.done {
			rows += " (incomplete)"
		}
		half := 0
		for _, j := range []joinResult{r.voter, r.replica, r.rest} {
			half += j.partialBefore
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.0f | %.2f | %s | %s | %s | %.1f / %.1f | %d |\n",
			rows, mb(r.dbBytes), r.fillRate, r.snapSeconds, r.voter.cell(), r.replica.cell(),
			r.rest.cell(), r.p99During, r.p99Outside, half)
	}
	return b.String()
}

func formatDetails(rs []*snapResult) string {
	var b strings.Builder
	b.WriteString("| rows | node | readyz 200 s | all rows visible s | snapshot installed | level=none count right after readyz 200 | partial reads before / after ready |\n")
	b.WriteString("|---:|---|---:|---:|---|---|---:|\n")
	for _, r := range rs {
		for _, j := range []joinResult{r.voter, r.replica, r.rest} {
			if !j.measured {
				continue
			}
			fmt.Fprintf(&b, "| %d | %s %s | %.2f | %.2f | %v | %s | %d / %d |\n",
				r.rows, j.kind, j.id, j.seconds, j.allRows, j.snapshot, j.atReady, j.partialBefore, j.partialAfter)
		}
	}
	return b.String()
}

func runSnapshotBench(t *testing.T, res *snapResult) {
	n := res.rows
	c := cluster.New(t)
	c.Env = benchEnvVars
	c.Args = benchArgs
	for range 3 {
		c.Add(true)
	}
	for _, nd := range c.Nodes {
		nd.WaitReady(t, 60*time.Second)
	}
	leader := c.Leader(t, 30*time.Second)
	t.Logf("3 voters ready; leader %s", leader.ID)

	// 1. Fill.
	leader.Execute(t, "", "CREATE TABLE bench(id INTEGER PRIMARY KEY, k TEXT, v BLOB)")
	start := time.Now()
	var fillIdx uint64
	for done := 0; done < n; {
		k := min(fillChunk, n-done)
		sql := fmt.Sprintf("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d) "+
			"INSERT INTO bench(k, v) SELECT hex(randomblob(8)), randomblob(80) FROM n", k)
		d := leader.Execute(t, "?timeout=60s", sql)
		if len(d.Results) != 1 || d.Results[0].Error != "" || d.Results[0].RowsAffected != int64(k) {
			t.Fatalf("fill: unexpected answer %+v", d)
		}
		fillIdx = d.RaftIndex
		done += k
	}
	fill := time.Since(start)
	res.fillRate = float64(n) / fill.Seconds()
	t.Logf("fill: %d rows in %.2fs = %.0f rows/s (last index %d)", n, fill.Seconds(), res.fillRate, fillIdx)

	// 2. Snapshot on the leader.
	secs, wall, err := postSnapshot(leader)
	if err != nil {
		t.Fatalf("POST /snapshot: %v", err)
	}
	res.snapSeconds = secs
	dbFile := fileSize(filepath.Join(leader.DataDir, "db", "db.sqlite"))
	walFile := fileSize(filepath.Join(leader.DataDir, "db", "db.sqlite-wal"))
	snapFile := latestSnapshotSize(leader)
	// The snapshot is the database file as the online backup API copies it; db.sqlite alone may still be
	// small while most pages sit in the WAL.
	res.dbBytes = max(dbFile, snapFile)
	t.Logf("snapshot on the leader: %.2fs (server) / %.2fs (wall); db.sqlite %.1f MB + wal %.1f MB; snapshot state.bin %.1f MB; raft dir %.1f MB",
		secs, wall.Seconds(), mb(dbFile), mb(walFile), mb(snapFile), mb(dirSize(filepath.Join(leader.DataDir, "raft"))))

	// 3 and 4. A new voter, then a read replica.
	res.voter = joinNode(t, c, true, n, fillIdx)
	res.replica = joinNode(t, c, false, n, fillIdx)

	// 5. Restart a voting follower on its data directory.
	leader = c.Leader(t, 30*time.Second)
	var f *cluster.Node
	for _, nd := range c.Followers(leader) {
		if nd.Voter && f == nil {
			f = nd
		}
	}
	res.rest = restartNode(t, f, n, fillIdx)

	// 6. Write latency on the leader around a snapshot.
	leader = c.Leader(t, 30*time.Second)
	res.p99During, res.p99Outside = writeLatency(t, leader)
	res.done = true
	t.Logf("result: %s", strings.SplitN(formatTable([]*snapResult{res}), "\n", 4)[2])
}

// joinNode adds a node, times it to ready and checks what it serves meanwhile and after.
func joinNode(t *testing.T, c *cluster.Cluster, voter bool, n int, fillIdx uint64) joinResult {
	kind := "read replica"
	if voter {
		kind = "new voter"
	}
	start := time.Now()
	nd := c.Add(voter)
	j := timeToReady(t, nd, start, n, kind)
	if j.seconds < 0 {
		return j
	}
	verifyRows(t, nd, n, fillIdx, kind)
	t.Logf("%s %s: ready in %.2fs, all rows visible at +%.2fs; installed a snapshot by then: %v",
		kind, nd.ID, j.seconds, j.allRows, j.snapshot)
	if !strings.Contains(nd.Log(), "database restored from snapshot") {
		t.Logf("%s %s caught up from the log, not a snapshot (the leader still had the entries)", kind, nd.ID)
	}
	logLines(t, nd, "restor", "snapshot", "install", "node started", "ready")
	return j
}

// restartNode stops a follower gracefully and times its start to ready.
func restartNode(t *testing.T, nd *cluster.Node, n int, fillIdx uint64) joinResult {
	nd.Stop()
	snapIdx := latestSnapshotIndex(nd)
	before := len(nd.Log())
	start := time.Now()
	nd.Start()
	j := timeToReady(t, nd, start, n, "restarted follower")
	if j.seconds < 0 {
		return j
	}
	verifyRows(t, nd, n, fillIdx, "restarted follower")
	log := nd.Log()[before:]
	j.snapshot = strings.Contains(log, "database restored from snapshot") || strings.Contains(log, "database is behind the latest snapshot")
	applied := int64(-1)
	if m := regexp.MustCompile(`msg="node started".*applied_index=(\d+)`).FindStringSubmatch(log); m != nil {
		applied, _ = strconv.ParseInt(m[1], 10, 64)
	}
	t.Logf("restarted follower %s: ready in %.2fs; restored a snapshot: %v; applied_index in \"node started\": %d (fill ended at %d); "+
		"its own latest snapshot before the restart: index %d (Raft re-reads the log after it, the FSM skips what it has)",
		nd.ID, j.seconds, j.snapshot, applied, fillIdx, snapIdx)
	if j.snapshot {
		finding(t, "restarted follower %s restored a snapshot instead of reopening its database", nd.ID)
	}
	if applied <= 0 {
		finding(t, "restarted follower %s started with applied_index %d (replays the log from index 1?)", nd.ID, applied)
	}
	logLines(t, nd, "restor", "node started", "snapshot")
	return j
}

// timeToReady polls /readyz every 20ms from start. In parallel it samples a level=none count every 50ms, from
// start until the node serves all n rows, and classifies what it sees before and after the first 200.
func timeToReady(t *testing.T, nd *cluster.Node, start time.Time, n int, kind string) joinResult {
	j := joinResult{measured: true, kind: kind, id: nd.ID, allRows: -1}
	s := &sampler{n: n, start: start, outcomes: map[string]int{}, allRowsAt: -1}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(samplePoll)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if s.sample(nd) {
					return
				}
			}
		}
	}()
	reasons := map[string]int{}
	var firstReason, lastReason string
	for {
		if time.Since(start) > readyLimit {
			j.seconds = -1
			break
		}
		if !nd.Running() {
			t.Errorf("%s %s exited while starting:\n%s", kind, nd.ID, nd.LogTail(30))
			j.seconds = -1
			break
		}
		r, err := nd.Do(http.MethodGet, "/readyz", nil)
		if err == nil && r.Status == http.StatusOK {
			j.seconds = time.Since(start).Seconds()
			s.setReady()
			break
		}
		if err == nil {
			var e struct{ Error string }
			json.Unmarshal(r.Body, &e)
			reasons[regexp.MustCompile(`\d+`).ReplaceAllString(e.Error, "N")]++
			if firstReason == "" {
				firstReason = e.Error
			}
			lastReason = e.Error
		} else {
			reasons["(no answer)"]++
		}
		time.Sleep(readyPoll)
	}
	if j.seconds < 0 {
		close(stop)
		<-sampled
		finding(t, "%s %s not ready after %s; /readyz said %v\n%s", kind, nd.ID, readyLimit, reasons, nd.LogTail(30))
		return j
	}
	// What a level=none read sees right after the first 200.
	atReadyRead := time.Since(start).Seconds()
	cnt, errText := countNone(nd, "")
	j.atReady = fmt.Sprint(cnt)
	if errText != "" {
		j.atReady = errText
	}
	j.snapshot = strings.Contains(nd.Log(), "database restored from snapshot")
	select {
	case <-sampled:
	case <-time.After(readyLimit):
		close(stop)
		<-sampled
	}
	j.allRows = s.allRowsAt
	if errText == "" && cnt == int64(n) && (j.allRows < 0 || atReadyRead < j.allRows) {
		j.allRows = atReadyRead // the read right after the first 200 saw all rows before the sampler did
	}
	j.partialBefore, j.partialAfter, j.torn = s.partialBefore, s.partialAfter, s.torn
	t.Logf("%s %s: /readyz 503 reasons while waiting: %v (first %q, last %q)", kind, nd.ID, reasons, firstReason, lastReason)
	t.Logf("%s %s: level=none count samples: %s", kind, nd.ID, s.summary())
	if errText != "" || cnt != int64(n) {
		finding(t, "%s %s: /readyz answered 200 at +%.2fs but a level=none read right after saw %q (want %d rows); all rows visible only at +%.2fs",
			kind, nd.ID, j.seconds, j.atReady, n, j.allRows)
	}
	if s.partialBefore+s.partialAfter > 0 {
		finding(t, "%s %s served %d partial counts before /readyz 200 and %d after (%d not a whole number of %d-row fill requests, i.e. torn): %v",
			kind, nd.ID, s.partialBefore, s.partialAfter, s.torn, fillChunk, s.partialSeen)
	}
	if s.torn > 0 {
		t.Errorf("%s %s: a read saw a row count that no committed state ever had", kind, nd.ID)
	}
	return j
}

// sampler tallies what level=none count reads on a starting node return.
type sampler struct {
	n     int
	start time.Time

	mu                          sync.Mutex
	ready                       bool
	total                       int
	outcomes                    map[string]int
	partialBefore, partialAfter int
	torn                        int
	partialSeen                 []string
	allRowsAt                   float64
}

func (s *sampler) setReady() {
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
}

// sample reads the count once and reports whether the node now serves all rows.
func (s *sampler) sample(nd *cluster.Node) bool {
	cnt, errText := countNone(nd, "")
	at := time.Since(s.start).Seconds()
	var outcome string
	switch {
	case errText == "":
		switch cnt {
		case 0:
			outcome = "0 rows"
		case int64(s.n):
			outcome = "all rows"
		default:
			outcome = "partial"
		}
	case strings.Contains(errText, "no such table"):
		outcome = "no such table"
	default:
		outcome = regexp.MustCompile(`\d+`).ReplaceAllString(errText, "N")
		if len(outcome) > 80 {
			outcome = outcome[:80]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	phase := "before ready"
	if s.ready {
		phase = "after ready"
	}
	s.total++
	s.outcomes[phase+": "+outcome]++
	if outcome == "partial" {
		if s.ready {
			s.partialAfter++
		} else {
			s.partialBefore++
		}
		if cnt%fillChunk != 0 {
			s.torn++
		}
		if len(s.partialSeen) < 10 {
			s.partialSeen = append(s.partialSeen, fmt.Sprintf("%d rows at +%.2fs (%s)", cnt, at, phase))
		}
	}
	if outcome == "all rows" {
		s.allRowsAt = at
		return true
	}
	return false
}

func (s *sampler) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d samples %v; all rows visible at +%.2fs", s.total, s.outcomes, s.allRowsAt)
}

// countNone counts bench rows on nd at level=none (plus extra query parameters); errText is "" on success.
func countNone(nd *cluster.Node, extra string) (int64, string) {
	path := "/db/query?level=none&q=" + url.QueryEscape("SELECT count(*) FROM bench") + extra
	r, err := nd.Do(http.MethodGet, path, nil)
	if err != nil {
		return 0, "(no answer)"
	}
	var d cluster.DataResponse
	if err := r.JSON(&d); err != nil {
		return 0, fmt.Sprintf("%d bad body", r.Status)
	}
	if r.Status != http.StatusOK {
		return 0, fmt.Sprintf("%d %s %s", r.Status, d.Code, d.Error)
	}
	if len(d.Results) != 1 {
		return 0, "no result"
	}
	if d.Results[0].Error != "" {
		return 0, d.Results[0].Error
	}
	if len(d.Results[0].Values) != 1 || len(d.Results[0].Values[0]) != 1 {
		return 0, "no row"
	}
	f, ok := d.Results[0].Values[0][0].(float64)
	if !ok {
		return 0, "not a number"
	}
	return int64(f), ""
}

func verifyRows(t *testing.T, nd *cluster.Node, n int, fillIdx uint64, kind string) {
	t.Helper()
	cnt, errText := countNone(nd, fmt.Sprintf("&min_index=%d&min_index_timeout=30s", fillIdx))
	if errText != "" || cnt != int64(n) {
		t.Errorf("%s %s: level=none read with min_index=%d: %d rows, err %q; want %d", kind, nd.ID, fillIdx, cnt, errText, n)
	}
}

// logLines logs the node's log lines that mention any of the words (at most 12).
func logLines(t *testing.T, nd *cluster.Node, words ...string) {
	t.Helper()
	var out []string
	for _, l := range strings.Split(nd.Log(), "\n") {
		for _, w := range words {
			if strings.Contains(strings.ToLower(l), strings.ToLower(w)) {
				out = append(out, l)
				break
			}
		}
	}
	if len(out) > 12 {
		out = out[len(out)-12:]
	}
	t.Logf("%s log excerpt:\n%s", nd.ID, strings.Join(out, "\n"))
}

func postSnapshot(nd *cluster.Node) (float64, time.Duration, error) {
	start := time.Now()
	r, err := nd.Do(http.MethodPost, "/snapshot", nil)
	wall := time.Since(start)
	if err != nil {
		return 0, wall, err
	}
	if r.Status != http.StatusOK {
		return 0, wall, fmt.Errorf("%d %s", r.Status, r.Body)
	}
	var b struct {
		OK      bool    `json:"ok"`
		Seconds float64 `json:"seconds"`
	}
	if err := r.JSON(&b); err != nil || !b.OK {
		return 0, wall, fmt.Errorf("unexpected answer %s", r.Body)
	}
	return b.Seconds, wall, nil
}

type write struct {
	start, end time.Time
	ok         bool
}

// writeLatency runs loadClients single-row inserters on the leader for loadFor and POSTs /snapshot at snapAt.
// It returns the p99 (ms) of writes that overlapped the snapshot window and of the others.
func writeLatency(t *testing.T, leader *cluster.Node) (during, outside float64) {
	logBefore := len(leader.Log())
	var mu sync.Mutex
	var writes []write
	begin := time.Now()
	deadline := begin.Add(loadFor)
	var wg sync.WaitGroup
	for range loadClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []write
			for time.Now().Before(deadline) {
				w := write{start: time.Now()}
				r, err := leader.Do(http.MethodPost, "/db/execute?timeout=30s",
					[]any{"INSERT INTO bench(k, v) VALUES(hex(randomblob(8)), randomblob(80))"})
				w.end = time.Now()
				w.ok = err == nil && r.Status == http.StatusOK && !strings.Contains(string(r.Body), `"error"`)
				mine = append(mine, w)
				if !w.ok {
					time.Sleep(20 * time.Millisecond)
				}
			}
			mu.Lock()
			writes = append(writes, mine...)
			mu.Unlock()
		}()
	}
	time.Sleep(snapAt)
	snapStart := time.Now()
	secs, wall, err := postSnapshot(leader)
	snapEnd := time.Now()
	wg.Wait()
	if err != nil {
		t.Errorf("POST /snapshot under load: %v", err)
	}
	t.Logf("snapshot under load: window +%.3fs..+%.3fs (%.3fs wall, %.3fs server)",
		snapStart.Sub(begin).Seconds(), snapEnd.Sub(begin).Seconds(), wall.Seconds(), secs)

	var all, in, out []time.Duration
	failed := 0
	for _, w := range writes {
		if !w.ok {
			failed++
			continue
		}
		d := w.end.Sub(w.start)
		all = append(all, d)
		if w.start.Before(snapEnd) && w.end.After(snapStart) {
			in = append(in, d)
		} else {
			out = append(out, d)
		}
	}
	elapsed := time.Since(begin).Seconds()
	t.Logf("writes: %d ok (%.0f/s), %d failed, %d clients", len(all), float64(len(all))/elapsed, failed, loadClients)
	t.Logf("write latency all:             %s", latencies(all))
	t.Logf("write latency during snapshot: %s", latencies(in))
	t.Logf("write latency outside it:      %s", latencies(out))
	if failed > 0 {
		finding(t, "%d single-row writes failed during the snapshot run", failed)
	}
	// Snapshots Raft took by itself (threshold) during the run also show in "outside"; say so.
	auto := strings.Count(leader.Log()[logBefore:], "snapshot complete")
	t.Logf("leader log during the run: %d \"snapshot complete\" lines (1 is ours)", auto)
	logLines(t, leader, "snapshot")
	// Largest gap between consecutive completions: a stall shows up here.
	var ends []time.Time
	for _, w := range writes {
		if w.ok {
			ends = append(ends, w.end)
		}
	}
	slices.SortFunc(ends, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	var gapAt time.Time
	for i := 1; i < len(ends); i++ {
		if g := ends[i].Sub(ends[i-1]); g > gap {
			gap, gapAt = g, ends[i-1]
		}
	}
	t.Logf("longest gap without a completed write: %.1f ms starting at +%.3fs", ms(gap), gapAt.Sub(begin).Seconds())
	if gap > time.Second {
		finding(t, "writes stalled: no write completed on the leader for %.0f ms from +%.3fs (snapshot window +%.3fs..+%.3fs)",
			ms(gap), gapAt.Sub(begin).Seconds(), snapStart.Sub(begin).Seconds(), snapEnd.Sub(begin).Seconds())
	}
	return ms(pct(in, 0.99)), ms(pct(out, 0.99))
}

func latencies(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no writes"
	}
	return fmt.Sprintf("n=%d p50 %.1f ms, p99 %.1f ms, max %.1f ms", len(ds), ms(pct(ds, 0.5)), ms(pct(ds, 0.99)), ms(pct(ds, 1)))
}

// pct returns the q-quantile (nearest rank) of ds; it sorts ds.
func pct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// latestSnapshotSize is the size of the newest snapshot's state.bin in nd's data directory.
func latestSnapshotSize(nd *cluster.Node) int64 {
	m, _ := filepath.Glob(filepath.Join(nd.DataDir, "raft", "snapshots", "*", "state.bin"))
	var newest string
	var at time.Time
	for _, p := range m {
		if st, err := os.Stat(p); err == nil && !strings.HasSuffix(filepath.Dir(p), ".tmp") && st.ModTime().After(at) {
			newest, at = p, st.ModTime()
		}
	}
	return fileSize(newest)
}

// latestSnapshotIndex is the index of the newest snapshot in nd's data directory (0 if none); snapshot
// directories are named term-index-time.
func latestSnapshotIndex(nd *cluster.Node) uint64 {
	m, _ := filepath.Glob(filepath.Join(nd.DataDir, "raft", "snapshots", "*", "meta.json"))
	var best uint64
	for _, p := range m {
		parts := strings.Split(filepath.Base(filepath.Dir(p)), "-")
		if len(parts) == 3 && !strings.HasSuffix(parts[2], ".tmp") {
			if i, err := strconv.ParseUint(parts[1], 10, 64); err == nil && i > best {
				best = i
			}
		}
	}
	return best
}

func dirSize(dir string) int64 {
	var total int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return total
}
