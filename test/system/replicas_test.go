package system

import (
	"net/http"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// Read replicas join as non-voters under write load, catch up and serve; removing one does not disturb
// writes; they never count toward quorum.
func TestReplicas(t *testing.T) {
	c := cluster.Start(t, 3)
	l := startLoad(t, c, 2)
	l.waitOKs(t, 30, wait)

	r1 := c.Add(false)
	r2 := c.Add(false)
	r1.WaitReady(t, wait)
	r2.WaitReady(t, wait)
	l.waitOKs(t, 30, wait)

	var st struct {
		Role  string `json:"role"`
		Voter bool   `json:"voter"`
	}
	cluster.Eventually(t, wait, "the replica's role", func() bool {
		return r1.GetJSON("/status?probe", &st) == nil && st.Role == "read-replica" && !st.Voter
	})
	var nodes map[string]struct {
		Voter bool `json:"voter"`
	}
	if err := c.Nodes[0].GetJSON("/nodes", &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 5 || nodes[r1.ID].Voter || nodes[r2.ID].Voter || !nodes["n1"].Voter {
		t.Fatalf("/nodes = %+v", nodes)
	}
	// auto means none on a replica: served by the replica itself.
	_, resp := r1.Query(t, "SELECT count(*) FROM load", "level=auto")
	if by := resp.Header.Get("X-Rowboat-Served-By"); by != r1.ID {
		t.Fatalf("auto read on a replica served by %q", by)
	}
	// Linearizable reads on a replica are served there too.
	_, resp = r2.Query(t, "SELECT count(*) FROM load", "level=linearizable&min_index_timeout=30s") // past the default wait it is forwarded
	if by := resp.Header.Get("X-Rowboat-Served-By"); by != r2.ID {
		t.Fatalf("linearizable read on a replica served by %q", by)
	}

	// Remove one replica while writes go on.
	leader := c.Leader(t, wait)
	r, err := leader.Do(http.MethodDelete, "/remove", map[string]string{"id": r2.ID})
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("remove: %v %d %s", err, r.Status, r.Body)
	}
	cluster.Eventually(t, wait, r2.ID+" gone from /nodes", func() bool {
		var view nodesView
		if leader.GetJSON("/nodes", &view) != nil {
			return false
		}
		_, listed := view[r2.ID]
		return !listed
	})
	r2.Kill()
	l.waitOKs(t, 30, wait)
	_, idx := l.finish(t)
	checkAcked(t, c, l, idx)

	// Three voters and a replica: losing two voters stops writes, whatever the replicas do.
	c.Add(false).WaitReady(t, wait)
	leader = c.Leader(t, wait)
	killed := 0
	for _, f := range c.Followers(leader) {
		var fs struct {
			Voter bool `json:"voter"`
		}
		if err := f.GetJSON("/status?probe", &fs); err != nil {
			t.Fatalf("%s's status: %v", f.ID, err)
		}
		if fs.Voter && killed < 2 {
			f.Kill()
			killed++
		}
	}
	if killed != 2 {
		t.Fatalf("killed %d voters besides the leader, want 2", killed)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		r, err := leader.Do(http.MethodPost, "/db/execute?timeout=1s", []any{"INSERT INTO load VALUES(999, 999)"})
		if err == nil && r.Status == http.StatusOK {
			t.Fatalf("a write succeeded with 2 of 3 voters down (replicas do not make a quorum): %s", r.Body)
		}
	}
}
