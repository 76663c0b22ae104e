package system

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// nodesView is the part of GET /nodes these tests read.
type nodesView map[string]struct {
	APIAddr string `json:"api_addr"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
}

// TestBootstrapExpect starts three nodes the way rqlite users do, each with --bootstrap-expect 3 and every
// node in --join, none of them first: they form one cluster of three voters, every member's HTTP address is
// known, writes replicate, and a restart of all three with the same flags brings the same cluster back.
func TestBootstrapExpect(t *testing.T) {
	c := cluster.New(t)
	nodes := []*cluster.Node{c.Define(true), c.Define(true), c.Define(true)}
	var addrs []string
	for _, nd := range nodes {
		addrs = append(addrs, nd.HTTPAddr)
	}
	for _, nd := range nodes {
		nd.SetArgs("--bootstrap-expect", "3", "--join", strings.Join(addrs, ","))
		nd.Start()
	}
	for _, nd := range nodes {
		nd.WaitReady(t, wait)
	}
	checkFormed := func() {
		t.Helper()
		for _, nd := range nodes {
			var view nodesView
			cluster.Eventually(t, wait, nd.ID+" sees three voters with their HTTP addresses and one leader", func() bool {
				view = nil
				if err := nd.GetJSON("/nodes", &view); err != nil {
					return false
				}
				leaders := 0
				for _, o := range nodes {
					m, ok := view[o.ID]
					if !ok || !m.Voter || m.APIAddr != o.URL() {
						return false
					}
					if m.Leader {
						leaders++
					}
				}
				return len(view) == 3 && leaders == 1
			})
		}
	}
	checkFormed()

	leader := c.Leader(t, wait)
	follower := c.Followers(leader)[0]
	follower.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	idx := follower.Execute(t, "", []any{"INSERT INTO t(v) VALUES(?)", "formed"}).RaftIndex
	want := [][]any{{float64(1), "formed"}}
	for _, nd := range nodes {
		if got := rows(t, nd, "SELECT id, v FROM t", idx); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", nd.ID, got, want)
		}
	}

	for _, nd := range nodes {
		nd.Stop()
	}
	for _, nd := range nodes {
		nd.Start()
	}
	for _, nd := range nodes {
		nd.WaitReady(t, wait)
	}
	checkFormed()
	idx = c.Leader(t, wait).Execute(t, "", []any{"INSERT INTO t(v) VALUES(?)", "restarted"}).RaftIndex
	for _, nd := range nodes {
		if got := rows(t, nd, "SELECT count(*) FROM t", idx); got[0][0] != float64(2) {
			t.Fatalf("%s after the restart holds %v rows, want 2", nd.ID, got)
		}
	}
}

// TestJoinRetriedAfterFailedJoin: a node whose first start could not join (no member answered) has already
// created its data directory; started again with a member to join, it must ask again and join, not wait
// forever as if it were a member restarting.
func TestJoinRetriedAfterFailedJoin(t *testing.T) {
	c := cluster.Start(t, 1)
	leader := c.Leader(t, wait)
	idx := leader.Execute(t, "", "CREATE TABLE t(v)", "INSERT INTO t VALUES('before the join')").RaftIndex

	nowhere := cluster.FreePort(t)
	late := c.Define(true, "--join", "127.0.0.1:"+strconv.Itoa(nowhere))
	late.Start()
	cluster.Eventually(t, wait, "the failing node to create its Raft files", func() bool {
		_, err := os.Stat(filepath.Join(late.DataDir, "raft", "raft.db"))
		return err == nil
	})
	late.Kill()

	late.SetArgs("--join", leader.HTTPAddr)
	late.Start()
	late.WaitReady(t, wait)
	if got := rows(t, late, "SELECT v FROM t", idx); !reflect.DeepEqual(got, [][]any{{"before the join"}}) {
		t.Fatalf("the node that joined on its second start holds %v", got)
	}
	cluster.Eventually(t, wait, "the late node in /nodes with its HTTP address", func() bool {
		var view nodesView
		return leader.GetJSON("/nodes", &view) == nil && view[late.ID].APIAddr == late.URL() && view[late.ID].Voter
	})
}
