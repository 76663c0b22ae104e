package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/fsm"
)

// JoinRequest asks the leader to add a member.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Voter    bool   `json:"voter"`
	// Fresh says the joining node started without Raft state (a new node, or one whose data directory was
	// wiped) and has neither joined nor formed a cluster since (Node.Fresh). A voter known by its id has then
	// lost entries it acknowledged, so its old membership must stop counting (see Join).
	Fresh bool `json:"fresh,omitempty"`
}

// Join adds a member to the cluster, as a voter or a non-voting read replica, and records its metadata. A
// member rejoining with the same id and addresses is a no-op; a known id with a new address is moved. Leader
// only.
//
// A voter that rejoins Fresh (without its data) is removed and added again. Its old membership counted
// entries it no longer holds as acknowledged, and with an empty log it would vote for any candidate, even
// one missing those entries: a lagging voter could then be elected and the entries lost. The removal
// commits on the other voters, so they then hold every committed entry; until it does (they may be down),
// the join fails with ErrTimeout and the joining node retries.
//
// A voter is added as a non-voter first and made a voter once it has applied what the leader had when it
// was added (see SetProgress), as etcd adds a learner: until then the cluster's quorum and the leader's
// lease do not depend on a node busy catching up, and a node holding only part of the log cannot campaign.
// A join that times out meanwhile leaves a non-voter that the joining node's next attempt promotes.
func (n *Node) Join(ctx context.Context, req JoinRequest) error {
	if req.ID == "" || req.RaftAddr == "" || req.HTTPAddr == "" {
		return fmt.Errorf("%w: join needs id, raft_addr and http_addr", ErrBadRequest)
	}
	if !n.IsLeader() {
		return n.notLeaderErr()
	}
	if err := n.checkMember(ctx, req); err != nil {
		return err
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return translate(err, false)
	}
	timeout := n.timeout(ctx)
	member := false
	promote := false // add as a non-voter (or keep one), catch up, then make a voter
	progress := n.progress.Load()
	for _, s := range cf.Configuration().Servers {
		sameID, sameAddr := s.ID == raft.ServerID(req.ID), s.Address == raft.ServerAddress(req.RaftAddr)
		switch {
		case sameID && sameAddr && s.ID == raft.ServerID(n.cfg.ID) && (s.Suffrage == raft.Voter) == req.Voter:
			// This leader's own join, forwarded back to it: it got the configuration that added it, and was
			// elected before its join returned (so its log is the cluster's). It is a member.
			member = true
		case sameID && req.Fresh && s.Suffrage == raft.Voter:
			if s.ID == raft.ServerID(n.cfg.ID) {
				return fmt.Errorf("%w: %s is the leader's own id", ErrBadRequest, req.ID)
			}
			n.log.Warn("a voter rejoins without its data: its old membership is removed first, so that what it acknowledged before stops counting",
				"member", req.ID)
			if err := n.await(ctx, n.raft.RemoveServer(s.ID, 0, timeout)); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("%w: %s rejoins without its data, and removing its old membership has not committed: that needs the other voters; bring them back",
						ErrTimeout, req.ID)
				}
				return translate(err, true)
			}
		case sameID && sameAddr && (s.Suffrage == raft.Voter) == req.Voter:
			member = true
		case sameID && sameAddr:
			// Only the suffrage changes: one configuration change, so the member is never out of the cluster
			// (a removal and then an add left it out if the leader failed in between).
			if s.ID == raft.ServerID(n.cfg.ID) {
				return fmt.Errorf("%w: %s is the leader's own id", ErrBadRequest, req.ID)
			}
			member = true
			if req.Voter {
				promote = true // a non-voter becomes a voter once it has caught up
				continue
			}
			if err := n.keepsQuorum(ctx, cf.Configuration().Servers, req.ID); err != nil {
				return err
			}
			if err := n.await(nil, n.raft.DemoteVoter(s.ID, 0, timeout)); err != nil {
				return translate(err, true)
			}
			n.log.Info("member's suffrage changed", "member", req.ID, "voter", false)
		case sameID || sameAddr:
			// The id moved to a new address, an address is reused by a new id, or the suffrage changes.
			if s.ID == raft.ServerID(n.cfg.ID) {
				return fmt.Errorf("%w: %s is the leader's own id or address", ErrBadRequest, req.ID)
			}
			if err := n.await(nil, n.raft.RemoveServer(s.ID, 0, timeout)); err != nil {
				return translate(err, true)
			}
		}
	}
	if !member {
		var f raft.IndexFuture
		if req.Voter && progress == nil {
			f = n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, timeout)
		} else {
			promote = req.Voter
			f = n.raft.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, timeout)
		}
		if err := n.await(nil, f); err != nil {
			return translate(err, true)
		}
		n.log.Info("member added", "member", req.ID, "raft_addr", req.RaftAddr, "voter", req.Voter && !promote)
		n.setFailing(req.ID, false) // raft starts a new heartbeat loop for it, which reports no recovery
	}
	// The metadata first: a member catching up is listed with its HTTP address, and answers reads forwarded to it.
	m := fsm.Member{ID: req.ID, HTTPAddr: hostPort(req.HTTPAddr), RaftAddr: req.RaftAddr, Voter: req.Voter}
	if old, ok := n.fsm.Members()[req.ID]; !ok || old != m {
		if err := n.await(nil, n.raft.Apply(fsm.EncodeMember(fsm.CmdSetMember, m), timeout)); err != nil {
			return translate(err, true)
		}
	}
	if !promote {
		return nil
	}
	if progress != nil {
		if err := n.catchUp(ctx, *progress, Peer{ID: req.ID, HTTPAddr: m.HTTPAddr}); err != nil {
			return err
		}
	}
	if err := n.await(nil, n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, n.timeout(ctx))); err != nil {
		return translate(err, true)
	}
	n.log.Info("member is a voter", "member", req.ID)
	return nil
}

// Progress asks a member (at its HTTP address) for the index of the last log entry it has applied.
type Progress func(ctx context.Context, p Peer) (uint64, error)

// SetProgress makes Join add a voter as a non-voter first, and make it a voter once p reports it has applied
// what this leader had applied when it was added. The HTTP layer sets it; without it (in-process tests that
// set none) a voter is added as a voter at once.
func (n *Node) SetProgress(p Progress) { n.progress.Store(&p) }

// catchUpPoll is how often catchUp asks a member catching up how far it got.
const catchUpPoll = 50 * time.Millisecond

// catchUp waits until the member p has applied every entry this node had applied when it was called, or ctx
// ends (ErrTimeout, saying how far it got: the joining node asks again, and its next join carries on).
func (n *Node) catchUp(ctx context.Context, progress Progress, p Peer) error {
	target := n.fsm.AppliedIndex()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, n.timeout(ctx))
	defer cancel()
	tick := time.NewTicker(catchUpPoll)
	defer tick.Stop()
	var (
		got     uint64
		lastErr error
	)
	for {
		if !n.IsLeader() {
			return fmt.Errorf("%w: lost leadership while %s caught up", ErrNotLeader, p.ID)
		}
		applied, err := progress(ctx, p)
		switch {
		case err != nil:
			lastErr = err
		case applied >= target:
			n.log.Info("member caught up", "member", p.ID, "index", target, "took", time.Since(start).Round(time.Millisecond))
			return nil
		default:
			got, lastErr = applied, nil
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("%w: %s is a non-voter until it catches up (to index %d), and its progress is unknown: %v; its next join attempt carries on",
					ErrTimeout, p.ID, target, lastErr)
			}
			return fmt.Errorf("%w: %s is a non-voter until it catches up, and has applied index %d of %d; its next join attempt carries on",
				ErrTimeout, p.ID, got, target)
		case <-n.stop:
			return ErrShuttingDown
		case <-tick.C:
		}
	}
}

// checkMember refuses a member whose addresses are not host:port, and one that does not answer at its Raft
// address: a voter added there could never vote, and enough of them (or one, in a cluster of one) leave the
// cluster without a quorum for good. (With an in-memory transport, in tests, addresses are not checked.)
func (n *Node) checkMember(ctx context.Context, req JoinRequest) error {
	if n.stream == nil {
		return nil
	}
	for _, a := range []struct{ name, addr string }{{"raft_addr", req.RaftAddr}, {"http_addr", req.HTTPAddr}} {
		if a.addr == "" {
			continue
		}
		addr := a.addr
		if a.name == "http_addr" && strings.Contains(addr, "://") {
			if u, err := url.Parse(addr); err == nil {
				addr = u.Host
			}
		}
		host, port, err := net.SplitHostPort(addr)
		if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			return fmt.Errorf("%w: %s %q is not host:port", ErrBadRequest, a.name, a.addr)
		}
	}
	timeout := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		if timeout = min(timeout, time.Until(dl)); timeout <= 0 { // 0 would mean no timeout at all
			return fmt.Errorf("%w: no time left to reach %s at raft_addr %s", ErrTimeout, req.ID, req.RaftAddr)
		}
	}
	conn, err := n.stream.Dial(raft.ServerAddress(req.RaftAddr), timeout)
	if err != nil {
		return fmt.Errorf("%w: %s does not answer at raft_addr %s (%v): start it, listening there, before it joins", ErrUnreachable, req.ID, req.RaftAddr, err)
	}
	conn.Close()
	return nil
}

// Remove removes a member from the cluster and forgets its metadata. Leader only. A leader may remove itself:
// it steps down once the removal commits, and the next leader forgets its metadata.
//
// Unless force is set, removing a voter that would leave voters of which too few answer to make a quorum is
// refused with ErrWouldLoseQuorum: removing a healthy voter of three while another was down left the cluster
// without a leader until that one came back. The voters left are asked for their term at the time (see
// SetConfirmer; without a Confirmer, the leader's failing heartbeats tell).
func (n *Node) Remove(ctx context.Context, id string, force bool) error {
	if id == "" {
		return fmt.Errorf("%w: remove needs an id", ErrBadRequest)
	}
	if !n.IsLeader() {
		return n.notLeaderErr()
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return translate(err, false)
	}
	found, voter := false, false
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			found, voter = true, s.Suffrage == raft.Voter
		}
	}
	_, known := n.fsm.Members()[id]
	if !found && !known {
		return fmt.Errorf("%w: %s", ErrUnknownMember, id)
	}
	if voter && !force {
		if err := n.keepsQuorum(ctx, cf.Configuration().Servers, id); err != nil {
			return err
		}
	}
	if id == n.cfg.ID && voter && !force {
		// A leader that removes itself steps down as the removal commits, and the cluster has no leader
		// until an election: writes fail meanwhile. Hand leadership to another voter first, which then
		// removes this node (the caller asks it: ErrHandedOver).
		if err := n.TransferLeadership(ctx, ""); err == nil {
			return ErrHandedOver
		} else if !errors.Is(err, ErrBadRequest) { // ErrBadRequest: no other voter; removing itself leaves none
			return err
		}
	}
	timeout := n.timeout(ctx)
	if found {
		if err := n.await(nil, n.raft.RemoveServer(raft.ServerID(id), 0, timeout)); err != nil {
			return translate(err, true)
		}
	}
	n.log.Info("member removed", "member", id)
	n.setFailing(id, false)
	if id == n.cfg.ID && found {
		// The leader removed itself and has stepped down: the next leader forgets its metadata (pruneMembers).
		return nil
	}
	return translate(n.await(nil, n.raft.Apply(fsm.EncodeMember(fsm.CmdRemoveMember, fsm.Member{ID: id}), timeout)), true)
}

func (n *Node) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
	}
	return n.cfg.ApplyTimeout
}

// Member is one member of the cluster as this node sees it.
type Member struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// Members lists the Raft configuration joined with the replicated metadata, sorted by id.
func (n *Node) Members() ([]Member, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, translate(err, false)
	}
	meta := n.fsm.Members()
	_, leader := n.raft.LeaderWithID()
	var out []Member
	for _, s := range cf.Configuration().Servers {
		m := Member{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader}
		m.HTTPAddr = meta[m.ID].HTTPAddr
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Status is a snapshot of this node's view of the cluster.
type Status struct {
	ID             string    `json:"id"`
	Role           string    `json:"role"` // leader, follower, candidate, read-replica, shutdown
	Term           uint64    `json:"term"`
	LeaderID       string    `json:"leader_id"`
	LeaderHTTPAddr string    `json:"leader_http_addr"`
	CommitIndex    uint64    `json:"commit_index"`
	AppliedIndex   uint64    `json:"applied_index"`
	LastIndex      uint64    `json:"last_index"`
	LastContact    time.Time `json:"last_contact,omitzero"`
	Voter          bool      `json:"voter"`
	Ready          bool      `json:"ready"`
	Removed        bool      `json:"removed,omitempty"` // no longer in the cluster's configuration (see Node.Removed)
	NotReady       string    `json:"not_ready,omitempty"`
	Members        []Member  `json:"members"`
	Reads          ReadStats `json:"reads"`
}

// ReadStats shows how this node, as leader, has been confirming its leadership for reads (counters since it
// started).
type ReadStats struct {
	// LeaseMS is what is left of the lease behind level weak, in milliseconds; 0 when it has none.
	LeaseMS float64 `json:"lease_ms"`
	// ConfirmRounds counts the rounds that asked the voters for their term (GET /term).
	ConfirmRounds uint64 `json:"confirm_rounds"`
	// ConfirmedReads counts the linearizable reads and read-index requests that joined those rounds: divided
	// by ConfirmRounds, how many each round served.
	ConfirmedReads uint64 `json:"confirmed_reads"`
	// LogFallbacks counts the rounds with too few answers, replaced by a no-op through the log.
	LogFallbacks uint64 `json:"log_fallbacks"`
}

// Status reports this node's view of the cluster.
func (n *Node) Status() Status {
	s := Status{
		ID: n.cfg.ID, Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(),
		AppliedIndex: n.fsm.AppliedIndex(), LastIndex: n.raft.LastIndex(),
	}
	s.LeaderID, s.LeaderHTTPAddr = n.Leader()
	s.Role = roleName(n.raft.State())
	s.Members, _ = n.Members()
	s.Voter = n.IsVoter() // its suffrage, or the one it asked for while it is not in a configuration yet
	if s.Role == "follower" && !s.Voter {
		s.Role = "read-replica"
	}
	if s.Role != "leader" {
		s.LastContact = n.raft.LastContact()
	}
	s.Ready, s.NotReady = n.Ready()
	s.Removed = s.Role != "leader" && n.Removed()
	s.Reads = ReadStats{
		LeaseMS:       float64(n.leaseLeft()) / float64(time.Millisecond),
		ConfirmRounds: n.stats.confirmRounds.Load(), ConfirmedReads: n.stats.confirmedReads.Load(),
		LogFallbacks: n.stats.logFallbacks.Load(),
	}
	return s
}

// Removed reports whether this node was a member of the cluster and no longer is in the configuration it
// knows (DELETE /remove). Such a node gets no more entries: its copy stops changing. The first time it notices,
// it says so in its log.
func (n *Node) Removed() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	servers := cf.Configuration().Servers
	for _, s := range servers {
		if s.ID == raft.ServerID(n.cfg.ID) {
			n.wasMember.Store(true)
			return false
		}
	}
	if len(servers) == 0 || !(n.wasMember.Load() || n.hadState) {
		return false // not a member yet (still joining)
	}
	if !n.removedLogged.Swap(true) {
		n.log.Warn("this node has been removed from the cluster: it gets no more writes, and reads at level none see a copy "+
			"that no longer changes; stop it, or wipe its data directory and join again", "applied_index", n.fsm.AppliedIndex())
	}
	return true
}

// IsVoter reports whether this node is a voting member: its suffrage in the Raft configuration it knows, or,
// when it is not in that configuration (still joining, or removed), the role it was started with. A voter
// catching up on its first join is no read replica, and must not serve level auto from its local copy.
func (n *Node) IsVoter() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			if s.ID == raft.ServerID(n.cfg.ID) {
				// A voter joins as a non-voter until it has caught up: it is no read replica meanwhile.
				return s.Suffrage == raft.Voter || n.Joining() && !n.cfg.NonVoter
			}
		}
	}
	return !n.cfg.NonVoter
}

// TransferLeadership hands leadership to the member id, or to the most up-to-date voter when id is empty,
// and waits until this node is no longer the leader. Leader only.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.notLeaderErr()
	}
	// Drain writes first: new ones are refused as "not leader" (not applied, safe to retry elsewhere) and the
	// batch in flight finishes, so no acknowledged-or-not question is left open by the transfer.
	n.transferring.Store(true)
	// Until raft's transfer has ended, the other voter may take over at any moment: no weak read may rest on
	// this node's lease meanwhile. The flag stays set until the transfer itself ends (below), even if the
	// caller stops waiting sooner.
	n.leaseStart.Store(noLease)
	handedOff := false
	defer func() {
		if !handedOff {
			n.transferring.Store(false)
		}
	}()
	n.busy.Lock()
	n.busy.Unlock()
	var f raft.Future
	if id == "" {
		others := false
		if cf := n.raft.GetConfiguration(); cf.Error() == nil {
			for _, s := range cf.Configuration().Servers {
				others = others || (s.Suffrage == raft.Voter && s.ID != raft.ServerID(n.cfg.ID))
			}
		}
		if !others {
			return fmt.Errorf("%w: there is no other voter to hand leadership to", ErrBadRequest)
		}
		f = n.raft.LeadershipTransfer()
	} else {
		var addr raft.ServerAddress
		ms, err := n.Members()
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.ID == id {
				if !m.Voter {
					return fmt.Errorf("%w: %s is not a voter", ErrBadRequest, id)
				}
				addr = raft.ServerAddress(m.RaftAddr)
			}
		}
		if addr == "" {
			return fmt.Errorf("%w: %s", ErrUnknownMember, id)
		}
		if id == n.cfg.ID {
			return nil
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	// Raft ends a transfer by itself (the target took over, or raft's own timeout ran out): only then may
	// this node lead again.
	handedOff = true
	err := translate(n.awaitThen(ctx, f, func() { n.transferring.Store(false) }), false)
	if err != nil && !isSentinel(err) {
		// Raft's own, unexported errors: the target did not take over in time, or is not replicating.
		err = fmt.Errorf("%w: leadership transfer: %v", ErrTimeout, err)
	}
	return err
}

// isSentinel reports whether err wraps one of this package's errors.
func isSentinel(err error) bool {
	for _, s := range []error{ErrNotLeader, ErrNoLeader, ErrLeadershipLost, ErrTimeout, ErrShuttingDown, ErrUnknownMember, ErrBadRequest} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// hostPort is addr without a URL's scheme and path (http://host:port/ becomes host:port): every user of a
// member's HTTP address builds its URLs from host:port.
func hostPort(addr string) string {
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return addr
}

// keepsQuorum returns ErrWouldLoseQuorum unless the voters of servers other than id include a quorum of them
// that answer now: taking id's vote away (removing or demoting it) must not leave the cluster without one.
func (n *Node) keepsQuorum(ctx context.Context, servers []raft.Server, id string) error {
	var left []raft.Server
	for _, s := range servers {
		if s.ID != raft.ServerID(id) && s.Suffrage == raft.Voter {
			left = append(left, s)
		}
	}
	if len(left) == 0 {
		return nil // raft refuses to remove the last voter itself
	}
	if answering := n.answering(ctx, left); len(answering) < len(left)/2+1 {
		ids := make([]string, len(left))
		for i, s := range left {
			ids[i] = string(s.ID)
		}
		return fmt.Errorf("%w: without %s's vote the voters would be %v, of which only %v answer, and the cluster without a leader until the others return: bring them back first (a removal can be forced)",
			ErrWouldLoseQuorum, id, ids, answering)
	}
	return nil
}

// answering returns the ids of the voters among servers that answer now: this node, and the others that
// answer this leader's term (through the Confirmer; without one, those its heartbeats reach).
func (n *Node) answering(ctx context.Context, servers []raft.Server) []string {
	var ids []string
	var peers []Peer
	members := n.fsm.Members()
	for _, s := range servers {
		switch {
		case string(s.ID) == n.cfg.ID:
			ids = append(ids, n.cfg.ID)
		case n.confirmer.Load() == nil:
			if !n.failing(string(s.ID)) {
				ids = append(ids, string(s.ID))
			}
		default:
			peers = append(peers, Peer{ID: string(s.ID), HTTPAddr: members[string(s.ID)].HTTPAddr})
		}
	}
	if c := n.confirmer.Load(); c != nil && len(peers) > 0 {
		cctx, cancel := context.WithTimeout(ctx, 2*n.cfg.HeartbeatTimeout)
		defer cancel()
		for _, a := range (*c)(cctx, n.raft.CurrentTerm(), peers, len(peers)) {
			ids = append(ids, a.ID)
		}
	}
	return ids
}
