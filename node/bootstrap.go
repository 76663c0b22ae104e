package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/internal/durable"
)

// HadState reports whether Raft had state when the node opened: the node has been a member of a cluster (or
// bootstrapped one) before, and rejoins it by itself. A node without state that is meant to join must ask a
// member (Join on the leader), even if an earlier attempt to join left files in its data directory.
func (n *Node) HadState() bool { return n.hadState }

// Fresh reports whether this node started without Raft state and has neither joined nor formed a cluster
// since (Joined), in this run or an earlier one: what its join requests say in JoinRequest.Fresh.
func (n *Node) Fresh() bool { return n.guard != nil && n.guard.guarding.Load() }

// joiningFile, in the data dir, marks a node that started without Raft state and has not joined since.
const joiningFile = "joining"

// Joined tells a node that started without Raft state that a cluster has added it (its join succeeded): it
// votes from then on. Until then it refuses every vote (see voteGuard). A node that forms a new cluster
// (Bootstrap, or BootstrapExpect once it bootstraps) votes at once.
func (n *Node) Joined() {
	if n.guard != nil {
		n.guard.lift()
	}
	if n.joining.Swap(false) {
		if err := durable.Remove(filepath.Join(n.cfg.DataDir, joiningFile)); err != nil {
			n.log.Warn("remove the joining mark", "err", err)
		}
	}
}

// Joining reports whether this node started without Raft state, or restarted before a join it began
// returned, and has neither joined nor formed a cluster since (Joined). A node started with VoteBeforeJoin
// is Joining but not Fresh: it votes meanwhile.
func (n *Node) Joining() bool { return n.joining.Load() }

// Notify records that the voter req, started with the same BootstrapExpect, is waiting to form a new cluster.
// Once this node knows of BootstrapExpect voters, itself included, it bootstraps Raft with all of them as the
// first configuration. Each of them does the same with the same list, which raft accepts as one cluster; one
// that has already heard from a candidate of that cluster learns the configuration from its leader instead.
// It reports whether this node has formed (or is in) a cluster. Notify does nothing on a node with Raft state
// or without BootstrapExpect, and a voter that notifies twice, or under a new address, is counted once.
//
// The voters must agree on who they are: start exactly BootstrapExpect of them, each listing the others.
func (n *Node) Notify(req JoinRequest) (bool, error) {
	if req.ID == "" || req.RaftAddr == "" {
		return false, fmt.Errorf("%w: notify needs id and raft_addr", ErrBadRequest)
	}
	if !req.Voter {
		return false, fmt.Errorf("%w: %s is not a voter: only voters form a new cluster", ErrBadRequest, req.ID)
	}
	if n.hadState || n.cfg.BootstrapExpect < 2 {
		return n.hadState, nil
	}
	if err := n.checkMember(context.Background(), req); err != nil {
		return false, err
	}
	n.boot.Lock()
	defer n.boot.Unlock()
	if n.boot.done {
		return true, nil
	}
	return n.learnVoter(req)
}

// BootVoters returns the voters of the cluster this node formed in this run with BootstrapExpect (Notify),
// for a voter that has not heard from all of them yet (AdoptVoters); nil if it formed none.
func (n *Node) BootVoters() []JoinRequest {
	n.boot.Lock()
	defer n.boot.Unlock()
	var out []JoinRequest
	for _, s := range n.boot.servers {
		out = append(out, JoinRequest{ID: string(s.ID), RaftAddr: string(s.Address), Voter: true})
	}
	return out
}

// AdoptVoters takes voters, the configuration another node formed a new cluster with (its BootVoters), as
// notifications: a node waiting with BootstrapExpect that has not heard from some of them (one died while
// the cluster formed) then forms the same configuration, and votes, instead of waiting for them forever.
// Voters that do not list this node under its address are ignored. It reports whether this node has formed
// (or is in) a cluster.
func (n *Node) AdoptVoters(voters []JoinRequest) (bool, error) {
	if n.hadState || n.cfg.BootstrapExpect < 2 {
		return n.hadState, nil
	}
	n.boot.Lock()
	defer n.boot.Unlock()
	self := slices.IndexFunc(voters, func(v JoinRequest) bool {
		return v.ID == n.cfg.ID && raft.ServerAddress(v.RaftAddr) == n.transport.LocalAddr()
	})
	if n.boot.done || self < 0 || len(voters) != n.cfg.BootstrapExpect {
		return n.boot.done, nil
	}
	for _, v := range voters {
		if n.boot.done {
			break
		}
		if _, err := n.learnVoter(v); err != nil {
			return false, err
		}
	}
	return n.boot.done, nil
}

// learnVoter is Notify's work once req is known to be reachable, with n.boot held.
func (n *Node) learnVoter(req JoinRequest) (bool, error) {
	id := raft.ServerID(req.ID)
	if id == raft.ServerID(n.cfg.ID) && raft.ServerAddress(req.RaftAddr) != n.transport.LocalAddr() {
		return false, fmt.Errorf("%w: %s is this node's id, with another address (%s)", ErrBadRequest, req.ID, req.RaftAddr)
	}
	if _, ok := n.boot.known[id]; !ok {
		n.log.Info("bootstrap: voter waiting", "voter", req.ID, "raft_addr", req.RaftAddr,
			"known", len(n.boot.known)+1, "expect", n.cfg.BootstrapExpect)
	}
	n.boot.known[id] = raft.ServerAddress(req.RaftAddr)
	if len(n.boot.known) < n.cfg.BootstrapExpect {
		return false, nil
	}
	var servers []raft.Server
	for id, addr := range n.boot.known {
		servers = append(servers, raft.Server{ID: id, Address: addr, Suffrage: raft.Voter})
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].ID < servers[j].ID })
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	switch {
	case errors.Is(err, raft.ErrCantBootstrap):
		// A leader of that cluster has sent this node entries already: the configuration comes from it.
		n.log.Info("bootstrap: already in a cluster forming", "voters", len(servers))
	case err != nil:
		return false, fmt.Errorf("bootstrap: %w", translate(err, false))
	default:
		n.log.Info("bootstrapped a new cluster", "voters", len(servers))
		n.boot.servers = servers
	}
	n.boot.done = true
	n.Joined() // a voter of a cluster being formed: it must vote for there to be a leader
	return true, nil
}
