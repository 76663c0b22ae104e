package system

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
	"github.com/rowboatdb/rowboat/internal/faultproxy"
	"github.com/rowboatdb/rowboat/logical"
)

// tableHash hashes n's whole database once n has applied index: the schema (without root pages), and every row
// of every table (sqlite_sequence and the shadow tables of virtual tables included) with its rowid, which
// replication keys rows on.
func tableHash(t *testing.T, n *cluster.Node, index uint64) string {
	t.Helper()
	h := sha256.New()
	for _, r := range rows(t, n, "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE '\\_rowboat\\_%' ESCAPE '\\' ORDER BY type, name", index) {
		fmt.Fprintf(h, "schema %#v\n", r)
	}
	tables := rows(t, n, "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'shadow') AND name NOT IN ('sqlite_schema', 'sqlite_stat1', 'sqlite_stat4') AND name NOT LIKE '\\_rowboat\\_%' ESCAPE '\\' ORDER BY name", index)
	for _, tb := range tables {
		name := tb[0].(string)
		sel := fmt.Sprintf("SELECT * FROM %q", name)
		if tb[1] == float64(0) { // a rowid table: name its rowid by a name no column shadows
			var cols []string
			for _, c := range rows(t, n, fmt.Sprintf("SELECT name FROM pragma_table_xinfo('%s')", strings.ReplaceAll(name, "'", "''")), index) {
				cols = append(cols, c[0].(string))
			}
			if rowid, ok := logical.RowIDName(cols); ok {
				sel = fmt.Sprintf("SELECT %s, * FROM %q", rowid, name)
			}
		}
		var lines []string
		for _, r := range rows(t, n, sel, index) {
			lines = append(lines, fmt.Sprintf("%#v", r))
		}
		sort.Strings(lines)
		fmt.Fprintf(h, "%s\n%s\n", name, strings.Join(lines, "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// A leader cut off from both followers acknowledges nothing; after the partition heals every node holds the
// same data.
func TestPartition_IsolatedLeaderAcknowledgesNothing(t *testing.T) {
	c := cluster.StartWithFaults(t, 3)
	old := c.Leader(t, wait)
	old.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, side TEXT)")
	c.Net.Isolate(old.ID)

	// Keep writing to the isolated leader while the majority elects a new one and takes writes too.
	acceptedByOld := 0
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		r, err := old.Do(http.MethodPost, "/db/execute?timeout=2s", []any{"INSERT INTO t(side) VALUES('minority')"})
		if err == nil && r.Status == http.StatusOK {
			acceptedByOld++
		}
	}
	if acceptedByOld > 0 {
		t.Errorf("the isolated leader acknowledged %d writes", acceptedByOld)
	}
	next := cluster.LeaderAmong(t, wait, c.Followers(old))
	for range 10 {
		next.Execute(t, "", "INSERT INTO t(side) VALUES('majority')")
	}

	c.Net.HealAll()
	leader := c.Leader(t, wait)
	idx := leader.Execute(t, "", "INSERT INTO t(side) VALUES('healed')").RaftIndex
	want := ""
	for _, n := range c.Nodes {
		h := tableHash(t, n, idx)
		if want != "" && h != want {
			t.Fatalf("%s's tables hash %s, another node's %s", n.ID, h, want)
		}
		want = h
	}
	if got := rows(t, old, "SELECT count(*) FROM t WHERE side = 'minority'", idx); got[0][0] != float64(0) {
		t.Fatalf("minority writes survived: %v", got)
	}
}

// lag delays every Raft message from the leader to f, so f applies writes late.
func lag(c *cluster.Cluster, leader, f *cluster.Node, d time.Duration) {
	c.Link(leader, f).SetMode(faultproxy.Mode{Delay: d})
}
