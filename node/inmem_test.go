package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/fsm"
	"github.com/rowboatdb/rowboat/internal/sqlite3"
	"github.com/rowboatdb/rowboat/logical"
)

// The in-process tier (TESTING.md): three nodes in one process over raft's in-memory transport with 50 ms
// timeouts, partitions made by disconnecting transports. Faster and more deterministic than real processes;
// the acceptance of every feature still happens against rowboatd processes in test/system.

// inmemCluster is a set of in-process nodes joined by in-memory transports.
type inmemCluster struct {
	tb    testing.TB
	nodes map[string]*Node
	trans map[string]*raft.InmemTransport
	dirs  map[string]string
	cut   map[string]bool // nodes disconnected from all others
	// mu guards nodes and cut against the Progress the nodes call (see progress).
	mu   sync.Mutex
	opts inmemOptions
	// voteBeforeJoin is the VoteBeforeJoin of the nodes open starts.
	voteBeforeJoin bool
}

type inmemOptions struct {
	// trailingLogs, if set, is every node's TrailingLogs: small values make a snapshot compact the log.
	trailingLogs uint64
	// timeout is the heartbeat, election and lease timeout (default 250 ms: with 50 ms, a test process sharing
	// the machine's cores with others saw an election every few seconds, and tests that called the leader
	// they had found failed with "leadership lost").
	timeout time.Duration
	// commitTimeout is how often the leader sends followers an append even with nothing new (default 5 ms).
	commitTimeout time.Duration
	// bootstrapExpect is every node's BootstrapExpect.
	bootstrapExpect int
}

// newInmemCluster starts n1 (bootstrapping) and joins n2..nN as voters.
func newInmemCluster(tb testing.TB, size int, opts inmemOptions) *inmemCluster {
	tb.Helper()
	if opts.timeout == 0 {
		opts.timeout = 250 * time.Millisecond
	}
	if opts.commitTimeout == 0 {
		opts.commitTimeout = 5 * time.Millisecond
	}
	c := &inmemCluster{tb: tb, nodes: map[string]*Node{}, trans: map[string]*raft.InmemTransport{},
		dirs: map[string]string{}, cut: map[string]bool{}, opts: opts}
	tb.Cleanup(func() {
		for _, n := range c.nodes {
			n.Close()
		}
	})
	n1 := c.open("n1", true)
	waitFor(tb, "n1 leading", n1.IsLeader)
	for i := 2; i <= size; i++ {
		id := fmt.Sprintf("n%d", i)
		// A brand-new node never held another's acknowledgements, so it may vote before its join returns: with
		// the vote guard, a leader that lost its lease right after adding the second voter (before that voter
		// got the configuration) waited for the new voter's vote for good.
		c.voteBeforeJoin = true
		n := c.open(id, false)
		c.voteBeforeJoin = false
		c.retry("join "+id, func(l *Node) error {
			if l.ID() == id {
				return nil // it got the configuration and was elected: it is a member
			}
			return l.Join(context.Background(), JoinRequest{ID: id, RaftAddr: id, HTTPAddr: id + ":http", Voter: true, Fresh: n.Fresh()})
		})
		n.Joined()
	}
	return c
}

// open starts (or restarts, on its old data dir) node id with a fresh transport connected to every node not cut off.
func (c *inmemCluster) open(id string, bootstrap bool) *Node {
	c.tb.Helper()
	if c.dirs[id] == "" {
		c.dirs[id] = c.tb.TempDir()
	}
	_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
	c.trans[id] = tr
	c.connect(id)
	n, err := Open(Config{
		ID: id, HTTPAdvertise: id + ":http", DataDir: c.dirs[id], Bootstrap: bootstrap, Transport: tr,
		BootstrapExpect: c.opts.bootstrapExpect, VoteBeforeJoin: c.voteBeforeJoin,
		HeartbeatTimeout: c.opts.timeout, ElectionTimeout: c.opts.timeout,
		LeaderLeaseTimeout: c.opts.timeout, CommitTimeout: c.opts.commitTimeout, ApplyTimeout: 5 * time.Second,
		TrailingLogs: c.opts.trailingLogs, SnapshotThreshold: 1 << 30, SnapshotInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogOutput: io.Discard, LogLevel: "error",
		Halt: func(err error) { c.tb.Errorf("%s diverged: %v", id, err) },
	})
	if err != nil {
		c.tb.Fatalf("open %s: %v", id, err)
	}
	n.SetProgress(c.progress)
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

// forget drops node id (closed by the caller) from the cluster's nodes.
func (c *inmemCluster) forget(id string) {
	c.mu.Lock()
	delete(c.nodes, id)
	c.mu.Unlock()
}

// progress is the nodes' Progress, as the HTTP layer's GET /term would answer it: the applied index of a
// node that is open and not cut off.
func (c *inmemCluster) progress(ctx context.Context, p Peer) (uint64, error) {
	c.mu.Lock()
	n, cut := c.nodes[p.ID], c.cut[p.ID]
	c.mu.Unlock()
	if n == nil || cut {
		return 0, fmt.Errorf("%s does not answer", p.ID)
	}
	return n.AppliedIndex(), nil
}

// connect links id's transport with every other node's, both ways, unless one of the two is cut off.
func (c *inmemCluster) connect(id string) {
	for other, tr := range c.trans {
		if other == id || c.cut[id] || c.cut[other] {
			continue
		}
		c.trans[id].Connect(raft.ServerAddress(other), tr)
		tr.Connect(raft.ServerAddress(id), c.trans[id])
	}
}

// partition disconnects id from every other node, both ways.
func (c *inmemCluster) partition(id string) {
	c.mu.Lock()
	c.cut[id] = true
	c.mu.Unlock()
	c.trans[id].DisconnectAll()
	for other, tr := range c.trans {
		if other != id {
			tr.Disconnect(raft.ServerAddress(id))
		}
	}
}

func (c *inmemCluster) heal(id string) {
	c.mu.Lock()
	c.cut[id] = false
	c.mu.Unlock()
	c.connect(id)
}

// leader waits for a node among ids (all nodes if none) that leads and is ready for writes.
// others returns the ids of every node but id, sorted.
func (c *inmemCluster) others(id string) []string {
	var ids []string
	for other := range c.nodes {
		if other != id {
			ids = append(ids, other)
		}
	}
	slices.Sort(ids)
	return ids
}

func (c *inmemCluster) leader(ids ...string) *Node {
	c.tb.Helper()
	if len(ids) == 0 {
		for id := range c.nodes {
			ids = append(ids, id)
		}
	}
	var l *Node
	waitFor(c.tb, fmt.Sprintf("a leader among %v", ids), func() bool {
		for _, id := range ids {
			if n := c.nodes[id]; n != nil && n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// retry runs fn on the current leader until it succeeds: with 50 ms timeouts on a busy machine, an election
// may happen at any time, and a write it interrupts is refused with a node sentinel.
func (c *inmemCluster) retry(what string, fn func(leader *Node) error) *Node {
	c.tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := c.leader()
		err := fn(l)
		if err == nil {
			return l
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrLeadershipLost) && !errors.Is(err, ErrTimeout) {
			c.tb.Fatalf("%s on %s: %v", what, l.ID(), err)
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("%s: still failing: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// write executes one statement on the leader, retrying across elections, and returns its result.
func (c *inmemCluster) write(sql string, args ...any) WriteResult {
	c.tb.Helper()
	var res WriteResult
	c.retry(sql, func(l *Node) error {
		var err error
		res, err = l.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{SQL: sql, Args: args}}})
		if err == nil && res.Results[0].Error != "" {
			c.tb.Fatalf("%s: %s", sql, res.Results[0].Error)
		}
		return err
	})
	return res
}

// rows reads every row of t on n's own database.
func rows(tb testing.TB, n *Node) [][]logical.Value {
	tb.Helper()
	res, _, err := n.Query(context.Background(), []logical.Statement{{SQL: "SELECT id, v FROM t ORDER BY id"}})
	if err != nil {
		tb.Fatalf("read t on %s: %v", n.ID(), err)
	}
	if res[0].Error != "" {
		tb.Fatalf("read t on %s: %s", n.ID(), res[0].Error)
	}
	return res[0].Rows
}

// converged waits until every node has applied index and then checks that all of them hold the same rows.
func (c *inmemCluster) converged(index uint64) {
	c.tb.Helper()
	var want [][]logical.Value
	var from string
	for id, n := range c.nodes {
		waitFor(c.tb, id+" applying index "+fmt.Sprint(index), func() bool { return n.AppliedIndex() >= index })
		got := rows(c.tb, n)
		if from == "" {
			want, from = got, id
		} else if !reflect.DeepEqual(got, want) {
			c.tb.Fatalf("%s holds %d rows, %s holds %d: %v vs %v", id, len(got), from, len(want), got, want)
		}
	}
}

// A leader cut off from the others stops acknowledging anything; the others elect a leader that has every
// acknowledged write; after healing, the old leader follows and converges.
func TestInmem_PartitionedLeader(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	acked := c.write("INSERT INTO t(v) VALUES('before')")
	old := c.leader()
	c.partition(old.ID())

	// The old leader acknowledges nothing once cut off: a write fails with one of node's own sentinels, and it
	// cannot confirm its leadership for a linearizable read.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err := old.Execute(ctx, logical.Request{Statements: []logical.Statement{{SQL: "INSERT INTO t(v) VALUES('lost')"}}})
	cancel()
	if err == nil {
		t.Fatal("a leader cut off from its followers acknowledged a write")
	}
	if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrLeadershipLost) && !errors.Is(err, ErrTimeout) {
		t.Fatalf("write on the cut-off leader: %v, want a node sentinel", err)
	}
	if _, err := old.ReadIndex(context.Background()); err == nil {
		t.Fatal("a cut-off leader confirmed its leadership")
	}

	nl := c.leader(c.others(old.ID())...)
	if nl.AppliedIndex() < acked.Index {
		t.Fatalf("new leader %s has applied %d, below the acknowledged write at %d", nl.ID(), nl.AppliedIndex(), acked.Index)
	}
	after := c.write("INSERT INTO t(v) VALUES('after')")
	if after.Term <= acked.Term {
		t.Fatalf("a write after the election has term %d, not above %d", after.Term, acked.Term)
	}

	c.heal(old.ID())
	c.converged(after.Index)
	if got := rows(t, old); len(got) != 2 || got[0][1] != "before" || got[1][1] != "after" {
		t.Fatalf("rows after healing: %v; want before and after, and no trace of the unacknowledged write", got)
	}
}

// TestInmem_WriteSpanningLeadershipChanges: a leader starts executing a write, which waits for the database's
// write lock (the test holds it). Meanwhile leadership moves to another node, which commits a write of its
// own, and comes back. Then the lock is released and the write runs; if it applied, either it would have read
// the value from before the other write (which it would silently undo) or it would apply in a later term than
// it was admitted in. By default losing leadership interrupts it; with the interruption off, the term checks
// must stop it. Either way it fails with ErrNotLeader (nothing applied), and every node keeps the other write.
func TestInmem_WriteSpanningLeadershipChanges(t *testing.T) {
	for _, interrupt := range []bool{true, false} {
		t.Run(fmt.Sprintf("interrupt=%v", interrupt), func(t *testing.T) {
			c := newInmemCluster(t, 3, inmemOptions{})
			c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)")
			w := c.write("INSERT INTO t VALUES(1, 0)")
			c.converged(w.Index)
			l := c.leader()
			l.noDeposeInterrupt.Store(!interrupt)
			other := c.nodes[c.others(l.ID())[0]]

			lock, err := sqlite3.OpenVFS(filepath.Join(c.dirs[l.ID()], "db", fsm.DBFile), sqlite3.OpenReadWrite, sqlite3.ProcessExclusive)
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Close()
			if err := lock.Exec("BEGIN IMMEDIATE"); err != nil {
				t.Fatal(err)
			}
			locked := true
			unlock := func() {
				if locked {
					locked = false
					lock.Exec("ROLLBACK")
				}
			}
			defer unlock()

			done := make(chan error, 1)
			go func() {
				_, err := l.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{SQL: "UPDATE t SET v = v + 1 WHERE id = 1"}}})
				done <- err
			}()
			waitFor(t, "the writer to start executing the write", func() bool {
				if l.busy.TryLock() {
					l.busy.Unlock()
					return false
				}
				return true
			})

			transfer(t, l, other)
			waitFor(t, other.ID()+" leading", other.IsLeader)
			exec1(t, other, "UPDATE t SET v = v + 100 WHERE id = 1")
			transfer(t, other, l)
			waitFor(t, l.ID()+" elected again", func() bool { return l.raft.State() == raft.Leader })
			select {
			case err := <-done:
				t.Fatalf("the write ended (%v) before the write lock was released", err)
			default:
			}
			unlock()

			if err := <-done; !errors.Is(err, ErrNotLeader) {
				t.Fatalf("a write spanning two leadership changes: %v, want ErrNotLeader (nothing applied)", err)
			}
			w = c.write("UPDATE t SET v = v + 1000 WHERE id = 1")
			c.converged(w.Index)
			if got := rows(t, l); len(got) != 1 || got[0][1] != int64(1100) {
				t.Fatalf("rows: %v, want v = 1100 (the spanning write lost, the others kept)", got)
			}
		})
	}
}

// A follower that missed entries the leader has since compacted away gets a snapshot, installs it, and
// converges; restarted from its data dir, a node resumes from its stored state instead of replaying the log
// from zero.
func TestInmem_SnapshotInstallAndRestart(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{trailingLogs: 2}) // keep 2 trailing entries: a snapshot compacts almost all of the log
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	l := c.leader()
	lagger := c.others(l.ID())[0]
	c.partition(lagger)
	var last WriteResult
	for i := range 30 {
		last = c.write("INSERT INTO t(v) VALUES(?)", fmt.Sprintf("row %d", i))
	}
	for id, n := range c.nodes {
		if id == lagger {
			continue
		}
		waitFor(t, id+" applying", func() bool { return n.AppliedIndex() >= last.Index })
		if err := n.Snapshot(); err != nil {
			t.Fatalf("snapshot on %s: %v", id, err)
		}
	}
	restored := make(chan Event, 16)
	sub := c.nodes[lagger].Events()
	go func() {
		for ev := range sub {
			if ev.Type == EventSnapshotRestored {
				restored <- ev
			}
		}
	}()
	c.heal(lagger)
	c.converged(last.Index)
	select {
	case ev := <-restored:
		if ev.Term == 0 || ev.Index == 0 {
			t.Fatalf("snapshot_installed event without its position: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s caught up without installing a snapshot: the log was not compacted past it", lagger)
	}
	if got := rows(t, c.nodes[lagger]); len(got) != 30 {
		t.Fatalf("%s holds %d rows after the snapshot, want 30", lagger, len(got))
	}

	// Restart the lagger from its data dir: it comes back with everything it had applied.
	n := c.nodes[lagger]
	before := n.AppliedIndex()
	if err := n.Close(); err != nil {
		t.Fatalf("close %s: %v", lagger, err)
	}
	delete(c.trans, lagger)
	reopened := c.open(lagger, false)
	if got := reopened.AppliedIndex(); got < before {
		t.Fatalf("%s reopened at applied index %d, below the %d it had: it does not resume from its stored state", lagger, got, before)
	}
	final := c.write("INSERT INTO t(v) VALUES('after restart')")
	c.converged(final.Index)
	// Once caught up, the reopened node says it is ready, once.
	deadline := time.After(10 * time.Second)
	for ready := false; !ready; {
		select {
		case ev := <-reopened.Events():
			ready = ev.Type == EventReady && ev.Term > 0 && ev.Node == lagger
		case <-deadline:
			t.Fatalf("%s published no ready event", lagger)
		}
	}
}

// A read-index request from a voter at the leader's term is answered without a heartbeat round: a leader cut
// off from everyone answers it at once, where a request that needs the round (a stranger's) waits until the
// leader gives up. Timeouts are 1 s here, so the leader still leads when asked, and messages are rare: raft's
// VerifyLeader counts any acknowledgement that arrives after the call, even of a message sent before it, so
// with traffic in flight at the cut the stranger's round could still succeed. In a real cluster the request
// itself proves the sender was at the leader's term when it sent it; here the test plays the sender. Which
// requests qualify is TestQuorumWith's table.
func TestInmem_VoterReadIndexNeedsNoRound(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{timeout: time.Second, commitTimeout: time.Second})
	w := c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	for _, n := range c.nodes {
		waitFor(t, n.ID()+" applying", func() bool { return n.AppliedIndex() >= w.Index })
	}
	l := c.leader()
	voter := c.others(l.ID())[0]
	term := l.Term()
	c.partition(l.ID())
	defer c.heal(l.ID())
	idx, err := l.ReadIndexFor(context.Background(), voter, term)
	if err != nil || idx < w.Index {
		t.Fatalf("ReadIndexFor(%s, term %d) on a cut-off leader = %d, %v; want an answer >= %d without a round trip", voter, term, idx, err, w.Index)
	}
	// A heartbeat in flight when the link was cut could still be answered, and count for the round below:
	// wait until the leader has seen its heartbeats to both fail.
	for _, p := range c.others(l.ID()) {
		waitFor(t, "heartbeats to "+p+" failing", func() bool { return l.failing(p) })
	}
	if _, err := l.ReadIndexFor(context.Background(), "stranger", term); err == nil {
		t.Fatal("a cut-off leader confirmed its leadership for a stranger's request")
	}
}

// With a Confirmer (what the HTTP layer installs), ReadIndex confirms leadership by asking the other voters
// for their terms instead of with VerifyLeader; too few confirmations fall back to a no-op through the log,
// which needs a quorum at this term just the same.
func TestInmem_ReadIndexWithConfirmer(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	w := c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	l := c.leader()
	var calls atomic.Int64
	var mu sync.Mutex
	var asked []Peer
	var gotNeed int
	confirmNone := false
	l.SetConfirmer(func(ctx context.Context, term uint64, peers []Peer, need int) []Confirmation {
		calls.Add(1)
		mu.Lock()
		asked, gotNeed = peers, need
		none := confirmNone
		mu.Unlock()
		var got []Confirmation
		for _, p := range peers {
			if n := c.nodes[p.ID]; n != nil && !none && !c.cut[p.ID] && n.Term() == term {
				got = append(got, Confirmation{ID: p.ID, LeaderContact: time.Since(n.LastContact())})
			}
		}
		return got
	})

	idx, err := l.ReadIndex(context.Background())
	if err != nil || idx < w.Index {
		t.Fatalf("ReadIndex with a confirmer = %d, %v; want >= %d", idx, err, w.Index)
	}
	mu.Lock()
	if calls.Load() != 1 || len(asked) != 2 || gotNeed != 1 {
		t.Fatalf("confirmer called %d times with %v, need %d; want once, with the two other voters, need 1", calls.Load(), asked, gotNeed)
	}
	for _, p := range asked {
		if p.ID == l.ID() || p.HTTPAddr != p.ID+":http" {
			t.Fatalf("asked %+v: want the other voters with their HTTP addresses", p)
		}
	}
	confirmNone = true
	mu.Unlock()
	if st := l.Status().Reads; st.ConfirmRounds != 1 || st.ConfirmedReads != 1 || st.LogFallbacks != 0 {
		t.Fatalf("status reads %+v after one confirmed read, want 1 round, 1 read, no fallback", st)
	}

	// Nobody confirms: the read is ordered through the log instead, which still succeeds here.
	before := l.AppliedIndex()
	if _, err := l.ReadIndex(context.Background()); err != nil {
		t.Fatalf("ReadIndex with no confirmation on a healthy cluster: %v", err)
	}
	if l.AppliedIndex() <= before {
		t.Fatal("no confirmation, yet no no-op went through the log")
	}
	if st := l.Status().Reads; st.LogFallbacks != 1 {
		t.Fatalf("status reads %+v, want the fallback through the log counted", st)
	}

	// Cut off, with nobody confirming and no quorum for a no-op: the read fails with a node sentinel.
	c.partition(l.ID())
	defer c.heal(l.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = l.ReadIndex(ctx)
	if err == nil {
		t.Fatal("a cut-off leader confirmed a read index")
	}
	if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrLeadershipLost) && !errors.Is(err, ErrTimeout) {
		t.Fatalf("ReadIndex on a cut-off leader: %v, want a node sentinel", err)
	}
}

// The lease behind level weak is renewed from what the voters say about their last contact with the leader,
// not with VerifyLeader: a voter that last heard from the leader long ago (the leader was paused) or that
// names another leader gives no lease, one that heard from it just now does.
func TestInmem_LeaseFromLeaderContact(t *testing.T) {
	// Timeouts long enough that leadership holds and a fresh lease (0.6 of the timeout) outlasts the checks on
	// a loaded machine.
	c := newInmemCluster(t, 3, inmemOptions{timeout: 500 * time.Millisecond})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	l := c.leader()
	var mu sync.Mutex
	contact := time.Duration(-1) // what every peer answers
	l.SetConfirmer(func(ctx context.Context, term uint64, peers []Peer, need int) []Confirmation {
		mu.Lock()
		defer mu.Unlock()
		var got []Confirmation
		for _, p := range peers {
			got = append(got, Confirmation{ID: p.ID, LeaderContact: contact})
		}
		return got
	})
	set := func(d time.Duration) {
		mu.Lock()
		contact = d
		mu.Unlock()
	}
	// Forget any lease from before the confirmer was set. keepLease renews the lease only while weak reads use
	// it (HasLease below); modes go from no lease to a lease, so that a renewal it started earlier cannot
	// spoil a check.
	l.leaseStart.Store(noLease)
	if err := l.renewLease(context.Background()); !errors.Is(err, errNoLease) {
		t.Fatalf("no peer names this leader: renewLease = %v, want errNoLease", err)
	}
	if l.HasLease() {
		t.Fatal("a lease without any voter naming this node its leader")
	}
	set(l.cfg.HeartbeatTimeout)
	if err := l.renewLease(context.Background()); err != nil {
		t.Fatalf("renewLease with old contacts: %v", err)
	}
	if l.HasLease() {
		t.Fatal("a lease from contacts a heartbeat timeout old (the leader was paused)")
	}
	set(0)
	if err := l.renewLease(context.Background()); err != nil {
		t.Fatalf("renewLease with fresh contacts: %v", err)
	}
	if !l.HasLease() {
		t.Fatal("no lease although both voters heard from the leader just now")
	}
	if ms := l.Status().Reads.LeaseMS; ms <= 0 || ms > float64(l.cfg.HeartbeatTimeout/time.Millisecond) {
		t.Fatalf("status lease_ms = %v with a fresh lease, want between 0 and the heartbeat timeout", ms)
	}
}

// TestInmem_LeaderRemovalHandsOverFirst: a leader asked to remove itself hands leadership to another voter
// first (ErrHandedOver), so that the cluster has a leader throughout, and the new leader removes it.
func TestInmem_LeaderRemovalHandsOverFirst(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	old := c.leader()
	if err := old.Remove(context.Background(), old.ID(), false); !errors.Is(err, ErrHandedOver) {
		t.Fatalf("the leader removing itself: %v, want ErrHandedOver", err)
	}
	if old.IsLeader() {
		t.Fatal("the leader still leads after handing over")
	}
	nl := c.leader(c.others(old.ID())...)
	if err := nl.Remove(context.Background(), old.ID(), false); err != nil {
		t.Fatalf("the new leader removing the old: %v", err)
	}
	waitFor(t, old.ID()+" out of the configuration", func() bool {
		ms, err := nl.Members()
		return err == nil && !slices.ContainsFunc(ms, func(m Member) bool { return m.ID == old.ID() })
	})
	c.write("INSERT INTO t(v) VALUES('after')")
}

// TestInmem_LeaderRemovesItself: removing the leader through the leader with force (no hand-over) succeeds
// (it steps down once the removal commits), and the next leader forgets its metadata, so no member list
// shows a node that is gone.
func TestInmem_LeaderRemovesItself(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	old := c.leader()
	if err := old.Remove(context.Background(), old.ID(), true); err != nil {
		t.Fatalf("the leader removing itself: %v", err)
	}
	nl := c.leader(c.others(old.ID())...)
	waitFor(t, "the new leader to forget "+old.ID()+"'s metadata", func() bool {
		_, known := nl.FSM().Members()[old.ID()]
		return !known
	})
	ms, err := nl.Members()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("members after the leader removed itself: %+v", ms)
	}
	for _, m := range ms {
		if m.ID == old.ID() || m.HTTPAddr == "" {
			t.Fatalf("members after the leader removed itself: %+v", ms)
		}
	}
	w := c.write("INSERT INTO t(v) VALUES('after')")
	if w.Index == 0 {
		t.Fatal("no write after the removal")
	}
}

// TestInmem_MemberEventsAreNews: a new leader starting to replicate to the members it already has reports no
// member_added for them; a node that joins afterwards is reported.
func TestInmem_MemberEventsAreNews(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	old := c.leader()
	next := c.nodes[c.others(old.ID())[0]]
	events := next.Events()
	transfer(t, old, next)
	waitFor(t, next.ID()+" leading", next.IsLeader)
	n4 := c.open("n4", false)
	if err := next.Join(context.Background(), JoinRequest{ID: "n4", RaftAddr: "n4", HTTPAddr: "n4:http", Voter: true, Fresh: true}); err != nil {
		t.Fatal(err)
	}
	n4.Joined()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Type != EventMemberAdded {
				continue
			}
			if ev.Peer != "n4" {
				t.Fatalf("%s reported %s as added when it became leader; it was a member already", next.ID(), ev.Peer)
			}
			return
		case <-deadline:
			t.Fatal("no member_added event for n4")
		}
	}
}

// TestInmem_TransferDropsTheLease: once a leadership transfer starts, the old leader serves no weak read from
// its lease, even when the caller stops waiting for the transfer before raft ends it.
func TestInmem_TransferDropsTheLease(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	l := c.leader()
	waitFor(t, "a lease", l.HasLease)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller gives up at once; raft's transfer goes on
	if err := l.TransferLeadership(ctx, ""); err == nil {
		t.Log("the transfer finished before the canceled caller returned")
	}
	if l.HasLease() || l.IsLeader() {
		t.Fatalf("right after a transfer began: lease %v, leader %v; want neither while it may hand over", l.HasLease(), l.IsLeader())
	}
}

// TestInmem_StrongReadOnCutOffLeaderIsNotLeader: a strong read whose no-op a cut-off leader cannot commit
// fails as "not the leader", not as a write of unknown outcome.
func TestInmem_StrongReadOnCutOffLeaderIsNotLeader(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(x)")
	l := c.leader()
	c.partition(l.ID())
	_, err := l.StrongIndex(context.Background())
	// ErrNoLeader if it stepped down before the read began (a test descheduled for a lease timeout).
	if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) || errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("strong read on a cut-off leader: %v, want ErrNotLeader", err)
	}
}

// TestInmem_VoterCatchesUpBeforeItCounts: a voter joins as a non-voter and becomes a voter once it has caught
// up. Added as a voter at once, a new node that did not answer (cut off here; busy installing a snapshot, or
// paused, in life) made the only other voter lose its quorum and its lease, and the cluster stopped taking
// writes until it answered.
func TestInmem_VoterCatchesUpBeforeItCounts(t *testing.T) {
	c := newInmemCluster(t, 1, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
	for i := range 20 {
		c.write("INSERT INTO t(v) VALUES(?)", fmt.Sprint(i))
	}
	l := c.leader()
	c.mu.Lock()
	c.cut["n2"] = true // n2 runs but nothing reaches it
	c.mu.Unlock()
	n2 := c.open("n2", false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := l.Join(ctx, JoinRequest{ID: "n2", RaftAddr: "n2", HTTPAddr: "n2:http", Voter: true, Fresh: n2.Fresh()})
	cancel()
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("join of a node that does not answer: got %v, want ErrTimeout", err)
	}
	members, err := l.Members()
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(members, func(m Member) bool { return m.ID == "n2" }); i < 0 || members[i].Voter {
		t.Fatalf("n2 after a join that timed out: %+v, want a non-voter member", members)
	}

	// The leader kept its quorum: it still takes writes, and was not deposed.
	if _, err := l.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{SQL: "INSERT INTO t(v) VALUES('after')"}}}); err != nil {
		t.Fatalf("write after a join that timed out: %v", err)
	}
	if c.leader() != l {
		t.Fatal("leadership moved")
	}

	// Once n2 answers, its next join makes it a voter, with every row. Until then it holds a configuration
	// that lists it as a non-voter, and is a voter on its way, not a read replica (level auto must not read its
	// partial copy); it is not ready.
	c.heal("n2")
	waitFor(t, "n2 in its own configuration", func() bool {
		ms, err := n2.Members()
		return err == nil && slices.ContainsFunc(ms, func(m Member) bool { return m.ID == "n2" && !m.Voter })
	})
	if ready, _ := n2.Ready(); !n2.IsVoter() || n2.Status().Role == "read-replica" || ready {
		t.Fatalf("n2 while it catches up: voter %v, role %s, ready %v; want a voter, not ready", n2.IsVoter(), n2.Status().Role, ready)
	}
	c.retry("join n2", func(l *Node) error {
		return l.Join(context.Background(), JoinRequest{ID: "n2", RaftAddr: "n2", HTTPAddr: "n2:http", Voter: true, Fresh: n2.Fresh()})
	})
	n2.Joined()
	// The leader commits the configuration that makes n2 a voter on its own (raft counts the configuration
	// it replaces), so n2 may learn of it a moment later.
	waitFor(t, "n2 a voter", n2.IsVoter)
	c.converged(c.write("INSERT INTO t(v) VALUES('last')").Index)
}

// TestInmem_WipedVoterRejoins: a voter whose data directory was wiped starts again under its id and rejoins.
// What it acknowledged before must stop counting. Without that, with the third voter lagging, the lagging one
// could be elected with the wiped one's vote (an empty log votes for anyone) and an acknowledged write was lost.
func TestInmem_WipedVoterRejoins(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	lag := c.others(c.leader().ID())[0]
	c.partition(lag)
	c.write("INSERT INTO t(v) VALUES('acknowledged')") // by the leader and the voter about to lose its data
	l := c.leader(c.others(lag)...)
	var wiped string
	for _, id := range c.others(lag) {
		if id != l.ID() {
			wiped = id
		}
	}
	c.nodes[wiped].Close()
	c.dirs[wiped] = ""
	fresh := c.open(wiped, false)
	if !fresh.Fresh() {
		t.Fatal("a node started without data does not say it is fresh")
	}
	join := func(l *Node, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return l.Join(ctx, JoinRequest{ID: wiped, RaftAddr: wiped, HTTPAddr: wiped + ":http", Voter: true, Fresh: true})
	}
	// Its old membership must go first, and that needs the lagging voter: the join cannot complete yet (the
	// leader may even step down, as the configuration without the wiped voter has no quorum in reach).
	if err := join(l, 500*time.Millisecond); err == nil {
		t.Fatal("a voter that lost its data rejoined while the only other voter that could confirm its removal was cut off")
	}
	// The leader dies and the lagging voter comes back. It misses the acknowledged write: it must not lead.
	l.Close()
	c.forget(l.ID())
	c.heal(lag)
	deadline := time.Now().Add(8 * time.Second) // many election timeouts (250 ms each)
	for time.Now().Before(deadline) {
		if c.nodes[lag].raft.State() == raft.Leader {
			t.Fatalf("%s, which misses an acknowledged write, was elected with the vote of %s, which lost its data", lag, wiped)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The old leader returns and leads; the wiped voter's join completes, and everyone holds the write.
	c.open(l.ID(), false)
	c.retry("rejoin "+wiped, func(l *Node) error { return join(l, 5*time.Second) })
	fresh.Joined()
	if fresh.Fresh() {
		t.Fatal("a node that joined still says it is fresh")
	}
	res := c.write("INSERT INTO t(v) VALUES('after')")
	c.converged(res.Index)
	if got := rows(t, c.leader()); len(got) != 2 || got[0][1] != "acknowledged" {
		t.Fatalf("rows after the rejoin: %v, want the acknowledged write and the one after", got)
	}
}

// TestInmem_RemoveKeepsAQuorum: with one voter of three down, removing a healthy one would leave two voters of
// which one answers, and no leader until the other came back: it is refused, and allowed once all answer.
func TestInmem_RemoveKeepsAQuorum(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	l := c.leader()
	healthy, down := c.others(l.ID())[0], c.others(l.ID())[1]
	c.partition(down)
	waitFor(t, "the leader to notice "+down+" is down", func() bool { return l.failing(down) })
	if err := l.Remove(context.Background(), healthy, false); !errors.Is(err, ErrWouldLoseQuorum) {
		t.Fatalf("removing %s with %s down: %v, want ErrWouldLoseQuorum", healthy, down, err)
	}
	if servers := l.raft.GetConfiguration().Configuration().Servers; len(servers) != 3 {
		t.Fatalf("a refused removal changed the configuration: %+v", servers)
	}
	// A read replica does not count: removing one is fine with a voter down.
	c.open("r1", false)
	if err := l.Join(context.Background(), JoinRequest{ID: "r1", RaftAddr: "r1", HTTPAddr: "r1:http", Fresh: true}); err != nil {
		t.Fatal(err)
	}
	c.nodes["r1"].Joined()
	if err := l.Remove(context.Background(), "r1", false); err != nil {
		t.Fatalf("removing a read replica with a voter down: %v", err)
	}
	c.heal(down)
	waitFor(t, "the leader to reach "+down+" again", func() bool { return !l.failing(down) })
	if err := l.Remove(context.Background(), healthy, false); err != nil {
		t.Fatalf("removing %s with every voter up: %v", healthy, err)
	}
	c.write("INSERT INTO t(v) VALUES('still writable')")
}

// TestInmem_JoiningSurvivesARestart: a node that started without data and stopped before its join finished
// may hold part of the log by then; restarted, it is still a node without its data (it refuses votes and
// rejoins fresh) until a join succeeds.
func TestInmem_JoiningSurvivesARestart(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	n4 := c.open("n4", false)
	c.retry("join n4", func(l *Node) error {
		return l.Join(context.Background(), JoinRequest{ID: "n4", RaftAddr: "n4", HTTPAddr: "n4:http", Voter: true, Fresh: n4.Fresh()})
	})
	waitFor(t, "n4 holding part of the log", func() bool { return n4.AppliedIndex() > 0 })
	n4.Close() // before it learned that its join succeeded
	n4 = c.open("n4", false)
	if !n4.HadState() || !n4.Fresh() {
		t.Fatalf("restarted before its join finished: state %v, fresh %v; want state, and still fresh", n4.HadState(), n4.Fresh())
	}
	n4.Joined()
	n4.Close()
	if n4 = c.open("n4", false); n4.Fresh() {
		t.Fatal("a node that joined is fresh again after a restart")
	}
}

// TestInmem_SuffrageChangesInOneStep: a member joining again with the other suffrage is promoted or demoted by
// one configuration change, never removed and added (which left it out of the cluster if the leader failed
// in between), and a demotion that would leave no quorum of answering voters is refused.
func TestInmem_SuffrageChangesInOneStep(t *testing.T) {
	c := newInmemCluster(t, 3, inmemOptions{})
	c.write("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	l := c.leader()
	r1 := c.open("r1", false)
	join := func(voter bool) error {
		return l.Join(context.Background(), JoinRequest{ID: "r1", RaftAddr: "r1", HTTPAddr: "r1:http", Voter: voter, Fresh: r1.Fresh()})
	}
	if err := join(false); err != nil {
		t.Fatal(err)
	}
	r1.Joined()
	suffrage := func() (raft.ServerSuffrage, uint64) {
		f := l.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		for _, s := range f.Configuration().Servers {
			if s.ID == "r1" {
				return s.Suffrage, l.raft.LastIndex()
			}
		}
		t.Fatal("r1 is not in the configuration")
		return 0, 0
	}
	for _, voter := range []bool{true, false} {
		_, before := suffrage()
		if err := join(voter); err != nil {
			t.Fatalf("join as voter=%v: %v", voter, err)
		}
		got, after := suffrage()
		if n := configurationsBetween(t, l, before, after); (got == raft.Voter) != voter || n != 1 {
			t.Fatalf("join as voter=%v: suffrage %v after %d configuration changes; want one change", voter, got, n)
		}
	}
	// Promoted again, in place of a voter removed: with another voter cut off, demoting it would leave two
	// voters of which one answers.
	if err := join(true); err != nil {
		t.Fatal(err)
	}
	followers := slices.DeleteFunc(c.others(l.ID()), func(id string) bool { return id == "r1" })
	if err := l.Remove(context.Background(), followers[1], false); err != nil {
		t.Fatal(err)
	}
	down := followers[0]
	c.partition(down)
	waitFor(t, "the leader to notice "+down+" is down", func() bool { return l.failing(down) })
	if err := join(false); !errors.Is(err, ErrWouldLoseQuorum) {
		t.Fatalf("demoting r1 with %s down: %v, want ErrWouldLoseQuorum", down, err)
	}
}

// configurationsBetween counts the configuration entries in l's log in (from, to].
func configurationsBetween(t *testing.T, l *Node, from, to uint64) int {
	t.Helper()
	n := 0
	for i := from + 1; i <= to; i++ {
		var e raft.Log
		if err := l.logs.GetLog(i, &e); err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
		if e.Type == raft.LogConfiguration {
			n++
		}
	}
	return n
}

// transfer hands leadership from from to to over the in-memory transport (addresses are ids). A transfer
// fails once an election timeout passes without to taking over, which a loaded machine can exceed (it
// flaked so): it is tried again until a deadline.
func transfer(tb testing.TB, from, to *Node) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := from.raft.LeadershipTransferToServer(raft.ServerID(to.ID()), raft.ServerAddress(to.ID())).Error()
		if err == nil || to.raft.State() == raft.Leader {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("transfer of leadership from %s to %s: %v", from.ID(), to.ID(), err)
		}
		time.Sleep(50 * time.Millisecond) // from may no longer lead at all: do not spin
	}
}

// A node elected before its join returned (it got the configuration that added it, and won) gets its own
// join, forwarded by the node it asked: that is a member's join, not a wiped voter's, and succeeds. It was
// refused as "the leader's own id", which stopped rowboatd.
func TestInmem_JoinOfTheLeaderItself(t *testing.T) {
	c := newInmemCluster(t, 2, inmemOptions{})
	l := c.leader()
	if err := l.Join(context.Background(), JoinRequest{ID: l.ID(), RaftAddr: l.ID(), HTTPAddr: l.ID() + ":http", Voter: true, Fresh: true}); err != nil {
		t.Fatalf("the leader's own fresh join: %v", err)
	}
	if err := l.Join(context.Background(), JoinRequest{ID: l.ID(), RaftAddr: l.ID(), HTTPAddr: l.ID() + ":http", Voter: false}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("the leader's own join as a replica: %v, want ErrBadRequest", err)
	}
}

// A new node joined on the default path (guarded until its join returns) whose join's answer is lost with the
// leader: the old leader, restarted, needs the new node's vote, which the guard refuses, so the new node must
// campaign and win, and its retried join (reaching itself as the leader) succeeds. A guard that also kept it
// from campaigning left both candidates for good.
func TestInmem_JoinSurvivesLosingTheLeaderBeforeItReturns(t *testing.T) {
	c := newInmemCluster(t, 1, inmemOptions{})
	c.write("CREATE TABLE t(x)")
	l := c.leader()
	n2 := c.open("n2", false) // guarded: its join has not returned
	if !n2.Fresh() {
		t.Fatal("a node started without data to join is not guarded")
	}
	join := func(l *Node) error { // on n2 itself too, if it leads
		return l.Join(context.Background(), JoinRequest{ID: "n2", RaftAddr: "n2", HTTPAddr: "n2:http", Voter: true, Fresh: n2.Fresh()})
	}
	if err := join(l); err != nil {
		t.Fatal(err)
	}
	// The answer is lost: n2 never hears it. The leader restarts.
	l.Close()
	c.forget(l.ID())
	c.open(l.ID(), false)
	c.retry("join n2 again", join)
	n2.Joined()
	w := c.write("INSERT INTO t VALUES (1)")
	for _, n := range c.nodes {
		waitFor(t, n.ID()+" applying the write", func() bool { return n.AppliedIndex() >= w.Index })
	}
}
