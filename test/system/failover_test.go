package system

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

func TestFailover_KillLeaderUnderWrites(t *testing.T) {
	c := cluster.Start(t, 3)
	l := startLoad(t, c, 4)
	l.waitOKs(t, 50, wait)
	old := c.Leader(t, wait)
	l.markNow()
	old.Kill()
	killed := time.Now()
	leader := c.Leader(t, wait)
	t.Logf("new leader %s %.3fs after kill -9 of %s", leader.ID, time.Since(killed).Seconds(), old.ID)
	l.waitOKs(t, 100, wait)
	_, idx := l.finish(t)
	checkAcked(t, c, l, idx)

	// The old leader comes back and converges.
	old.Start()
	old.WaitReady(t, wait)
	checkAcked(t, c, l, idx)
}

// The GitHub 2012 incident: a promoted replica that had not applied every committed write handed out
// AUTOINCREMENT ids the old leader had already acknowledged. A new rowboat leader applies everything committed
// before it executes a write, so ids are never reused.
func TestFailover_AutoincrementIdsNeverReused(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	leader.Execute(t, "", "CREATE TABLE issues(id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT)")
	var maxID int64
	var idx uint64
	for i := range 30 {
		d := leader.Execute(t, "", []any{"INSERT INTO issues(title) VALUES(?)", fmt.Sprint("before ", i)})
		maxID, idx = d.Results[0].LastInsertID, d.RaftIndex
	}
	leader.Kill() // right after the acknowledgements
	next := c.Leader(t, wait)
	for i := range 10 {
		d := next.Execute(t, "", []any{"INSERT INTO issues(title) VALUES(?)", fmt.Sprint("after ", i)})
		if id := d.Results[0].LastInsertID; id <= maxID {
			t.Fatalf("new leader %s handed out id %d, already acknowledged by the old leader (max %d)", next.ID, id, maxID)
		}
		idx = d.RaftIndex
	}
	leader.Start()
	leader.WaitReady(t, wait)
	var ref [][]any
	for _, n := range c.Nodes {
		got := rows(t, n, "SELECT id, title FROM issues ORDER BY id", idx)
		if len(got) != 40 {
			t.Fatalf("%s holds %d issues, want 40", n.ID, len(got))
		}
		if ref != nil && fmt.Sprint(got) != fmt.Sprint(ref) {
			t.Fatalf("%s differs", n.ID)
		}
		ref = got
	}
}

// A leader paused past the election timeout is deposed; when it resumes it must not serve a stale read at
// weak or linearizable, nor acknowledge a write that is then lost.
func TestFailover_PausedLeader(t *testing.T) {
	c := cluster.Start(t, 3)
	old := c.Leader(t, wait)
	old.Execute(t, "", "CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER)", "INSERT INTO kv VALUES('x', 0)")
	old.Pause()
	defer old.Resume()
	next := cluster.LeaderAmong(t, wait, c.Followers(old))
	d := next.Execute(t, "", "UPDATE kv SET v = 1 WHERE k = 'x'")
	if d.Results[0].RowsAffected != 1 {
		t.Fatalf("update on the new leader: %+v", d)
	}
	old.Resume()
	// At once: reads at weak and linearizable, and a write.
	type answer struct {
		level string
		r     *cluster.Response
		err   error
	}
	answers := make(chan answer, 3)
	for _, level := range []string{"weak", "linearizable"} {
		go func() {
			r, err := old.Do(http.MethodGet, "/db/query?q=SELECT+v+FROM+kv&level="+level, nil)
			answers <- answer{level, r, err}
		}()
	}
	go func() {
		r, err := old.Do(http.MethodPost, "/db/execute", []any{"UPDATE kv SET v = v + 10 WHERE k = 'x'"})
		answers <- answer{"write", r, err}
	}()
	wroteOK, writeUnknown := false, false
	for range 3 {
		a := <-answers
		if a.err != nil {
			t.Logf("%s: %v", a.level, a.err)
			writeUnknown = writeUnknown || a.level == "write" // sent, no answer: it may have applied
			continue
		}
		var dr cluster.DataResponse
		a.r.JSON(&dr)
		t.Logf("%s on the resumed old leader: %d %s (served by %s)", a.level, a.r.Status, a.r.Body, a.r.Header.Get("X-Rowboat-Served-By"))
		if a.level == "write" {
			wroteOK = a.r.Status == http.StatusOK
			writeUnknown = !wroteOK && codeOf(a.r) != "no_leader" && codeOf(a.r) != "not_leader"
			continue
		}
		if a.r.Status == http.StatusOK {
			if v := dr.Results[0].Values[0][0]; v == float64(0) {
				t.Errorf("%s read on the resumed old leader returned the stale value 0", a.level)
			}
		}
	}
	// The resumed node serves a linearizable read again, and never the stale value.
	cluster.Eventually(t, wait, "a linearizable read on the resumed old leader", func() bool {
		d, r, err := tryQuery(old, "SELECT v FROM kv", "level=linearizable")
		if err != nil || r.Status != http.StatusOK {
			return false
		}
		if v := d.Results[0].Values[0][0]; v == float64(0) {
			t.Fatalf("linearizable read on the resumed old leader returned the stale value 0")
		}
		return true
	})
	// Whatever was acknowledged is there, on every node; a write with an unknown outcome may be, or not.
	leader := c.Leader(t, wait)
	final := leader.Execute(t, "", "SELECT 1")
	for _, n := range c.Nodes {
		got := rows(t, n, "SELECT v FROM kv", final.RaftIndex)[0][0]
		switch {
		case wroteOK && got != float64(11), !wroteOK && !writeUnknown && got != float64(1), writeUnknown && got != float64(1) && got != float64(11):
			t.Errorf("%s: v = %v (write acknowledged: %v, outcome unknown: %v)", n.ID, got, wroteOK, writeUnknown)
		}
	}
}

func TestFailover_LeaderTransferUnderLoad(t *testing.T) {
	c := cluster.Start(t, 3)
	l := startLoad(t, c, 4)
	l.waitOKs(t, 50, wait)
	old := c.Leader(t, wait)
	target := c.Followers(old)[0]
	r, err := old.Do(http.MethodPost, "/leader", map[string]string{"id": target.ID})
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("POST /leader: %v %d %s", err, r.Status, r.Body)
	}
	if got := c.Leader(t, wait); got != target {
		t.Fatalf("leader is %s, want %s", got.ID, target.ID)
	}
	l.waitOKs(t, 50, wait)
	// And once more without naming a target, sent to a follower (forwarded to the leader).
	r, err = old.Do(http.MethodPost, "/leader", nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("POST /leader via a follower: %v %d %s", err, r.Status, r.Body)
	}
	l.waitOKs(t, 50, wait)
	_, idx := l.finish(t)
	for kind := range l.fails {
		if kind != "503 no_leader" && kind != "503 not_leader" {
			t.Errorf("a write failed with %q during a planned transfer", kind)
		}
	}
	checkAcked(t, c, l, idx)
}

func TestFailover_SIGTERMLeaderUnderLoad(t *testing.T) {
	c := cluster.Start(t, 3)
	l := startLoad(t, c, 4)
	l.waitOKs(t, 50, wait)
	old := c.Leader(t, wait)
	l.markNow()
	old.Stop() // SIGTERM: hands leadership over first
	if !regexpMatch(old.Log(), `leadership transferred before stopping`) {
		t.Errorf("the leader did not transfer leadership before stopping:\n%s", old.LogTail(20))
	}
	c.Leader(t, wait)
	l.waitOKs(t, 50, wait)
	_, idx := l.finish(t)
	checkAcked(t, c, l, idx)
}

// GET /events shows a failover as it happens: the survivors report losing the leader, electing a new one, and
// how long they had none.
func TestFailover_EventsStream(t *testing.T) {
	c := cluster.Start(t, 3)
	old := c.Leader(t, wait)
	watcher := c.Followers(old)[0]
	req, _ := http.NewRequest(http.MethodGet, watcher.URL()+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	old.Kill()
	killed := time.Now()
	deadline := time.After(wait)
	seen := map[string]string{}
	for seen["leader_found"] == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the event stream ended")
			}
			if data, ok := strings.CutPrefix(l, "data: "); ok {
				var e struct {
					Type   string `json:"type"`
					Leader string `json:"leader"`
					Detail string `json:"detail"`
					Time   time.Time
				}
				if err := json.Unmarshal([]byte(data), &e); err != nil {
					t.Fatalf("bad event %q: %v", data, err)
				}
				if e.Time.After(killed) {
					seen[e.Type] = e.Leader + " " + e.Detail
				}
			}
		case <-deadline:
			t.Fatalf("no leader_found event after the kill; saw %v", seen)
		}
	}
	if _, ok := seen["leader_lost"]; !ok {
		t.Errorf("no leader_lost event: %v", seen)
	}
	t.Logf("events after kill -9 of %s: %v", old.ID, seen)
}
