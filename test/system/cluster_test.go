package system

import (
	"fmt"
	"net/http"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
	"github.com/rowboatdb/rowboat/internal/faultproxy"
)

const wait = 60 * time.Second

// rows queries sql on n at level none once n has applied index, and returns the values.
func rows(t *testing.T, n *cluster.Node, sql string, index uint64) [][]any {
	t.Helper()
	d, _ := n.Query(t, sql, fmt.Sprintf("level=none&min_index=%d&min_index_timeout=10s", index))
	if len(d.Results) != 1 || d.Results[0].Error != "" {
		t.Fatalf("%s on %s: %+v", sql, n.ID, d)
	}
	return d.Results[0].Values
}

func TestCluster_WritesAndReads(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	followers := c.Followers(leader)

	d := leader.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", []any{"INSERT INTO t(v) VALUES(?)", "via leader"})
	if d.Results[1].LastInsertID != 1 || d.Results[1].RowsAffected != 1 || d.RaftIndex == 0 {
		t.Fatalf("leader write: %+v", d)
	}
	// A write sent to a follower is forwarded to the leader.
	d2 := followers[0].Execute(t, "", []any{"INSERT INTO t(v) VALUES(:v)", map[string]any{"v": "via follower"}})
	if d2.Results[0].LastInsertID != 2 || d2.RaftIndex <= d.RaftIndex {
		t.Fatalf("follower write: %+v (first at %d)", d2, d.RaftIndex)
	}
	// ?redirect makes a follower answer 307 with the leader's URL.
	r, err := followers[1].Do("POST", "/db/execute?redirect", []any{"INSERT INTO t(v) VALUES('x')"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 307 || r.Header.Get("Location") != leader.URL()+"/db/execute?redirect" {
		t.Fatalf("redirect: %d Location=%q", r.Status, r.Header.Get("Location"))
	}

	want := [][]any{{float64(1), "via leader"}, {float64(2), "via follower"}}
	for _, n := range c.Nodes {
		for _, level := range []string{"none", "weak", "linearizable", "strong", "auto"} {
			t.Run(n.ID+"/"+level, func(t *testing.T) {
				q := "level=" + level
				if level == "none" || level == "auto" {
					// A long min_index wait: past the default 2 s the read is forwarded, and served by another.
					q += fmt.Sprintf("&min_index=%d&min_index_timeout=30s", d2.RaftIndex)
				}
				res, resp := n.Query(t, "SELECT id, v FROM t ORDER BY id", q)
				if got := res.Results[0].Values; !reflect.DeepEqual(got, want) {
					t.Fatalf("rows = %v, want %v", got, want)
				}
				if resp.Index() < d2.RaftIndex {
					t.Fatalf("X-Rowboat-Index = %d, below the write's index %d", resp.Index(), d2.RaftIndex)
				}
				servedBy := resp.Header.Get("X-Rowboat-Served-By")
				if level == "none" && servedBy != n.ID {
					t.Fatalf("level none served by %q, want the node itself", servedBy)
				}
				if servedBy == "" {
					t.Fatal("no X-Rowboat-Served-By")
				}
			})
		}
	}
}

// startedAt returns the applied index a node's log reports at its last start.
func startedAt(t *testing.T, n *cluster.Node) uint64 {
	t.Helper()
	m := regexp.MustCompile(`msg="node started".*applied_index=(\d+)`).FindAllStringSubmatch(n.Log(), -1)
	if len(m) == 0 {
		t.Fatalf("no start line in %s's log", n.ID)
	}
	i, _ := strconv.ParseUint(m[len(m)-1][1], 10, 64)
	return i
}

func TestCluster_RestartKeepsData(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	leader.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	var last uint64
	for i := range 50 {
		last = leader.Execute(t, "", []any{"INSERT INTO t(v) VALUES(?)", i}).RaftIndex
	}
	f := c.Followers(leader)[0]
	rows(t, f, "SELECT 1", last) // caught up

	f.Restart()
	f.WaitReady(t, wait)
	// The database came back holding everything it had applied: nothing is re-applied from index 1.
	if got := startedAt(t, f); got < last {
		t.Fatalf("%s restarted at applied index %d, want >= %d (its database should survive restarts)", f.ID, got, last)
	}
	if got := rows(t, f, "SELECT count(*), sum(v) FROM t", last); !reflect.DeepEqual(got, [][]any{{float64(50), float64(1225)}}) {
		t.Fatalf("after restart: %v", got)
	}
	// And it keeps up with new writes.
	idx := leader.Execute(t, "", "INSERT INTO t(v) VALUES(1000)").RaftIndex
	if got := rows(t, f, "SELECT count(*) FROM t", idx); got[0][0] != float64(51) {
		t.Fatalf("after a new write: %v", got)
	}
}

// TestCluster_RestartWithNewHTTPAddress: a member restarted on its data directory with a new --http-addr
// gets the cluster to record it, so that the leader's /nodes, forwarding and leadership confirmation reach it
// there (it was recorded at its old address for good).
func TestCluster_RestartWithNewHTTPAddress(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	f := c.Followers(leader)[0]
	f.Stop()
	moved := fmt.Sprintf("127.0.0.1:%d", cluster.FreePort(t))
	f.SetArgs("--http-addr", moved) // after the one Define gave it: the last one counts
	f.HTTPAddr = moved
	f.Start()
	f.WaitReady(t, wait)
	cluster.Eventually(t, wait, "the leader to record "+f.ID+"'s new HTTP address", func() bool {
		var view nodesView
		return leader.GetJSON("/nodes", &view) == nil && view[f.ID].APIAddr == f.URL()
	})
	var st struct {
		MemberLag []struct {
			ID        string `json:"id"`
			Reachable bool   `json:"reachable"`
		} `json:"member_lag"`
	}
	cluster.Eventually(t, wait, f.ID+" reachable in the leader's /status", func() bool {
		if leader.GetJSON("/status", &st) != nil {
			return false
		}
		for _, m := range st.MemberLag {
			if m.ID == f.ID {
				return m.Reachable
			}
		}
		return false
	})
}

// TestCluster_RemoveKeepsAQuorum: with one voter of three down, removing a healthy one would leave no leader
// until the down one returned: refused with 409 (unless forced). Removing the one that is down is fine.
func TestCluster_RemoveKeepsAQuorum(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	fs := c.Followers(leader)
	healthy, down := fs[0], fs[1]
	down.Kill()
	r, err := leader.Do(http.MethodDelete, "/remove", map[string]string{"id": healthy.ID})
	if err != nil || r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "no_quorum") {
		t.Fatalf("removing %s with %s down: %v %d %s, want 409 no_quorum", healthy.ID, down.ID, err, r.Status, r.Body)
	}
	cluster.Eventually(t, wait, "removing "+down.ID+", which is down", func() bool {
		r, err := leader.Do(http.MethodDelete, "/remove", map[string]string{"id": down.ID})
		return err == nil && r.Status == http.StatusOK
	})
	leader.Execute(t, "", "CREATE TABLE still_writable(x)")
}

// TestCluster_RemovingTheLeaderHandsOverFirst: DELETE /remove of the leader, sent to the leader, hands
// leadership to another voter, which removes the old leader: the answer names the new leader, and the two
// left take writes at once.
func TestCluster_RemovingTheLeaderHandsOverFirst(t *testing.T) {
	c := cluster.Start(t, 3)
	old := c.Leader(t, wait)
	r, err := old.Do(http.MethodDelete, "/remove", map[string]string{"id": old.ID})
	var answer struct {
		OK     bool   `json:"ok"`
		Leader string `json:"leader"`
	}
	if err != nil || r.Status != http.StatusOK || r.JSON(&answer) != nil || !answer.OK || answer.Leader == old.ID || answer.Leader == "" {
		t.Fatalf("removing the leader %s: %v %d %s, want 200 from a new leader", old.ID, err, r.Status, r.Body)
	}
	var next *cluster.Node
	for _, n := range c.Followers(old) {
		if n.ID == answer.Leader {
			next = n
		}
	}
	if next == nil {
		t.Fatalf("the answer names %s as the leader, not one of the others", answer.Leader)
	}
	var nodes map[string]struct{}
	if err := next.GetJSON("/nodes", &nodes); err != nil || len(nodes) != 2 {
		t.Fatalf("/nodes on the new leader: %v (%v)", nodes, err)
	}
	next.Execute(t, "", "CREATE TABLE written_after(x)")
	old.ExpectExit() // a removed node may stop by itself; it is not one of the test's failures
}

func TestCluster_JoinLater(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	leader.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	var last uint64
	for i := range 20 {
		last = leader.Execute(t, "", []any{"INSERT INTO t(v) VALUES(?)", i}).RaftIndex
	}
	n4 := c.Add(true)
	n4.WaitReady(t, wait)
	if got := rows(t, n4, "SELECT count(*) FROM t", last); got[0][0] != float64(20) {
		t.Fatalf("new node holds %v rows, want 20", got)
	}
	var nodes map[string]struct {
		APIAddr string `json:"api_addr"`
		Voter   bool   `json:"voter"`
	}
	cluster.Eventually(t, wait, "n4 in /nodes with its HTTP address", func() bool {
		nodes = nil
		if err := n4.GetJSON("/nodes", &nodes); err != nil {
			t.Fatal(err)
		}
		return len(nodes) == 4 && nodes["n4"].APIAddr == n4.URL() && nodes["n4"].Voter
	})
}

// TestCluster_JoiningVoterCountsOnceCaughtUp: a voter joins as a non-voter and is made a voter once it has
// caught up, so a node that asked to join and then cannot be reached (here its Raft link from the leader
// drops everything) does not take the quorum with it. Added as a voter at once, it made the only other voter
// lose its quorum: writes stopped, and the leader stepped down.
func TestCluster_JoiningVoterCountsOnceCaughtUp(t *testing.T) {
	c := cluster.New(t)
	c.EnableFaults()
	n1 := c.Add(true)
	n1.WaitReady(t, wait)
	n1.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	n2 := c.Define(true, "--join", n1.HTTPAddr)
	c.Link(n1, n2).SetMode(faultproxy.Mode{BlackHole: true})
	n2.Start()
	type member struct {
		Voter bool `json:"voter"`
	}
	cluster.Eventually(t, wait, "n2 listed as a member", func() bool {
		var nodes map[string]member
		if n1.GetJSON("/nodes", &nodes) != nil {
			return false
		}
		_, listed := nodes["n2"]
		return listed
	})
	// Longer than the leader's lease (500 ms by default) and than a join request's timeout: every write
	// succeeds, on the same leader in the same term.
	var st struct {
		Role string `json:"role"`
		Term uint64 `json:"term"`
	}
	if err := n1.GetJSON("/status", &st); err != nil {
		t.Fatal(err)
	}
	startTerm := st.Term
	var last uint64
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		last = n1.Execute(t, "", []any{"INSERT INTO t(v) VALUES(?)", "while n2 is unreachable"}).RaftIndex
	}
	if err := n1.GetJSON("/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.Role != "leader" || st.Term != startTerm {
		t.Fatalf("n1 while n2 could not be reached: %+v, want the leader in term %d", st, startTerm)
	}
	var nodes map[string]member
	if err := n1.GetJSON("/nodes", &nodes); err != nil {
		t.Fatal(err)
	}
	if nodes["n2"].Voter {
		t.Fatalf("n2 a voter before it caught up: %+v", nodes)
	}

	c.Link(n1, n2).SetMode(faultproxy.Mode{})
	n2.WaitReady(t, wait)
	cluster.Eventually(t, wait, "n2 a voter", func() bool {
		nodes = nil
		return n1.GetJSON("/nodes", &nodes) == nil && nodes["n2"].Voter
	})
	want := rows(t, n1, "SELECT count(*) FROM t", last)
	if got := rows(t, n2, "SELECT count(*) FROM t", last); !reflect.DeepEqual(got, want) {
		t.Fatalf("n2 holds %v rows, the leader %v", got, want)
	}
}

func TestCluster_LeaderRestart(t *testing.T) {
	c := cluster.Start(t, 3)
	old := c.Leader(t, wait)
	old.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, v)")
	idx := old.Execute(t, "", "INSERT INTO t(v) VALUES('before')").RaftIndex

	old.Restart()
	leader := c.Leader(t, wait)
	d := leader.Execute(t, "", "INSERT INTO t(v) VALUES('after')")
	if d.Results[0].LastInsertID != 2 || d.RaftIndex <= idx {
		t.Fatalf("write after leader restart: %+v", d)
	}
	old.WaitReady(t, wait)
	want := [][]any{{float64(1), "before"}, {float64(2), "after"}}
	for _, n := range c.Nodes {
		if got := rows(t, n, "SELECT id, v FROM t ORDER BY id", d.RaftIndex); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", n.ID, got, want)
		}
	}
}

// Non-deterministic SQL yields identical rows on every node, because rows, not statements, are replicated.
func TestCluster_NonDeterministicSQL(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	leader.Execute(t, "",
		"CREATE TABLE t(id INTEGER PRIMARY KEY, x, ts, b)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 50) INSERT INTO t(id) SELECT i FROM n",
	)
	d := leader.Execute(t, "",
		"UPDATE t SET x = random()",
		"UPDATE t SET ts = unixepoch('subsec') WHERE id % 2 = 0",
		"UPDATE t SET ts = CURRENT_TIMESTAMP WHERE id % 2 = 1",
		"UPDATE t SET b = randomblob(8)",
		"DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY random() LIMIT 5)",
	)
	for i, r := range d.Results {
		if r.Error != "" {
			t.Fatalf("statement %d: %s", i, r.Error)
		}
	}
	var first [][]any
	for _, n := range c.Nodes {
		got := rows(t, n, "SELECT id, x, ts, hex(b) FROM t ORDER BY id", d.RaftIndex)
		if len(got) != 45 {
			t.Fatalf("%s holds %d rows, want 45", n.ID, len(got))
		}
		if first == nil {
			first = got
			continue
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("%s differs from %s", n.ID, c.Nodes[0].ID)
		}
	}
	distinct := map[any]bool{}
	for _, r := range first {
		distinct[r[1]] = true
	}
	if len(distinct) < 40 {
		t.Fatalf("random() gave only %d distinct values over 45 rows", len(distinct))
	}
}

func regexpMatch(s, re string) bool { return regexp.MustCompile(re).MatchString(s) }

// A second rowboatd on a data dir in use stops at once with a clear error instead of waiting or corrupting.
func TestCluster_DataDirInUse(t *testing.T) {
	c := cluster.Start(t, 1)
	n := c.Nodes[0]
	cmd := exec.Command(cluster.Binary(t), "--id", "other", "--data-dir", n.DataDir,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", cluster.FreePort(t)), "--raft-addr", fmt.Sprintf("127.0.0.1:%d", cluster.FreePort(t)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // not left behind if the test binary dies
	done := make(chan []byte, 1)
	go func() {
		out, _ := cmd.CombinedOutput()
		done <- out
	}()
	select {
	case out := <-done:
		if !strings.Contains(string(out), "in use by another process") || cmd.ProcessState.ExitCode() == 0 {
			t.Fatalf("exit %d, output:\n%s", cmd.ProcessState.ExitCode(), out)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("a second rowboatd on the same data dir did not stop")
	}
	n.Execute(t, "", "CREATE TABLE still_fine(x)")
}
