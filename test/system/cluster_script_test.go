package system

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// clusterScript runs scripts/cluster.sh for one cluster directory and base port.
type clusterScript struct {
	t    *testing.T
	dir  string
	base int
}

func (cs clusterScript) run(args ...string) (string, error) {
	cs.t.Helper()
	cmd := exec.Command("../../scripts/cluster.sh", args...)
	cmd.Env = append(os.Environ(), "ROWBOAT_CLUSTER_DIR="+cs.dir, "ROWBOAT_BASE_PORT="+strconv.Itoa(cs.base),
		"ROWBOATD="+cluster.Binary(cs.t), "ROWBOAT_START_TIMEOUT=60")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (cs clusterScript) must(args ...string) string {
	cs.t.Helper()
	out, err := cs.run(args...)
	if err != nil {
		cs.t.Fatalf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (cs clusterScript) node(i int) *cluster.Node {
	return &cluster.Node{ID: "n" + strconv.Itoa(i), HTTPAddr: "127.0.0.1:" + strconv.Itoa(cs.base+10*(i-1))}
}

// pids returns the PIDs in the script's pid files.
func (cs clusterScript) pids() []int {
	files, _ := filepath.Glob(filepath.Join(cs.dir, "n*.pid"))
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			out = append(out, pid)
		}
	}
	return out
}

// The README's quick start: scripts/cluster.sh starts three nodes that elect a leader and replicate, kills the
// leader, brings it back, adds a read replica, refuses ports another cluster holds, and stops every process.
func TestClusterScript(t *testing.T) {
	cs := clusterScript{t: t, dir: filepath.Join(t.TempDir(), "cluster"), base: cluster.FreePorts(t, 0, 1, 10, 11, 20, 21, 30, 31)}
	t.Cleanup(func() {
		cs.run("stop")
		for _, pid := range cs.pids() { // whatever the script left behind, if the PID is still one of its nodes
			if cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err != nil || !strings.Contains(string(cmd), cs.dir) {
				continue
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	out := cs.must("start")
	for _, want := range []string{"n1 ready", "n2 ready", "n3 ready"} {
		if !strings.Contains(out, want) {
			t.Fatalf("start printed no %q:\n%s", want, out)
		}
	}
	n1, n2, n3 := cs.node(1), cs.node(2), cs.node(3)
	n2.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)", []any{"INSERT INTO t(v) VALUES(?)", "one"})
	if d, _ := n3.Query(t, "SELECT v FROM t", "level=linearizable"); len(d.Results) != 1 || len(d.Results[0].Values) != 1 {
		t.Fatalf("n3 reads %+v", d)
	}
	st := cs.must("status")
	roles := map[string]int{}
	for _, line := range strings.Split(st, "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 4 {
			roles[f[3]]++
		}
	}
	if roles["leader"] != 1 || roles["follower"] != 2 {
		t.Fatalf("status shows not one leader and two followers (%v):\n%s", roles, st)
	}

	// A second cluster on the same ports is refused before it starts anything.
	other := clusterScript{t: t, dir: filepath.Join(t.TempDir(), "other"), base: cs.base}
	if out, err := other.run("start"); err == nil || !strings.Contains(out, "already in use") {
		t.Fatalf("a second cluster on the same ports: err %v\n%s", err, out)
	}
	if pids := other.pids(); len(pids) != 0 {
		t.Fatalf("the refused cluster started processes %v", pids)
	}

	out = cs.must("kill-leader")
	if !strings.Contains(out, "killed leader n1") {
		t.Fatalf("kill-leader: %s", out)
	}
	var newLeader *cluster.Node
	cluster.Eventually(t, 60*time.Second, "a new leader among n2 and n3", func() bool {
		for _, nd := range []*cluster.Node{n2, n3} {
			if nd.LeadsReady() {
				newLeader = nd
				return true
			}
		}
		return false
	})
	newLeader.Execute(t, "", []any{"INSERT INTO t(v) VALUES(?)", "two"})
	cs.must("start") // brings n1 back
	if d, _ := n1.Query(t, "SELECT COUNT(*) FROM t", "level=linearizable"); len(d.Results) != 1 || d.Results[0].Values[0][0] != float64(2) {
		t.Fatalf("n1 after its restart reads %+v", d)
	}

	// n1 loses its data directory: start must bring it back into the same cluster, not bootstrap a new one.
	b, err := os.ReadFile(filepath.Join(cs.dir, "n1.pid"))
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || perr != nil {
		t.Fatalf("n1.pid: %v %v", err, perr)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	cluster.Eventually(t, 30*time.Second, "n1 to exit", func() bool { return syscall.Kill(pid, 0) != nil || zombie(pid) })
	if err := os.RemoveAll(filepath.Join(cs.dir, "n1")); err != nil {
		t.Fatal(err)
	}
	cs.must("start")
	if d, _ := n1.Query(t, "SELECT COUNT(*) FROM t", "level=linearizable"); len(d.Results) != 1 || d.Results[0].Values[0][0] != float64(2) {
		t.Fatalf("n1 started again without its data directory reads %+v, want the cluster's 2 rows", d)
	}
	if log, err := os.ReadFile(filepath.Join(cs.dir, "n1.log")); err != nil || strings.Count(string(log), "bootstrapped a new cluster") != 1 {
		t.Fatalf("n1 bootstrapped a cluster of its own when it started without its data directory (%v):\n%s", err, log)
	}
	var members map[string]struct{}
	if err := n2.GetJSON("/nodes", &members); err != nil || len(members) != 3 {
		t.Fatalf("/nodes on n2 after n1 came back without its data: %v (%v)", members, err)
	}

	out = cs.must("add-replica")
	if !strings.Contains(out, "n4 ready") {
		t.Fatalf("add-replica: %s", out)
	}
	var nodes map[string]struct {
		Voter bool `json:"voter"`
	}
	if err := n1.GetJSON("/nodes", &nodes); err != nil || len(nodes) != 4 || nodes["n4"].Voter || !nodes["n1"].Voter {
		t.Fatalf("/nodes after add-replica: %+v (%v)", nodes, err)
	}
	// remove-replica takes n4 out of the cluster and forgets it; a new one can be added after.
	if out := cs.must("remove-replica"); !strings.Contains(out, "removed n4") {
		t.Fatalf("remove-replica: %s", out)
	}
	nodes = nil
	if err := n1.GetJSON("/nodes", &nodes); err != nil || len(nodes) != 3 {
		t.Fatalf("/nodes after remove-replica: %+v (%v)", nodes, err)
	}
	if _, err := os.Stat(filepath.Join(cs.dir, "n4")); !os.IsNotExist(err) {
		t.Fatalf("remove-replica left n4's data dir (%v)", err)
	}
	if out := cs.must("add-replica"); !strings.Contains(out, "n4 ready") {
		t.Fatalf("add-replica after remove-replica: %s", out)
	}

	pids := cs.pids()
	if len(pids) != 4 {
		t.Fatalf("pid files %v, want 4", pids)
	}
	cs.must("stop")
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil && !zombie(pid) {
			t.Errorf("process %d still runs after stop", pid)
		}
	}
	for _, port := range []int{cs.base, cs.base + 10, cs.base + 20, cs.base + 30} {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			t.Errorf("port %d still answers after stop", port)
		}
	}
	cs.must("wipe")
	if _, err := os.Stat(cs.dir); !os.IsNotExist(err) {
		t.Fatalf("wipe left %s (%v)", cs.dir, err)
	}
}

// zombie reports whether pid has exited and waits to be reaped (its parent was the script's shell).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}
