package node

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestNode_BootstrapExpect: three nodes without state and with BootstrapExpect 3 form one cluster of three
// voters once each has heard of the others, whatever the order; bad notifications are refused and change
// nothing; a node that had state ignores notifications.
func TestNode_BootstrapExpect(t *testing.T) {
	c := newBootstrapCluster(t)
	ids := []string{"n1", "n2", "n3"}
	for _, id := range ids {
		if n := c.open(id, false); n.HadState() {
			t.Fatalf("%s: a new node reports Raft state", id)
		}
	}
	for _, id := range ids {
		c.connect(id)
	}
	n1 := c.nodes["n1"]
	for _, bad := range []JoinRequest{
		{RaftAddr: "n2", Voter: true},
		{ID: "n2", Voter: true},
		{ID: "r1", RaftAddr: "r1", Voter: false},
		{ID: "n1", RaftAddr: "elsewhere", Voter: true},
	} {
		if _, err := n1.Notify(bad); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("Notify(%+v) = %v, want ErrBadRequest", bad, err)
		}
	}
	voter := func(id string) JoinRequest {
		return JoinRequest{ID: id, RaftAddr: id, HTTPAddr: id + ":http", Voter: true}
	}
	for range 2 { // the same voter twice counts once
		if formed, err := n1.Notify(voter("n2")); err != nil || formed {
			t.Fatalf("n1 after hearing of n2: formed %v, err %v; want to wait for a third voter", formed, err)
		}
	}
	if n1.raft.CurrentTerm() != 0 || n1.IsLeader() {
		t.Fatal("n1 started a cluster before it knew of three voters")
	}
	// Each node hears of the other two, in different orders.
	notify := map[string][]string{"n1": {"n3"}, "n2": {"n3", "n1"}, "n3": {"n1", "n2"}}
	for _, id := range ids {
		for i, from := range notify[id] {
			formed, err := c.nodes[id].Notify(voter(from))
			if err != nil {
				t.Fatal(err)
			}
			if last := i == len(notify[id])-1; formed != last {
				t.Fatalf("%s after hearing of %s: formed %v, want %v", id, from, formed, last)
			}
		}
	}
	c.leader()
	waitFor(t, "three voters in every node's configuration", func() bool {
		for _, n := range c.nodes {
			f := n.raft.GetConfiguration()
			if f.Error() != nil || len(f.Configuration().Servers) != 3 {
				return false
			}
			for _, s := range f.Configuration().Servers {
				if s.Suffrage != raft.Voter {
					return false
				}
			}
		}
		return true
	})
	c.write("CREATE TABLE t(x)")

	// Reopened, a node has state: notifications are ignored, and it reports a cluster.
	n3 := c.nodes["n3"]
	n3.Close()
	n3 = c.open("n3", false)
	if !n3.HadState() {
		t.Fatal("a reopened member reports no Raft state")
	}
	if formed, err := n3.Notify(voter("n9")); err != nil || !formed {
		t.Fatalf("Notify on a member: formed %v, err %v; want true, nil", formed, err)
	}
}

// TestNode_ReplicaCannotBootstrap: a non-voter asked to bootstrap a cluster of its own is refused at Open.
func TestNode_ReplicaCannotBootstrap(t *testing.T) {
	_, tr := raft.NewInmemTransport("r1")
	_, err := Open(Config{ID: "r1", DataDir: t.TempDir(), Bootstrap: true, NonVoter: true, Transport: tr,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogOutput: io.Discard, LogLevel: "error"})
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Open of a bootstrapping replica: %v, want ErrBadRequest", err)
	}
}

// TestNode_IsVoterBeforeJoining: a node not yet in any configuration (still joining) counts as the role it was
// started with, so that level auto on a voter catching up is not served from its empty database.
func TestNode_IsVoterBeforeJoining(t *testing.T) {
	for _, nonVoter := range []bool{false, true} {
		_, tr := raft.NewInmemTransport("x")
		n, err := Open(Config{ID: "x", DataDir: t.TempDir(), NonVoter: nonVoter, Transport: tr,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogOutput: io.Discard, LogLevel: "error"})
		if err != nil {
			t.Fatal(err)
		}
		if got := n.IsVoter(); got == nonVoter {
			t.Errorf("IsVoter() of a joining node started with NonVoter=%v: %v", nonVoter, got)
		}
		n.Close()
	}
}

// TestNode_BootstrapExpectAdoptsTheVotersFormed: with --bootstrap-expect 3, n3 notifies n1 and dies before it
// notifies n2. n1 forms the cluster and needs n2's vote, but n2, which has heard of only two voters, refuses
// votes until it has formed or joined a cluster: no leader until n3 returns. Given n1's voters (its answer to
// a notification), n2 forms the same configuration, votes, and the two elect a leader.
func TestNode_BootstrapExpectAdoptsTheVotersFormed(t *testing.T) {
	c := newBootstrapCluster(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		c.open(id, false)
	}
	voter := func(id string) JoinRequest {
		return JoinRequest{ID: id, RaftAddr: id, HTTPAddr: id + ":http", Voter: true}
	}
	n1, n2 := c.nodes["n1"], c.nodes["n2"]
	for _, v := range []string{"n2", "n3"} {
		if _, err := n1.Notify(voter(v)); err != nil {
			t.Fatal(err)
		}
	}
	if got := n1.BootVoters(); len(got) != 3 {
		t.Fatalf("n1 formed a cluster with %v, want three voters", got)
	}
	c.nodes["n3"].Close()
	c.forget("n3")
	c.partition("n3")
	if formed, err := n2.Notify(voter("n1")); err != nil || formed {
		t.Fatalf("n2 after n1's notification: formed %v, %v; want waiting", formed, err)
	}
	if !n2.Fresh() {
		t.Fatal("n2 votes before it has formed or joined a cluster")
	}
	if formed, err := n2.AdoptVoters(n1.BootVoters()); err != nil || !formed {
		t.Fatalf("n2 given n1's voters: formed %v, %v", formed, err)
	}
	if n2.Fresh() {
		t.Fatal("n2 still refuses votes after forming the cluster")
	}
	c.leader("n1", "n2")
	// A list that does not name n2 at its address is not taken.
	if formed, err := c.nodes["n2"].AdoptVoters([]JoinRequest{voter("n1"), voter("x"), voter("y")}); err != nil || !formed {
		t.Fatalf("a node in a cluster: formed %v, %v; want true, nil", formed, err)
	}
}

// newBootstrapCluster is an empty in-process cluster whose nodes start with BootstrapExpect 3.
func newBootstrapCluster(t *testing.T) *inmemCluster {
	c := &inmemCluster{tb: t, nodes: map[string]*Node{}, trans: map[string]*raft.InmemTransport{},
		dirs: map[string]string{}, cut: map[string]bool{},
		opts: inmemOptions{timeout: 50 * time.Millisecond, commitTimeout: 5 * time.Millisecond, bootstrapExpect: 3}}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.Close()
		}
	})
	return c
}
