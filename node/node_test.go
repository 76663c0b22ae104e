package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/internal/cluster"
	"github.com/rowboatdb/rowboat/internal/raftlog"
	"github.com/rowboatdb/rowboat/logical"
)

// freeAddr is a free address on 127.0.0.1 from below the kernel's ephemeral range (see cluster.FreePort), so
// no connection another test opens meanwhile can take it.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("127.0.0.1:%d", cluster.FreePort(tb))
}

// openNode starts an in-process node with short timeouts; the first one (bootstrap) forms a cluster.
// testConfig configures a test node on a TCP transport with its data in dir.
func testConfig(tb testing.TB, id, dir string, bootstrap bool) Config {
	return Config{
		ID: id, RaftAddr: freeAddr(tb), HTTPAdvertise: id + ":80", DataDir: dir, Bootstrap: bootstrap,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond, ApplyTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogOutput: io.Discard, LogLevel: "error",
		Halt: func(err error) { tb.Errorf("%s diverged: %v", id, err) },
	}
}

func openNode(tb testing.TB, id string, bootstrap bool) *Node {
	tb.Helper()
	n, err := Open(testConfig(tb, id, tb.TempDir(), bootstrap))
	if err != nil {
		tb.Fatalf("open %s: %v", id, err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

// openLeading opens a node that bootstraps (cfg.Bootstrap) and waits until it leads. The caller closes it.
func openLeading(tb testing.TB, cfg Config) *Node {
	tb.Helper()
	n, err := Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	waitFor(tb, "leadership", n.IsLeader)
	return n
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exec1(tb testing.TB, n *Node, sql string, args ...any) WriteResult {
	tb.Helper()
	res, err := n.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{SQL: sql, Args: args}}})
	if err != nil {
		tb.Fatalf("execute %q on %s: %v", sql, n.ID(), err)
	}
	if res.Results[0].Error != "" {
		tb.Fatalf("execute %q on %s: %s", sql, n.ID(), res.Results[0].Error)
	}
	return res
}

func TestNode_SingleNode(t *testing.T) {
	n := openNode(t, "n1", true)
	waitFor(t, "leadership", n.IsLeader)
	exec1(t, n, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	w := exec1(t, n, "INSERT INTO t(v) VALUES(?)", "x")
	if w.Index == 0 || w.Results[0].LastInsertID != 1 {
		t.Fatalf("write result %+v", w)
	}
	idx, err := n.ReadIndex(context.Background())
	if err != nil || idx < w.Index {
		t.Fatalf("ReadIndex = %d, %v; want >= %d", idx, err, w.Index)
	}
	if !n.HasLease() {
		t.Fatal("no lease right after a confirmed read index")
	}
	res, at, err := n.Query(context.Background(), []logical.Statement{{SQL: "SELECT v FROM t"}})
	if err != nil || at.Index < w.Index || at.Term != w.Term || res[0].Rows[0][0] != "x" {
		t.Fatalf("query: %+v at %d, %v", res, at, err)
	}
	if ok, why := n.Ready(); !ok {
		t.Fatalf("not ready: %s", why)
	}
	if m := n.FSM().Members()["n1"]; m.HTTPAddr != "n1:80" {
		t.Fatalf("own metadata not recorded: %+v", m)
	}
	// Planned failover on a cluster of one: nobody to hand over to is a bad request; naming itself, a no-op.
	if err := n.TransferLeadership(context.Background(), ""); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("TransferLeadership to anyone on a cluster of one: %v, want ErrBadRequest", err)
	}
	if err := n.TransferLeadership(context.Background(), "n1"); err != nil || !n.IsLeader() {
		t.Fatalf("TransferLeadership to itself: %v, leader %v; want nil and still leading", err, n.IsLeader())
	}
}

func TestNode_JoinTransferAndFollowerErrors(t *testing.T) {
	n1 := openNode(t, "n1", true)
	waitFor(t, "leadership", n1.IsLeader)
	nodes := []*Node{n1}
	for i := 2; i <= 3; i++ {
		n := openNode(t, fmt.Sprintf("n%d", i), false)
		if err := n1.Join(context.Background(), JoinRequest{ID: n.ID(), RaftAddr: string(n.transport.LocalAddr()), HTTPAddr: n.ID() + ":80", Voter: true, Fresh: true}); err != nil {
			t.Fatalf("join %s: %v", n.ID(), err)
		}
		n.Joined()
		nodes = append(nodes, n)
	}
	// Joining again with the same identity is a no-op.
	if err := n1.Join(context.Background(), JoinRequest{ID: "n2", RaftAddr: string(nodes[1].transport.LocalAddr()), HTTPAddr: "n2:80", Voter: true}); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	w := exec1(t, n1, "CREATE TABLE t(x)")
	for _, n := range nodes[1:] {
		waitFor(t, n.ID()+" applying", func() bool { return n.AppliedIndex() >= w.Index })
		// Followers refuse leader-only work with node's own sentinels, never raft's.
		if _, err := n.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{SQL: "INSERT INTO t VALUES(1)"}}}); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("Execute on follower %s: %v, want ErrNotLeader", n.ID(), err)
		}
		if _, err := n.ReadIndex(context.Background()); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("ReadIndex on follower: %v", err)
		}
		if _, err := n.ReadIndexFor(context.Background(), "n1", n.Term()); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("ReadIndexFor on follower: %v", err)
		}
		// The leader answers a read-index request from a voter at its term, and from anyone else (through
		// VerifyLeader), with a commit index covering the last write.
		for _, term := range []uint64{n.Term(), n.Term() + 1, 0} {
			if idx, err := n1.ReadIndexFor(context.Background(), n.ID(), term); err != nil || idx < w.Index {
				t.Fatalf("ReadIndexFor(%s, term %d) = %d, %v; want >= %d", n.ID(), term, idx, err, w.Index)
			}
		}
		if id, addr := n.Leader(); id != "n1" || addr != "n1:80" {
			t.Fatalf("%s sees leader %q at %q", n.ID(), id, addr)
		}
	}
	ms, err := n1.Members()
	if err != nil || len(ms) != 3 || !ms[0].Leader || ms[2].HTTPAddr != "n3:80" {
		t.Fatalf("members %+v, %v", ms, err)
	}

	// A planned transfer to a named voter.
	if err := n1.TransferLeadership(context.Background(), "n3"); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	waitFor(t, "n3 leading", nodes[2].IsLeader)
	if n1.IsLeader() {
		t.Fatal("n1 still leads after the transfer")
	}
	w2 := exec1(t, nodes[2], "INSERT INTO t VALUES(2)")
	if w2.Index <= w.Index || w2.Term <= w.Term {
		t.Fatalf("(term, index) went from (%d, %d) to (%d, %d)", w.Term, w.Index, w2.Term, w2.Index)
	}
	if err := nodes[2].TransferLeadership(context.Background(), "nosuch"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("transfer to an unknown member: %v", err)
	}

	// Removing a member.
	if err := nodes[2].Remove(context.Background(), "n2", false); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := nodes[2].Remove(context.Background(), "n2", false); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("remove twice: %v", err)
	}
	if ms, _ := nodes[2].Members(); len(ms) != 2 {
		t.Fatalf("members after remove: %+v", ms)
	}
}

func TestNode_ClosedNodeRefusesWork(t *testing.T) {
	n := openNode(t, "n1", true)
	waitFor(t, "leadership", n.IsLeader)
	n.Close()
	if _, err := n.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{SQL: "SELECT 1"}}}); err == nil {
		t.Fatal("a closed node executed a write")
	}
	if ok, _ := n.Ready(); ok {
		t.Fatal("a closed node says it is ready")
	}
}

func TestNode_RunawayWriteDoesNotBlockTheWriter(t *testing.T) {
	n, err := Open(Config{
		ID: "n1", RaftAddr: freeAddr(t), HTTPAdvertise: "n1:80", DataDir: t.TempDir(), Bootstrap: true,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond, ApplyTimeout: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogOutput: io.Discard, LogLevel: "error",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitFor(t, "leadership", n.IsLeader)
	exec1(t, n, "CREATE TABLE t(x)")
	_, err = n.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{
		SQL: "INSERT INTO t SELECT count(*) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c) SELECT i FROM c)"}}})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("runaway write: %v, want ErrTimeout", err)
	}
	exec1(t, n, "INSERT INTO t VALUES(1)") // the writer is free again
}

func TestQuorumWith(t *testing.T) {
	voter := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Voter} }
	replica := func(id string) raft.Server { return raft.Server{ID: raft.ServerID(id), Suffrage: raft.Nonvoter} }
	for _, tc := range []struct {
		name       string
		servers    []raft.Server
		self, from string
		want       bool
	}{
		{"three voters", []raft.Server{voter("a"), voter("b"), voter("c")}, "a", "b", true},
		{"two voters", []raft.Server{voter("a"), voter("b")}, "a", "b", true},
		{"three voters and replicas", []raft.Server{voter("a"), voter("b"), voter("c"), replica("r1"), replica("r2")}, "a", "c", true},
		{"from a read replica", []raft.Server{voter("a"), voter("b"), voter("c"), replica("r1")}, "a", "r1", false},
		{"four voters: two are no quorum", []raft.Server{voter("a"), voter("b"), voter("c"), voter("d")}, "a", "b", false},
		{"five voters", []raft.Server{voter("a"), voter("b"), voter("c"), voter("d"), voter("e")}, "a", "b", false},
		{"from itself", []raft.Server{voter("a"), voter("b"), voter("c")}, "a", "a", false},
		{"from a stranger", []raft.Server{voter("a"), voter("b"), voter("c")}, "a", "x", false},
		{"from nobody", []raft.Server{voter("a"), voter("b"), voter("c")}, "a", "", false},
		{"self removed from the configuration", []raft.Server{voter("b"), voter("c")}, "a", "b", false},
		{"self demoted", []raft.Server{replica("a"), voter("b"), voter("c")}, "a", "b", false},
	} {
		if got := quorumWith(tc.servers, tc.self, tc.from); got != tc.want {
			t.Errorf("%s: quorumWith(%s, %s) = %v, want %v", tc.name, tc.self, tc.from, got, tc.want)
		}
	}
}

// Close returns while writes are in flight, and every writer gets a node sentinel. raft never answers a
// future still queued in its buffered apply channel when it shuts down; waiting on one without also watching
// the node stop hung Close once in TestNode_ClosedNodeRefusesWork (the new leader recording its metadata as
// Close began), under the load of the whole suite. That needs a future queued at the instant of shutdown:
// neither this test nor 300 runs of that one hit it again without the fix, so this is a guard, not a
// reproduction.
func TestNode_CloseUnderWritesReturns(t *testing.T) {
	for round := range 3 {
		n := openNode(t, fmt.Sprintf("n%d", round), true)
		waitFor(t, "leadership", n.IsLeader)
		exec1(t, n, "CREATE TABLE t(x)")
		var done atomic.Int64
		errs := make(chan error, 32)
		for range 32 {
			go func() {
				var last error
				for {
					_, err := n.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{SQL: "INSERT INTO t VALUES(1)"}}})
					if err != nil {
						last = err
						break
					}
					done.Add(1)
				}
				errs <- last
			}()
		}
		waitFor(t, "some writes", func() bool { return done.Load() > 50 })
		closed := make(chan error, 1)
		go func() { closed <- n.Close() }()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not return within 30 s with writes in flight")
		}
		for range 32 {
			select {
			case err := <-errs:
				if !errors.Is(err, ErrShuttingDown) && !errors.Is(err, ErrLeadershipLost) && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) {
					t.Fatalf("a write cut off by Close: %v, want a node sentinel", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("a writer never returned after Close")
			}
		}
	}
}

// A data dir whose database has applied entries but whose Raft state is gone is refused: a new log's entries
// would be skipped as applied up to the database's index.
func TestNode_DatabaseWithoutRaftStateRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "n1", dir, true)
	n := openLeading(t, cfg)
	exec1(t, n, "CREATE TABLE t(x)")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "raft")); err != nil {
		t.Fatal(err)
	}
	n, err := Open(cfg)
	if err == nil {
		n.Close()
		t.Fatal("Open accepted a database without its Raft state")
	}
	if !strings.Contains(err.Error(), "Raft log and snapshots") {
		t.Fatalf("Open: %v, want an error that says the Raft state is missing", err)
	}
	// Removing the database as the error says makes the data dir usable again.
	if err := os.RemoveAll(filepath.Join(dir, "db")); err != nil {
		t.Fatal(err)
	}
	upload := filepath.Join(dir, "upload-123.sqlite") // left by a process that stopped during a /db/load
	if err := os.WriteFile(upload, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err = Open(cfg)
	if err != nil {
		t.Fatalf("Open after removing the database: %v", err)
	}
	n.Close()
	if _, err := os.Stat(upload); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a leftover upload survived Open: %v", err)
	}
}

// A database that has applied entries its Raft log no longer holds is refused, whether the log's directory was
// removed (with the term and vote kept) or its tail was lost: started, a lone node reused the lost indexes for
// new writes, which the database skipped as applied, and acknowledged them (4 of 5 writes lost).
func TestNode_DatabaseAheadOfRaftLogRefused(t *testing.T) {
	for _, damage := range []string{"log removed", "log tail lost"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, "n1", dir, true)
			n := openLeading(t, cfg)
			exec1(t, n, "CREATE TABLE t(x)")
			for i := range 10 {
				exec1(t, n, fmt.Sprintf("INSERT INTO t VALUES(%d)", i))
			}
			applied := n.FSM().AppliedIndex()
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			logDir := filepath.Join(dir, "raft", "log")
			if damage == "log removed" {
				if err := os.RemoveAll(logDir); err != nil {
					t.Fatal(err)
				}
			} else {
				logs, err := raftlog.Open(logDir, raftlog.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := logs.DeleteRange(applied-5, applied+100); err != nil {
					t.Fatal(err)
				}
				logs.Close()
			}
			n, err := Open(cfg)
			if err == nil {
				n.Close()
				t.Fatalf("Open accepted a database at index %d with the Raft log damaged (%s)", applied, damage)
			}
			if want := fmt.Sprintf("applied the log up to index %d", applied); !strings.Contains(err.Error(), want) {
				t.Fatalf("Open: %v, want an error that says %q", err, want)
			}
		})
	}
}

// A join with an address that is not host:port, or where nothing answers, is refused and changes nothing: a
// voter that cannot vote, added to a cluster of one, left it without a leader for good.
func TestNode_JoinRefusesUnreachableMembers(t *testing.T) {
	n1 := openNode(t, "n1", true)
	waitFor(t, "leadership", n1.IsLeader)
	// A new leader records its own metadata through the log, after it reports leading.
	waitFor(t, "n1's own metadata", func() bool { return len(n1.FSM().Members()) == 1 })
	for _, tc := range []struct {
		req  JoinRequest
		want error
	}{
		{JoinRequest{ID: "x", RaftAddr: "not an addr", HTTPAddr: "127.0.0.1:4001", Voter: true}, ErrBadRequest},
		{JoinRequest{ID: "x", RaftAddr: "127.0.0.1:70000", HTTPAddr: "127.0.0.1:4001", Voter: true}, ErrBadRequest},
		{JoinRequest{ID: "x", RaftAddr: freeAddr(t), HTTPAddr: "zz", Voter: true}, ErrBadRequest},
		{JoinRequest{ID: "x", RaftAddr: freeAddr(t), HTTPAddr: "http://127.0.0.1:4001/", Voter: true}, ErrUnreachable}, // a URL is fine
		{JoinRequest{ID: "x", RaftAddr: freeAddr(t), HTTPAddr: "127.0.0.1:4001", Voter: true}, ErrUnreachable},
		{JoinRequest{ID: "r", RaftAddr: freeAddr(t), HTTPAddr: "127.0.0.1:4001", Voter: false}, ErrUnreachable},
		{JoinRequest{ID: "n1", RaftAddr: freeAddr(t), HTTPAddr: "127.0.0.1:4001", Voter: true}, ErrUnreachable}, // a move
	} {
		if err := n1.Join(context.Background(), tc.req); !errors.Is(err, tc.want) {
			t.Errorf("join %+v: %v, want %v", tc.req, err, tc.want)
		}
	}
	cf := n1.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	if servers := cf.Configuration().Servers; len(servers) != 1 || servers[0].ID != "n1" {
		t.Fatalf("configuration after refused joins: %+v", servers)
	}
	if len(n1.FSM().Members()) != 1 {
		t.Fatalf("members after refused joins: %+v", n1.FSM().Members())
	}
	exec1(t, n1, "CREATE TABLE still_writable(x)") // still a leader with a quorum
}

// A member removed from the cluster knows it: it is not ready, says why, and /status shows it.
func TestNode_RemovedMemberKnowsIt(t *testing.T) {
	n1 := openNode(t, "n1", true)
	waitFor(t, "leadership", n1.IsLeader)
	r := openNode(t, "r1", false)
	if r.Removed() {
		t.Fatal("a node that has not joined yet says it was removed")
	}
	if err := n1.Join(context.Background(), JoinRequest{ID: "r1", RaftAddr: string(r.transport.LocalAddr()), HTTPAddr: "r1:80"}); err != nil {
		t.Fatal(err)
	}
	r.Joined()
	w := exec1(t, n1, "CREATE TABLE t(x)")
	waitFor(t, "the replica to catch up", func() bool { ok, _ := r.Ready(); return ok && r.AppliedIndex() >= w.Index })
	// Once the replica has announced it is ready, it no longer polls its readiness by itself.
	for deadline := time.After(20 * time.Second); ; {
		select {
		case e := <-r.Events():
			if e.Type != EventReady {
				continue
			}
		case <-deadline:
			t.Fatal("the replica never announced it was ready")
		}
		break
	}
	if r.Removed() || r.Status().Removed {
		t.Fatal("a member says it was removed")
	}
	if err := n1.Remove(context.Background(), "r1", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replica to notice its removal by itself", r.removedLogged.Load) // nobody asked it
	if !r.Removed() {
		t.Fatal("Removed() is false after removal")
	}
	ok, why := r.Ready()
	if ok || !strings.Contains(why, "removed") {
		t.Fatalf("Ready() after removal: %v %q", ok, why)
	}
	if !r.Status().Removed {
		t.Fatal("Status().Removed is false after removal")
	}
	// A write it is sent says it was removed (still "no leader", so that a client moves to another member).
	if _, err := r.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{SQL: "INSERT INTO t VALUES(1)"}}}); !errors.Is(err, ErrNoLeader) || !strings.Contains(err.Error(), "removed from the cluster") {
		t.Fatalf("a write on a removed node: %v, want no leader saying it was removed", err)
	}
	if n1.Removed() {
		t.Fatal("the leader says it was removed")
	}
}

// A log that ends below the latest snapshot (a crash after raft installed a snapshot, before it emptied the
// log) is emptied at start: every entry in it is in the snapshot, and appends after it would leave a gap the
// log store refuses.
func TestNode_LogBelowTheSnapshotIsEmptied(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "n1", dir, true)
	n := openLeading(t, cfg)
	exec1(t, n, "CREATE TABLE t(x)")
	for i := range 10 {
		exec1(t, n, "INSERT INTO t VALUES (?)", i)
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapIndex := n.AppliedIndex()
	n.Close()
	logs, err := raftlog.Open(filepath.Join(dir, "raft", "log"), raftlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := logs.FirstIndex()
	if err := logs.DeleteRange(snapIndex-3, snapIndex+100); err != nil { // as if only part of the log was left
		t.Fatal(err)
	}
	logs.Close()
	if first >= snapIndex-3 {
		t.Fatalf("the log starts at %d: the test needs entries below %d", first, snapIndex-3)
	}
	n, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	waitFor(t, "leadership", n.IsLeader)
	w := exec1(t, n, "INSERT INTO t VALUES (99)")
	if w.Index <= snapIndex {
		t.Fatalf("a write after the restart got index %d, at or below the snapshot's %d", w.Index, snapIndex)
	}
	res, _, err := n.Query(context.Background(), []logical.Statement{{SQL: "SELECT count(*) FROM t"}})
	if err != nil || res[0].Rows[0][0] != int64(11) {
		t.Fatalf("rows after the restart: %v %v", res, err)
	}
}

// A Raft address given as a host name is advertised as given: a node with --bootstrap-expect that hears its
// own notification (its --join lists itself) counts itself, instead of refusing its own name as another
// node's address for its id (it compared the name with the resolved IP, and rowboatd exited).
func TestNode_AdvertisesTheRaftAddressAsGiven(t *testing.T) {
	cfg := testConfig(t, "n1", t.TempDir(), false)
	cfg.RaftAddr = fmt.Sprintf("localhost:%d", cluster.FreePort(t))
	cfg.BootstrapExpect = 2
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := string(n.transport.LocalAddr()); got != cfg.RaftAddr {
		t.Fatalf("advertised %q, want %q", got, cfg.RaftAddr)
	}
	if formed, err := n.Notify(JoinRequest{ID: "n1", RaftAddr: cfg.RaftAddr, HTTPAddr: "n1:80", Voter: true}); err != nil || formed {
		t.Fatalf("its own notification: formed %v, %v; want not formed yet, no error", formed, err)
	}
}

// A member's HTTP address given as a URL is stored as host:port (every user builds URLs from it), and a voter
// that has not joined yet says it is one, not a read replica.
func TestNode_JoinStoresHostPortAndStatusKnowsAJoiningVoter(t *testing.T) {
	n1 := openNode(t, "n1", true)
	waitFor(t, "leadership", n1.IsLeader)
	n2 := openNode(t, "n2", false)
	if st := n2.Status(); !st.Voter || st.Role == "read-replica" {
		t.Fatalf("a voter not joined yet: voter %v, role %q", st.Voter, st.Role)
	}
	if err := n1.Join(context.Background(), JoinRequest{ID: "n2", RaftAddr: string(n2.transport.LocalAddr()), HTTPAddr: "http://n2:80/", Voter: true, Fresh: true}); err != nil {
		t.Fatal(err)
	}
	n2.Joined()
	if got := n1.FSM().Members()["n2"].HTTPAddr; got != "n2:80" {
		t.Fatalf("stored http_addr %q, want n2:80", got)
	}
}

// A node restarted on its state starts Raft only a heartbeat timeout after it starts: before it went down it
// would not vote for another leader until then, and its leader's lease for weak reads counts on that.
func TestNode_RestartWaitsAHeartbeatTimeoutBeforeVoting(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "n1", dir, true)
	cfg.HeartbeatTimeout = 400 * time.Millisecond
	cfg.ElectionTimeout = 400 * time.Millisecond
	cfg.LeaderLeaseTimeout = 400 * time.Millisecond
	n := openLeading(t, cfg)
	n.Close()
	start := time.Now()
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if took := time.Since(start); took < cfg.HeartbeatTimeout {
		t.Fatalf("reopened and running in %s, less than the heartbeat timeout %s", took, cfg.HeartbeatTimeout)
	}
}

// A data dir belongs to the node id it was first opened with: opened under another id (a typo, or no --id,
// which defaults to the Raft address) the node found itself out of the configuration and called itself
// removed, advising to wipe its data. It is refused at start instead, and the right id opens it.
func TestNode_DataDirOfAnotherIDRefused(t *testing.T) {
	dir := t.TempDir()
	n, err := Open(testConfig(t, "n1", dir, true))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "leadership", n.IsLeader)
	exec1(t, n, "CREATE TABLE t(x)")
	n.Close()
	if _, err := Open(testConfig(t, "n2", dir, false)); err == nil || !strings.Contains(err.Error(), `belongs to node "n1"`) {
		t.Fatalf("opening n1's data dir as n2: %v, want a refusal naming n1", err)
	}
	n, err = Open(testConfig(t, "n1", dir, false))
	if err != nil {
		t.Fatalf("reopening as n1: %v", err)
	}
	n.Close()
	// A data dir without Raft state (a node that never joined) may be started again under another id.
	fresh := t.TempDir()
	n, err = Open(testConfig(t, "127.0.0.1:4002", fresh, false))
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	n, err = Open(testConfig(t, "n2", fresh, false))
	if err != nil {
		t.Fatalf("a data dir that never joined, opened under a new id: %v", err)
	}
	n.Close()
}
