package system

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowboatdb/rowboat/fsm"
	"github.com/rowboatdb/rowboat/internal/cluster"
	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// TestDivergedFollowerStops: a follower whose database was changed behind rowboat's back (a row deleted while
// it was stopped) cannot apply the next change to that row. It must stop loudly, saying its database has
// diverged, instead of carrying on with different data; the rest of the cluster keeps taking writes.
func TestDivergedFollowerStops(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	leader.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	idx := leader.Execute(t, "", "INSERT INTO t VALUES(1, 'a'), (2, 'b')").RaftIndex
	followers := c.Followers(leader)
	f, other := followers[0], followers[1]
	rows(t, f, "SELECT count(*) FROM t", idx) // it has applied the rows
	f.Stop()

	db, err := sqlite3.Open(filepath.Join(f.DataDir, "db", fsm.DBFile), sqlite3.OpenReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Exec("DELETE FROM t WHERE id = 2")
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	f.ExpectExit()
	f.Start()
	idx = leader.Execute(t, "", "UPDATE t SET v = 'changed' WHERE id = 2").RaftIndex
	cluster.Eventually(t, wait, f.ID+" to stop", func() bool { return !f.Running() })
	if log := f.Log(); !strings.Contains(log, "diverged") {
		t.Fatalf("%s stopped without saying its database diverged:\n%s", f.ID, f.LogTail(10))
	}
	// The leader and the other follower carry on.
	idx = leader.Execute(t, "", "INSERT INTO t VALUES(3, 'c')").RaftIndex
	for _, n := range []*cluster.Node{leader, other} {
		if got := rows(t, n, "SELECT v FROM t ORDER BY id", idx); len(got) != 3 || got[1][0] != "changed" {
			t.Fatalf("%s: %v", n.ID, got)
		}
	}
}
