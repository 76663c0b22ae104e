// Package node runs one rowboat node: hashicorp/raft (a TCP transport unless Config.Transport gives one, the
// internal/raftlog log store, a raft-boltdb stable store, a file snapshot store) around an fsm.FSM, the
// leader's write pipeline (queue, group commit, propose, wait for apply), leader reads and read indexes, and
// cluster membership with replicated member metadata.
//
// It is the only package besides fsm (and the log store it opens) that imports hashicorp/raft, and it
// translates raft's errors into its own sentinels. It knows nothing of HTTP.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/rowboatdb/rowboat/internal/durable"
	"github.com/rowboatdb/rowboat/internal/raftlog"
	"github.com/rowboatdb/rowboat/internal/rounds"
	"go.etcd.io/bbolt"

	"github.com/rowboatdb/rowboat/fsm"
)

// Config is everything a node needs. Zero durations and counts take the defaults noted.
type Config struct {
	ID            string
	RaftAddr      string // address the Raft transport binds (unused with Transport)
	RaftAdvertise string // address peers dial (default RaftAddr)
	HTTPAdvertise string // this node's HTTP address, replicated so others can forward to it
	DataDir       string
	// Bootstrap makes a node without Raft state start a new cluster of one. A node that will join must not.
	// A read replica (NonVoter) cannot bootstrap: Open refuses.
	Bootstrap bool
	// BootstrapExpect > 1 makes a node without Raft state wait for notifications (Notify) from that many voters,
	// itself included, and then form a new cluster with all of them. Bootstrap must be false then.
	BootstrapExpect int
	// VoteBeforeJoin lets a node started without Raft state vote at once. By default it refuses votes until
	// it has joined (Joined) or formed a cluster: its id may be a voter's that lost its data, whose vote
	// could elect a node missing writes only the lost data held. When the voters left cannot elect a leader
	// without it (two voters, one of which lost its data), that risk is the only way back.
	VoteBeforeJoin bool
	NonVoter       bool // this node is a read replica, which cannot bootstrap a cluster

	HeartbeatTimeout   time.Duration // default 500ms
	ElectionTimeout    time.Duration // default 500ms
	LeaderLeaseTimeout time.Duration // default 500ms
	CommitTimeout      time.Duration // default 20ms
	ApplyTimeout       time.Duration // default 10s: how long a write may wait for Raft
	SnapshotThreshold  uint64        // default 8192
	SnapshotInterval   time.Duration // default 30s
	SnapshotLogBytes   int64         // snapshot once this many bytes of log were applied since the last (default 256 MiB)
	TrailingLogs       uint64        // default 10240
	MaxBatch           int           // requests per group commit, default 1024
	NoForeignKeys      bool          // do not enforce foreign-key constraints on client writes

	Logger    *slog.Logger
	LogOutput io.Writer // Raft's log output (default os.Stderr)
	LogLevel  string    // Raft's log level (default info)
	LogJSON   bool
	// Halt is called when this node's database can no longer apply the log (see fsm.Options.Halt: diverged,
	// or its storage failed). It must stop the process.
	Halt func(error)
	// Transport, if set, replaces the TCP transport (tests use raft's in-memory one). The node closes it if it
	// is an io.Closer.
	Transport raft.Transport
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, 500*time.Millisecond)
	def(&c.ElectionTimeout, 500*time.Millisecond)
	def(&c.LeaderLeaseTimeout, 500*time.Millisecond)
	def(&c.CommitTimeout, 20*time.Millisecond)
	def(&c.ApplyTimeout, 10*time.Second)
	def(&c.SnapshotInterval, 30*time.Second)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotLogBytes <= 0 {
		c.SnapshotLogBytes = 256 << 20
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1024
	}
	if c.Transport != nil {
		c.RaftAddr = string(c.Transport.LocalAddr())
		c.RaftAdvertise = c.RaftAddr
	}
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = c.RaftAddr
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LogOutput == nil {
		c.LogOutput = os.Stderr
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
}

// Node is one member of a rowboat cluster. Its methods are safe for concurrent use.
type Node struct {
	cfg       Config
	log       *slog.Logger
	fsm       *fsm.FSM
	raft      *raft.Raft
	transport raft.Transport
	guard     *voteGuard // refuses votes until this node, started without state, joins; nil otherwise

	peersMu      sync.Mutex
	peersFailing map[string]bool       // peers this leader's heartbeats fail to reach (see Remove)
	stream       *streamLayer          // the TCP stream layer under transport; nil with an in-memory transport (tests)
	store        *raftboltdb.BoltStore // the Raft stable store (term and vote); its file lock guards the data dir
	logs         *raftlog.Store        // the Raft log
	snaps        *raft.FileSnapshotStore

	queue     chan *writeOp
	readyTerm atomic.Uint64 // the term in which this node, as leader, has applied its predecessors' writes

	confirmer atomic.Pointer[Confirmer] // see SetConfirmer; nil: VerifyLeader
	progress  atomic.Pointer[Progress]  // see SetProgress; nil: a voter is added without catching up first
	confirms  rounds.Group[uint64]      // shared confirmLeadership rounds; the value is the term confirmed
	// confirmWarned is when (Unix ns) a round last logged that it fell back to the log.
	confirmWarned atomic.Int64
	stats         struct{ confirmRounds, confirmedReads, logFallbacks atomic.Uint64 } // see ReadStats

	// leaseStart is when (in nanoseconds on the monotonic clock since start) the contacts behind this node's
	// latest lease began (see renewLease), or noLease: no other leader can be elected until the followers'
	// heartbeat timeout runs out after it. Level weak reads need an unexpired lease, so a leader that was
	// paused or cut off does not serve stale reads after it resumes.
	leaseStart   atomic.Int64
	leaseUsed    atomic.Int64 // when (as leaseStart) a read last asked for the lease
	started      time.Time
	transferring atomic.Bool // a planned leadership transfer is draining writes
	caughtUp     atomic.Bool // the database has reached the commit index at least once since start
	// wasMember is set once this node has seen itself in the configuration; removedLogged once it has said
	// that it was removed (see Removed).
	wasMember, removedLogged atomic.Bool
	busy                     sync.Mutex // held by the writer while a batch is executing or in flight
	// exclusive is held alone by Load, from reading the schema it replaces until its write is applied, so that
	// no other write runs in between; every other write holds it shared. Waits for it end with the request.
	exclusive gate
	// executing interrupts the batch being executed (with errDeposed) when leadership is lost; nil between.
	executing atomic.Pointer[context.CancelCauseFunc]
	// noDeposeInterrupt (tests only) lets a batch run on after leadership is lost, to exercise the term checks
	// that stop its entry from applying.
	noDeposeInterrupt atomic.Bool

	hadState bool        // Raft had state when the node opened: it was a member of a cluster before
	joining  atomic.Bool // started without Raft state, or before a join finished, and not joined since (Joining)
	boot     struct {
		sync.Mutex
		known   map[raft.ServerID]raft.ServerAddress // voters that notified (see Notify), this node included
		done    bool
		servers []raft.Server // the configuration this node bootstrapped in this run; nil if it did not
	}

	observer *raft.Observer
	obsCh    chan raft.Observation
	events   *eventSink

	stop     chan struct{}
	raftDown chan struct{} // closed once Raft has shut down (in Close)
	// writerDone is closed when the writer goroutine has stopped; every op it took has its answer by then.
	writerDone chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

// Open starts a node on cfg.DataDir. A node with existing Raft state rejoins its cluster with its old identity.
func Open(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if cfg.ID == "" || cfg.RaftAddr == "" || cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: id, raft address and data dir are required", ErrBadRequest)
	}
	n := &Node{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "node", "id", cfg.ID),
		queue:      make(chan *writeOp, 4*cfg.MaxBatch),
		stop:       make(chan struct{}),
		raftDown:   make(chan struct{}),
		writerDone: make(chan struct{}),
		events:     newEventSink(1024),
		started:    time.Now(),
	}
	n.confirms.Timeout = cfg.ApplyTimeout
	n.leaseStart.Store(noLease)
	if err := n.open(); err != nil {
		n.closeResources()
		return nil, err
	}
	return n, nil
}

// nodeIDFile, in the data dir, holds the id of the node the data dir belongs to.
const nodeIDFile = "node-id"

// checkNodeID refuses a data dir whose Raft state (existing) belongs to another node id, and records id in
// one that has none yet, or no Raft state (a node that never joined may be started again under a new id).
// Raft knows a member by its id: a node restarted on its data under another id (a typo, or no --id, which
// defaults to the Raft address) found itself out of the configuration and called itself removed.
func checkNodeID(dir, id string, existing bool) error {
	path := filepath.Join(dir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && !existing:
		if strings.TrimSpace(string(b)) == id {
			return nil
		}
		return durable.WriteFile(path, []byte(id+"\n"), 0o644)
	case err == nil:
		if owner := strings.TrimSpace(string(b)); owner != id {
			return fmt.Errorf("data dir %s belongs to node %q, and this node was started as %q: start it with --id %s (a new node needs a data dir of its own)",
				dir, owner, id, owner)
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return durable.WriteFile(path, []byte(id+"\n"), 0o644)
	default:
		return fmt.Errorf("read the data dir's node id: %w", err)
	}
}

// raftLogNoise drops what raft logs as an error on every graceful stop: each inbound connection's reader
// fails with "transport shutdown" as the transport closes.
func raftLogNoise(_ hclog.Level, msg string, args ...any) bool {
	if msg != "failed to decode incoming command" {
		return false
	}
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, raft.ErrTransportShutdown) {
			return true
		}
	}
	return false
}

// open opens the stores and starts Raft and the node's goroutines.
func (n *Node) open() (err error) {
	cfg := n.cfg
	hl := hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.LevelFromString(cfg.LogLevel), Output: cfg.LogOutput, JSONFormat: cfg.LogJSON,
		Exclude: raftLogNoise,
	})
	if st, err := os.Stat(cfg.DataDir); err == nil && !st.IsDir() {
		return fmt.Errorf("data dir %s is a file, not a directory", cfg.DataDir)
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err = durable.MkdirAll(raftDir, 0o755); err != nil {
		return fmt.Errorf("create the data dir: %w", err)
	}
	// bbolt locks its file: a second rowboatd on the same data dir fails here at once instead of waiting.
	n.store, err = raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(raftDir, "raft.db"), BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("data dir %s is in use by another process", cfg.DataDir)
	}
	if err != nil {
		return fmt.Errorf("open raft stable store: %w", err)
	}
	// Uploads (/db/load of a SQLite file) a stopped process left behind.
	names, _ := filepath.Glob(filepath.Join(cfg.DataDir, "upload-*.sqlite*"))
	for _, name := range names {
		os.Remove(name)
	}
	if n.fsm, err = fsm.Open(filepath.Join(cfg.DataDir, "db"), fsm.Options{
		Logger: cfg.Logger, Halt: cfg.Halt, NoForeignKeys: cfg.NoForeignKeys,
		OnSnapshot: func(index uint64, took time.Duration) {
			n.events.publish(Event{Type: EventSnapshotTaken, Node: cfg.ID, Term: n.fsm.AppliedTerm(), Index: index, Detail: "took " + took.String()})
		},
		OnRestore: func(index uint64, took time.Duration) {
			n.events.publish(Event{Type: EventSnapshotRestored, Node: cfg.ID, Term: n.fsm.AppliedTerm(), Index: index, Detail: "took " + took.String()})
		},
	}); err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	// The log has its own store: one write and one fdatasync per append, where bolt syncs twice. Two appends
	// sit in series in every commit (the leader stores a batch before sending it), so this is write latency.
	if n.logs, err = raftlog.OpenFrom(filepath.Join(raftDir, "log"), n.store, raftlog.Options{Logger: cfg.Logger.With("component", "raftlog")}); err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	logStore, err := raft.NewLogCache(1024, n.logs)
	if err != nil {
		return err
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hl); err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if err = n.catchUpFromSnapshot(); err != nil {
		return err
	}
	if n.transport = cfg.Transport; n.transport == nil {
		if _, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise); err != nil {
			return fmt.Errorf("raft advertise address %s does not resolve: %v", cfg.RaftAdvertise, err)
		}
		stream, err := newStreamLayer(cfg.RaftAddr, cfg.RaftAdvertise)
		if err != nil {
			return fmt.Errorf("raft transport: %w", err)
		}
		n.stream = stream
		n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 4, Timeout: 10 * time.Second, Logger: hl,
		})
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	// The database already holds everything up to its stored applied index (catchUpFromSnapshot made sure it
	// is at least the latest snapshot's), so restoring the snapshot at start would only throw that away.
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = hl
	if err = raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("%w: raft config: %v", ErrBadRequest, err)
	}

	existing, err := raft.HasExistingState(logStore, n.store, n.snaps)
	if err == nil {
		err = checkNodeID(cfg.DataDir, cfg.ID, existing)
	}
	if err != nil {
		return err
	}
	if !existing && cfg.Bootstrap && cfg.NonVoter {
		return fmt.Errorf("%w: a read replica (not a voter) cannot bootstrap a new cluster: give it a member to join", ErrBadRequest)
	}
	if existing {
		// Before it went down, this node, as a follower, would not vote for another leader until a heartbeat
		// timeout after its last contact with its leader, and that leader's lease for weak reads counts on it
		// (see renewLease). Restarted, it has forgotten its leader and would vote at once: waiting a heartbeat
		// timeout before Raft starts keeps the promise. (A node without state refuses votes until it joins.)
		time.Sleep(cfg.HeartbeatTimeout)
	}
	// A node that started without state and has not joined since (its marker is left from a run that stopped
	// before the join finished, by which time it may hold part of the log) is still one without its data.
	joining := filepath.Join(cfg.DataDir, joiningFile)
	_, statErr := os.Stat(joining)
	if !existing && !cfg.Bootstrap || statErr == nil {
		// It will join a cluster (or form one with --bootstrap-expect). The mark makes a restart before the
		// join returned ask again: a voter joins as a non-voter first, and only that join makes it one.
		n.joining.Store(true)
		if !cfg.VoteBeforeJoin {
			// No votes until it has joined (see voteGuard).
			if g, ok := newVoteGuard(n.transport, rc.LocalID, n.log); ok {
				n.guard, n.transport = g, g
			}
		}
		// Durable before Raft can store anything: after a power loss, entries and a term without the mark
		// would make this node one that votes with part of the log.
		if err := durable.WriteFile(joining, nil, 0o644); err != nil {
			return fmt.Errorf("mark the data dir as joining: %w", err)
		}
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, logStore, n.store, n.snaps, n.transport); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.hadState = existing
	n.boot.known = map[raft.ServerID]raft.ServerAddress{rc.LocalID: n.transport.LocalAddr()}
	if !existing && cfg.Bootstrap {
		boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: n.transport.LocalAddr()}}}
		if err = n.raft.BootstrapCluster(boot).Error(); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		n.log.Info("bootstrapped a new cluster")
	}
	n.obsCh = make(chan raft.Observation, 64)
	n.observer = raft.NewObserver(n.obsCh, false, nil)
	n.raft.RegisterObserver(n.observer)
	n.wg.Add(5)
	go n.snapshotBySize()
	go n.keepLease()
	go n.watchLeadership()
	go n.writer()
	go n.observe()
	n.log.Info("node started", "raft_addr", cfg.RaftAdvertise, "http_addr", cfg.HTTPAdvertise, "existing_state", existing,
		"applied_index", n.fsm.AppliedIndex())
	return nil
}

// catchUpFromSnapshot repairs what a node that stopped while installing a snapshot sent by the leader left
// behind: a log that ends below the snapshot (emptied), and a database behind it (the snapshot is restored:
// Raft had stored it, but the database had not been replaced yet).
func (n *Node) catchUpFromSnapshot() error {
	list, err := n.snaps.List()
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return n.checkLogReachesDatabase()
	}
	latest := list[0]
	// Raft empties the log after it installs a snapshot; a crash in between leaves a log that ends below the
	// snapshot, and the next append would leave a gap the log store refuses (the node could never append
	// again). Every entry of such a log is in the snapshot.
	if last, err := n.logs.LastIndex(); err != nil {
		return err
	} else if last > 0 && last < latest.Index {
		first, _ := n.logs.FirstIndex()
		n.log.Info("the raft log ends below the latest snapshot (a crash interrupted a snapshot install): emptying it",
			"first", first, "last", last, "snapshot_index", latest.Index)
		if err := n.logs.DeleteRange(first, last); err != nil {
			return fmt.Errorf("empty the raft log below snapshot %s: %w", latest.ID, err)
		}
	}
	if latest.Index <= n.fsm.AppliedIndex() {
		return n.checkLogReachesDatabase()
	}
	n.log.Info("database is behind the latest snapshot: restoring it", "applied_index", n.fsm.AppliedIndex(),
		"snapshot_index", latest.Index)
	_, rc, err := n.snaps.Open(latest.ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", latest.ID, err)
	}
	if err := n.fsm.Restore(rc); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", latest.ID, err)
	}
	return nil
}

// checkLogReachesDatabase refuses a database that has applied entries the Raft log and snapshots no longer
// hold. Raft writes an entry to its log before anything applies it, so the database's applied index can only be
// past the log's end if entries were lost from it (its directory removed or damaged, a disk that dropped
// writes). Started, the node would take the indexes of the lost entries for new ones, which the database
// skips as applied: writes acknowledged and never applied. A database with applied entries and no Raft state
// at all is the extreme case.
func (n *Node) checkLogReachesDatabase() error {
	applied := n.fsm.AppliedIndex()
	if applied == 0 {
		return nil
	}
	last, err := n.logs.LastIndex()
	if err != nil {
		return err
	}
	if list, err := n.snaps.List(); err != nil {
		return err
	} else if len(list) > 0 {
		last = max(last, list[0].Index)
	}
	if applied <= last {
		return nil
	}
	raftDir := filepath.Join(n.cfg.DataDir, "raft")
	return fmt.Errorf("data dir %s: the database has applied the log up to index %d, but the Raft log and snapshots in %s end at %d "+
		"(was it removed, or did the disk drop writes?): the entries of whatever log this node gets next would be skipped "+
		"as already applied. Remove %s as well to join a cluster afresh (it then gets the data from the cluster), or restore "+
		"the Raft directory", n.cfg.DataDir, applied, raftDir, last, filepath.Join(n.cfg.DataDir, "db"))
}

// Close stops the node: queued writes fail with ErrShuttingDown, Raft shuts down, files are closed. It does not
// hand over leadership; see TransferLeadership.
func (n *Node) Close() error {
	var err error
	n.stopOnce.Do(func() {
		close(n.stop)
		if n.raft != nil {
			n.raft.DeregisterObserver(n.observer)
			err = n.raft.Shutdown().Error()
		}
		close(n.raftDown)
		n.wg.Wait()
		n.closeResources()
		n.events.close()
		n.log.Info("node stopped")
	})
	return err
}

func (n *Node) closeResources() {
	if c, ok := n.transport.(io.Closer); ok {
		c.Close()
	}
	if n.logs != nil {
		n.logs.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
	if n.fsm != nil {
		n.fsm.Close()
	}
}

// await waits for a Raft future, or until ctx ends or Raft has shut down. raft never answers a future still
// queued in its (buffered) apply or verify channel when it shuts down, so a bare f.Error() can wait forever
// and hang Close; futures raft does answer while shutting down still give their own result. Shutdown returns
// ErrShuttingDown (for a proposal that means its outcome is unknown: an entry may be committed without its
// future being answered). A nil ctx waits without a deadline.
func (n *Node) await(ctx context.Context, f raft.Future) error { return n.awaitThen(ctx, f, nil) }

// awaitThen is await that also runs then (if not nil) once raft has answered f, even after await returned.
func (n *Node) awaitThen(ctx context.Context, f raft.Future, then func()) error {
	done := make(chan error, 1)
	go func() {
		err := f.Error()
		if then != nil {
			then()
		}
		done <- err
	}()
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	select {
	case err := <-done:
		return err
	case <-ctxDone:
		return ctx.Err()
	case <-n.raftDown:
		select { // raft may have answered just before it finished shutting down
		case err := <-done:
			return err
		default:
			return ErrShuttingDown
		}
	}
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.ID }

// FSM is the node's database.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// IsLeader reports whether this node leads and has applied every write of earlier leaders, so it may execute
// writes and serve leader reads.
func (n *Node) IsLeader() bool {
	return n.raft.State() == raft.Leader && n.readyTerm.Load() == n.raft.CurrentTerm() && !n.transferring.Load()
}

// Leader returns the leader's id and HTTP address as this node knows them; empty when there is no leader.
func (n *Node) Leader() (id, httpAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	m := n.fsm.Members()[string(lid)]
	return string(lid), m.HTTPAddr
}

// AppliedIndex is the index of the last entry applied to this node's database.
func (n *Node) AppliedIndex() uint64 { return n.fsm.AppliedIndex() }

// AppliedPosition is the index of the last entry applied here and its term, read together.
func (n *Node) AppliedPosition() Position { return n.fsm.AppliedPosition() }

// Term is the current Raft term.
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// WaitApplied waits until this node's database includes entry index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	if err := n.fsm.WaitApplied(ctx, index); err != nil {
		return translate(err, false)
	}
	return nil
}

// Ready reports whether the node can serve: it knows a leader, and it has applied everything it knows to be
// committed. The reason says why not.
func (n *Node) Ready() (bool, string) {
	select {
	case <-n.stop:
		return false, "shutting down"
	default:
	}
	if n.raft.State() != raft.Leader && n.Removed() {
		return false, "removed from the cluster: this node is no longer in its configuration"
	}
	if n.raft.State() == raft.Leader {
		if n.transferring.Load() {
			return false, "handing leadership to another voter"
		}
		if !n.IsLeader() {
			return false, "leader is applying earlier leaders' writes"
		}
		return true, ""
	}
	if n.Joining() {
		// Its join has not returned: it may still be catching up as a non-voter on the way to the voter it
		// asked to be, and a script that waits for every node to be ready expects the members it started.
		return false, "joining: the cluster has not finished adding this node"
	}
	if _, lid := n.raft.LeaderWithID(); lid == "" {
		return false, "no leader"
	}
	commit := n.raft.CommitIndex()
	if commit == 0 {
		return false, "waiting for the leader's commit index"
	}
	// The database's own applied index, not Raft's: Raft counts entries as applied once they are queued for
	// the FSM, and on restart it feeds the FSM entries its database already holds. A node becomes ready once
	// it has caught up; after that, the few entries in flight under write load do not make it unready (a load
	// balancer would eject every follower at every write), falling far behind does.
	applied := n.fsm.AppliedIndex()
	if applied >= commit {
		n.caughtUp.Store(true)
		return true, ""
	}
	if n.caughtUp.Load() && commit-applied <= readyLag {
		return true, ""
	}
	return false, fmt.Sprintf("catching up: applied index %d, commit index %d", applied, commit)
}

// readyLag is how many entries a node that has caught up once may trail the commit index and stay ready.
const readyLag = 1000

// stopping returns a context cancelled when the node stops.
func (n *Node) stopping(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
