package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rowboatdb/rowboat/followerread"
	"github.com/rowboatdb/rowboat/node"
)

// memberProbe is what a node learns by asking a member for its /status.
type memberProbe struct {
	reachable    bool
	appliedIndex uint64
	instance     string // the answering process (statusJSON.Instance)
	err          string
}

// probe asks every other member for its status, concurrently, bounded by a short timeout.
func (s *Server) probe(ctx context.Context, members []node.Member) map[string]memberProbe {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// Each goroutine writes only its own slot; the map is built after they have all finished.
	probes := make([]memberProbe, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		switch {
		case m.ID == s.store.ID():
			probes[i] = memberProbe{reachable: true, appliedIndex: s.store.AppliedIndex()}
		case m.HTTPAddr == "":
			probes[i] = memberProbe{err: "HTTP address not known yet"}
		default:
			wg.Go(func() { probes[i] = s.probeOne(ctx, m.ID, m.HTTPAddr) })
		}
	}
	wg.Wait()
	out := make(map[string]memberProbe, len(members))
	for i, m := range members {
		out[m.ID] = probes[i]
	}
	return out
}

// probeOne asks the member id at httpAddr for its applied index. Another node answering there (the member
// moved, and its old port was reused) does not count.
func (s *Server) probeOne(ctx context.Context, id, httpAddr string) memberProbe {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/status?probe", nil)
	if err != nil {
		return memberProbe{err: err.Error()}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return memberProbe{err: err.Error()}
	}
	defer resp.Body.Close()
	var st struct {
		ID           string `json:"id"`
		AppliedIndex uint64 `json:"applied_index"`
		Instance     string `json:"instance"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return memberProbe{err: err.Error()}
	}
	if st.ID != id {
		return memberProbe{err: fmt.Sprintf("%s answers as %q, not as %s", httpAddr, st.ID, id)}
	}
	return memberProbe{reachable: true, appliedIndex: st.AppliedIndex, instance: st.Instance}
}

// statusJSON is /status: rowboat's fields, plus the parts of rqlite's /status that rqlite clients read to
// find the leader.
type statusJSON struct {
	node.Status
	Reads     readsJSON       `json:"reads"` // replaces node.Status's
	MemberLag []memberLagJSON `json:"member_lag,omitempty"`
	Store     rqliteStore     `json:"store"`
	// Instance tells this process from any other answering as the same node id (Server.instance).
	Instance string `json:"instance"`
}

// readsJSON is /status's "reads": how the node confirms leadership as leader, and how it served the reads it
// could not serve alone as follower.
type readsJSON struct {
	node.ReadStats
	followerread.Stats
}

type memberLagJSON struct {
	ID           string `json:"id"`
	Reachable    bool   `json:"reachable"`
	AppliedIndex uint64 `json:"applied_index"`
	Lag          uint64 `json:"lag"`
	Error        string `json:"error,omitempty"`
}

type rqliteStore struct {
	Leader struct {
		NodeID string `json:"node_id"`
		Addr   string `json:"addr"`
	} `json:"leader"`
	Raft struct {
		State        string `json:"state"`
		Term         uint64 `json:"term"`
		AppliedIndex uint64 `json:"applied_index"`
		CommitIndex  uint64 `json:"commit_index"`
		LastLogIndex uint64 `json:"last_log_index"`
		Voter        bool   `json:"voter"`
		NumPeers     int    `json:"num_peers"`
		LeaderID     string `json:"leader_id"`
	} `json:"raft"`
	NodeID string `json:"node_id"`
}

// handleStatus serves GET /status. On the leader it includes each member's applied index and lag (unless
// ?probe, which is how members ask each other).
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := s.store.Status()
	out := statusJSON{Status: st, Reads: readsJSON{ReadStats: st.Reads, Stats: s.router.Stats()}, Instance: s.instance}
	out.Store.NodeID = st.ID
	out.Store.Leader.NodeID = st.LeaderID
	for _, m := range st.Members {
		if m.ID == st.LeaderID {
			out.Store.Leader.Addr = m.RaftAddr
		}
	}
	out.Store.Raft.State = map[string]string{"leader": "Leader", "follower": "Follower", "read-replica": "Follower",
		"candidate": "Candidate"}[st.Role]
	out.Store.Raft.Term, out.Store.Raft.AppliedIndex, out.Store.Raft.CommitIndex = st.Term, st.AppliedIndex, st.CommitIndex
	out.Store.Raft.LastLogIndex, out.Store.Raft.Voter, out.Store.Raft.LeaderID = st.LastIndex, st.Voter, st.LeaderID
	out.Store.Raft.NumPeers = max(len(st.Members)-1, 0)
	if _, probe := r.URL.Query()["probe"]; !probe && st.Role == "leader" {
		for id, p := range s.probe(r.Context(), st.Members) {
			lag := uint64(0)
			if p.reachable && st.AppliedIndex > p.appliedIndex {
				lag = st.AppliedIndex - p.appliedIndex
			}
			out.MemberLag = append(out.MemberLag, memberLagJSON{ID: id, Reachable: p.reachable, AppliedIndex: p.appliedIndex, Lag: lag, Error: p.err})
		}
		sortLag(out.MemberLag)
	}
	_, pretty := r.URL.Query()["pretty"]
	writeJSON(w, http.StatusOK, out, pretty)
}

func sortLag(l []memberLagJSON) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].ID < l[j-1].ID; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// nodeJSON is one member in /nodes, keyed by id as rqlite does.
type nodeJSON struct {
	ID        string `json:"id"`
	APIAddr   string `json:"api_addr"`
	Addr      string `json:"addr"`
	Voter     bool   `json:"voter"`
	Reachable bool   `json:"reachable"`
	Leader    bool   `json:"leader"`
	Error     string `json:"error,omitempty"`
}

// handleNodes serves GET /nodes: every member, with whether this node can reach it now, as a map keyed by id;
// with ?ver=2, as rqlite v8 answers it, {"nodes": [...]} sorted by id.
func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ver := q.Get("ver")
	if ver != "" && ver != "1" && ver != "2" {
		s.writeError(w, r, fmt.Errorf("%w: ver must be 1 or 2, got %q", errBadRequest, ver))
		return
	}
	ms, err := s.store.Members()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	probes := s.probe(r.Context(), ms)
	list := make([]nodeJSON, 0, len(ms)) // Members sorts by id
	for _, m := range ms {
		list = append(list, nodeEntry(m, probes[m.ID]))
	}
	_, pretty := q["pretty"]
	if ver == "2" {
		writeJSON(w, http.StatusOK, map[string][]nodeJSON{"nodes": list}, pretty)
		return
	}
	out := make(map[string]nodeJSON, len(list))
	for _, n := range list {
		out[n.ID] = n
	}
	writeJSON(w, http.StatusOK, out, pretty)
}

// nodeEntry is member m's entry of /nodes, with what probing it found.
func nodeEntry(m node.Member, p memberProbe) nodeJSON {
	api := ""
	if m.HTTPAddr != "" {
		api = "http://" + m.HTTPAddr
	}
	return nodeJSON{ID: m.ID, APIAddr: api, Addr: m.RaftAddr, Voter: m.Voter, Reachable: p.reachable, Leader: m.Leader, Error: p.err}
}

// handleLeaderInfo serves GET /leader as rqlite does: the leader's entry of /nodes, or 503 without a leader.
// (POST /leader transfers leadership.)
func (s *Server) handleLeaderInfo(w http.ResponseWriter, r *http.Request) {
	ms, err := s.store.Members()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, m := range ms {
		if !m.Leader {
			continue
		}
		_, pretty := r.URL.Query()["pretty"]
		writeJSON(w, http.StatusOK, nodeEntry(m, s.probe(r.Context(), []node.Member{m})[m.ID]), pretty)
		return
	}
	if err := s.store.NoLeader(); err != node.ErrNoLeader {
		s.writeError(w, r, err)
		return
	}
	s.writeError(w, r, fmt.Errorf("%w: this node knows of no leader", node.ErrNoLeader))
}

// handleReadyz serves GET /readyz: 200 when the node has a leader and has applied what it knows is
// committed; ?sync first waits (bounded by ?timeout) until it has applied the leader's commit index.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	p, err := parseParams(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, noLeader := r.URL.Query()["noleader"]; noLeader {
		// rqlite's liveness probe: the node answers, whether or not there is a leader (a cluster that is
		// forming, or has lost its quorum, must not have its nodes restarted for it).
		writeJSON(w, http.StatusOK, map[string]any{"node": "ok", "id": s.store.ID(), "applied_index": s.store.AppliedIndex()}, false)
		return
	}
	ok, why := s.store.Ready()
	_, sync := r.URL.Query()["sync"]
	// A follower's own commit index is capped at the end of its local log, so while it is still fetching the
	// log it can look caught up. Until it has really caught up once (and on every ?sync), compare with the
	// leader's commit index instead.
	if ok && !s.store.IsLeader() && (sync || !s.caughtUp.Load()) {
		ctx, cancel := s.context(r, p)
		defer cancel()
		idx, err := s.leaderReadIndex(ctx)
		switch {
		case err != nil:
			ok, why = false, "cannot get the leader's commit index: "+err.Error()
		case sync:
			if err := s.store.WaitApplied(ctx, idx); err != nil {
				ok, why = false, fmt.Sprintf("not caught up with the leader's commit index %d: %v", idx, err)
			}
		case s.store.AppliedIndex() < idx:
			ok, why = false, fmt.Sprintf("catching up: applied index %d, the leader's commit index %d", s.store.AppliedIndex(), idx)
		}
		if ok {
			s.caughtUp.Store(true)
		}
	}
	if !ok {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "not ready: " + why, Code: "not_ready"}, false)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true, "id": s.store.ID(), "applied_index": s.store.AppliedIndex()}, false)
}

// leaderOnly runs fn when this node leads and answers 200 with the body fn returns; elsewhere it forwards the
// request to the leader.
func (s *Server) leaderOnly(w http.ResponseWriter, r *http.Request, body []byte, fn func(ctx context.Context) (any, error)) {
	ctx, cancel, ok := s.asLeader(w, r, body)
	defer cancel()
	if !ok {
		return
	}
	out, err := fn(ctx)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out, false)
}

// asLeader starts a leader-only request: its context (to cancel), and ok when this node leads; otherwise it
// has answered (a bad parameter) or forwarded the request to the leader.
func (s *Server) asLeader(w http.ResponseWriter, r *http.Request, body []byte) (context.Context, context.CancelFunc, bool) {
	p, err := parseParams(r)
	if err != nil {
		s.writeError(w, r, err)
		return nil, func() {}, false
	}
	ctx, cancel := s.context(r, p)
	if !s.awaitLeaderReady(ctx, r) {
		s.toLeader(ctx, w, r, p, body, true)
		return ctx, cancel, false
	}
	return ctx, cancel, true
}

// done is the answer of a membership change made by this leader.
func (s *Server) done() any { return map[string]any{"ok": true, "leader": s.store.ID()} }

func decodeBody(r *http.Request, v any, optional bool) ([]byte, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if optional && len(body) == 0 {
		return body, nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return body, nil
}

// handleJoin serves POST /join {"id","raft_addr","http_addr","voter"}.
func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	req := node.JoinRequest{Voter: true}
	body, err := decodeBody(r, &req, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.leaderOnly(w, r, body, func(ctx context.Context) (any, error) {
		if err := s.addressInUse(ctx, req); err != nil {
			return nil, err
		}
		return s.done(), s.store.Join(ctx, req)
	})
}

// addressInUse refuses a join that would evict a member that is still running: one whose Raft address is
// another member's while that member still answers as itself, and one whose id is a member's at other
// addresses while that member still answers as itself at its own. Join takes a new id at a known address for
// the address reused (the member is gone), and a known id at new addresses for the member moved (or, joining
// without its data, for the member wiped), and removes the member either way: a mistyped address, or a second
// node started under an id in use, would evict a live voter. Its Raft port answers the leader's reachability
// check too, so only its HTTP API can tell.
func (s *Server) addressInUse(ctx context.Context, req node.JoinRequest) error {
	members, err := s.store.Members()
	if err != nil {
		return nil // Join reports it
	}
	reqHTTP := req.HTTPAddr
	if strings.Contains(reqHTTP, "://") {
		if u, err := url.Parse(reqHTTP); err == nil && u.Host != "" {
			reqHTTP = u.Host
		}
	}
	probe := func(id, addr string) memberProbe {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return s.probeOne(pctx, id, addr)
	}
	running := func(m node.Member) bool { return probe(m.ID, m.HTTPAddr).reachable }
	for _, m := range members {
		if m.HTTPAddr == "" || m.ID == s.store.ID() {
			continue
		}
		switch {
		case m.ID != req.ID && m.RaftAddr == req.RaftAddr:
			if running(m) {
				return fmt.Errorf("%w: raft_addr %s is member %s's, which is running: give %s its own address, or remove %s first",
					errBadRequest, req.RaftAddr, m.ID, req.ID, m.ID)
			}
		case m.ID == req.ID && m.RaftAddr != req.RaftAddr && m.HTTPAddr != reqHTTP:
			// At its recorded HTTP address, the member answers as itself only if it still runs there: a node
			// restarted at new addresses no longer does, unless the address is the joining node's own spelled
			// otherwise (localhost for 127.0.0.1), which the process answering tells. (At the same Raft or
			// HTTP address, the node joining holds the port: the member recorded there is the one joining, or
			// gone.)
			if old := probe(m.ID, m.HTTPAddr); old.reachable && (old.instance == "" || probe(req.ID, reqHTTP).instance != old.instance) {
				return fmt.Errorf("%w: id %s is a member's that is running at %s (raft %s): give the new node its own --id, or stop and remove %s first",
					errBadRequest, req.ID, m.HTTPAddr, m.RaftAddr, m.ID)
			}
		}
	}
	return nil
}

// handleNotify serves POST /notify {"id","raft_addr","http_addr"}: a node started with --bootstrap-expect
// tells this one it is waiting to form a new cluster. Answered by this node, never forwarded; a node that
// formed one in this run answers with its voters too.
func (s *Server) handleNotify(w http.ResponseWriter, r *http.Request) {
	req := node.JoinRequest{Voter: true}
	if _, err := decodeBody(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	formed, err := s.store.Notify(req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	_, pretty := r.URL.Query()["pretty"]
	out := map[string]any{"ok": true, "id": s.store.ID(), "formed": formed}
	if v := s.store.BootVoters(); formed && len(v) > 0 {
		// For a voter that has not heard from all the others (one died while the cluster formed): it can
		// form the same configuration from this list (node.AdoptVoters).
		out["voters"] = v
	}
	writeJSON(w, http.StatusOK, out, pretty)
}

// handleRemove serves DELETE /remove {"id"[, "force": true]} (or ?force): a removal that would leave the
// cluster without a quorum of answering voters is refused (409) unless forced.
func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID    string `json:"id"`
		Force bool   `json:"force"`
	}
	body, err := decodeBody(r, &req, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	force, err := flag(r.URL.Query(), "force")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	force = force || req.Force
	ctx, cancel, ok := s.asLeader(w, r, body)
	defer cancel()
	if !ok {
		return
	}
	err = s.store.Remove(ctx, req.ID, force)
	if errors.Is(err, node.ErrHandedOver) {
		// This leader handed leadership over before being removed: the new leader removes it.
		if addr := s.awaitNewLeader(ctx); addr != "" {
			s.forward(ctx, w, r, "http://"+addr+r.URL.RequestURI(), body, true)
			return
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.done(), false)
}

// awaitLeaderReady reports whether this node leads and is ready for leader-only work. A request another
// node forwarded to a leader that has just taken over (handed leadership by that node, which heard of it from
// its first append) waits, up to leaderReadyWait, for its barrier to apply, rather than bounce back as
// "not the leader".
func (s *Server) awaitLeaderReady(ctx context.Context, r *http.Request) bool {
	if s.store.IsLeader() || r.Header.Get(headerForwarded) == "" {
		return s.store.IsLeader()
	}
	deadline := time.Now().Add(leaderReadyWait)
	for time.Now().Before(deadline) && s.store.Status().Role == "leader" {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
		if s.store.IsLeader() {
			return true
		}
	}
	return false
}

// leaderReadyWait bounds awaitLeaderReady.
const leaderReadyWait = 2 * time.Second

// awaitNewLeader waits until this node knows of another leader than itself and returns its HTTP address, or
// "" when ctx ends first.
func (s *Server) awaitNewLeader(ctx context.Context) string {
	for {
		if id, addr := s.store.Leader(); id != "" && id != s.store.ID() && addr != "" {
			return addr
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// handleLeader serves POST /leader [{"id"}]: planned failover to the named or the most caught-up voter.
func (s *Server) handleLeader(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	body, err := decodeBody(r, &req, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.leaderOnly(w, r, body, func(ctx context.Context) (any, error) {
		old := s.store.ID()
		if err := s.store.TransferLeadership(ctx, req.ID); err != nil {
			return nil, err
		}
		if req.ID == old {
			return map[string]any{"ok": true, "previous_leader": old, "leader": old}, nil // it already leads
		}
		// Answer with the new leader once this node has heard of it (bounded by the request's timeout).
		newID := ""
		for ctx.Err() == nil {
			if id, _ := s.store.Leader(); id != "" && id != old {
				newID = id
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
		return map[string]any{"ok": true, "previous_leader": old, "leader": newID}, nil
	})
}

// handleEvents serves GET /events as Server-Sent Events: the recent events (after Last-Event-ID, if sent),
// then new ones as they happen. An event's id is this process's instance and its sequence number: a client
// resuming with the id of another process (the node restarted, or another node answers at the address) gets
// every recent event, where a bare number skipped as many of the new process's.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, fmt.Errorf("streaming not supported"))
		return
	}
	var after uint64
	resumed := false
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if inst, seq, ok := strings.Cut(v, "-"); ok && inst == s.instance {
			if n, err := strconv.ParseUint(seq, 10, 64); err == nil {
				after, resumed = n, true
			}
		}
	}
	recent, ch, cancel := s.store.Subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(e node.Event) error {
		if e.Seq <= after {
			return nil
		}
		b, _ := json.Marshal(e)
		_, err := fmt.Fprintf(w, "id: %s-%d\nevent: %s\ndata: %s\n\n", s.instance, e.Seq, e.Type, b)
		return err
	}
	fmt.Fprintf(w, ": connected to %s\n\n", s.store.ID())
	if resumed && len(recent) > 0 && recent[0].Seq > after+1 {
		fmt.Fprintf(w, ": %d events after the one you last saw are no longer kept\n\n", recent[0].Seq-after-1)
	}
	for _, e := range recent {
		if send(e) != nil {
			return
		}
	}
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case e, ok := <-ch:
			if !ok || send(e) != nil {
				return
			}
			fl.Flush()
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
