// Command rowboatd runs one rowboat node: a SQLite database replicated by Raft, served over HTTP.
//
// It is the only place that knows every concrete type: it reads the configuration, opens the node, serves
// the HTTP API, joins a cluster when asked to, and stops gracefully on SIGTERM or SIGINT (a second signal
// stops at once).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on ROWBOAT_PPROF_ADDR, never on the API port
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rowboatdb/rowboat/config"
	"github.com/rowboatdb/rowboat/failover"
	"github.com/rowboatdb/rowboat/fsm"
	"github.com/rowboatdb/rowboat/httpapi"
	"github.com/rowboatdb/rowboat/internal/version"
	"github.com/rowboatdb/rowboat/node"
)

// store is what the HTTP API serves: the node, with the failover hub's event stream.
type store struct {
	*node.Node
	*failover.Hub
}

var _ httpapi.Store = store{}

func main() {
	for _, a := range os.Args[1:] {
		if a == "--version" || a == "-version" {
			fmt.Println("rowboatd", version.String())
			return
		}
	}
	cfg, err := config.Load(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, config.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rowboatd: %v\n", err)
		os.Exit(2)
	}
	for _, name := range config.UnknownEnv(os.Environ()) {
		fmt.Fprintf(os.Stderr, "rowboatd: warning: %s is not a rowboatd setting (a typo? rowboatd --help lists them; each flag's variable is ROWBOAT_ and its name)\n", name)
	}
	if err := run(cfg); err != nil {
		slog.Error("rowboatd stopped", "err", err)
		os.Exit(1)
	}
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h).With("node", cfg.ID)
}

func run(cfg config.Config) error {
	log := newLogger(cfg)
	slog.SetDefault(log)

	// Bind HTTP first: a port in use is reported before Raft starts.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	if addr := os.Getenv("ROWBOAT_PPROF_ADDR"); addr != "" {
		go func() { log.Warn("pprof server stopped", "err", http.ListenAndServe(addr, nil)) }()
	}
	n, err := node.Open(node.Config{
		ID: cfg.ID, RaftAddr: cfg.RaftAddr, RaftAdvertise: cfg.RaftAdvertise, HTTPAdvertise: cfg.HTTPAdvertise,
		DataDir: cfg.DataDir, Bootstrap: len(cfg.Join) == 0, BootstrapExpect: cfg.BootstrapExpect, VoteBeforeJoin: cfg.VoteBeforeJoin, NonVoter: !cfg.Voter,
		HeartbeatTimeout: cfg.HeartbeatTimeout, ElectionTimeout: cfg.ElectionTimeout,
		LeaderLeaseTimeout: cfg.LeaderLeaseTimeout, CommitTimeout: cfg.CommitTimeout, ApplyTimeout: cfg.ApplyTimeout,
		SnapshotThreshold: cfg.SnapshotThreshold, SnapshotInterval: cfg.SnapshotInterval, TrailingLogs: cfg.TrailingLogs,
		SnapshotLogBytes: cfg.SnapshotLogBytes, NoForeignKeys: !cfg.ForeignKeys,
		MaxBatch: cfg.MaxBatch, Logger: log, LogOutput: os.Stderr, LogLevel: cfg.LogLevel, LogJSON: cfg.LogFormat == "json",
		Halt: func(err error) {
			switch {
			case errors.Is(err, fsm.ErrStorage):
				log.Error("FATAL: this node cannot apply the log because its storage failed (a full disk, an I/O error); stopping. "+
					"Its database is intact: fix the cause and restart the node, which applies the entry again. Do not remove the data directory.", "err", err)
			case errors.Is(err, fsm.ErrDiverged):
				log.Error("FATAL: this node's database has diverged from the cluster; stopping. Remove its data directory and rejoin it to rebuild it from the leader.", "err", err)
			default:
				log.Error("FATAL: this node cannot apply the log; stopping.", "err", err)
			}
			os.Exit(3)
		},
	})
	if err != nil {
		ln.Close()
		return err
	}
	hub := failover.NewHub(n, 512)
	api := httpapi.New(store{n, hub}, httpapi.Options{Logger: log, MaxBodyBytes: cfg.MaxBodyBytes, Timeout: cfg.ApplyTimeout, MaxTimeout: cfg.MaxTimeout})
	// Idle keep-alive connections are closed after a while; a request's body and answer have deadlines of
	// their own (see httpapi's limitBody).
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	srv.RegisterOnShutdown(api.CloseStreams)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("serving HTTP", "addr", ln.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A node that has been a member rejoins by itself; one that has not (even if an earlier attempt to join
	// failed after its data directory was created) asks again.
	if n.HadState() {
		go announce(ctx, log, cfg, n)
	}
	if len(cfg.Join) == 0 && n.Joining() {
		// Its data dir says a join began and never finished, and nothing will finish it: it is not ready, it
		// may be a non-voter on its way to be a voter, and (unless --vote-before-join) it refuses votes until
		// then, which a cluster may need.
		log.Warn("this node started to join a cluster and never finished (its data dir is marked joining), and no --join was given: "+
			"it is not ready, and refuses every vote, until it joins; restart it with --join (a member's HTTP address) to finish", "data_dir", cfg.DataDir)
	}
	if len(cfg.Join) > 0 && (!n.HadState() || n.Joining()) {
		if err := join(ctx, log, cfg, n); err != nil {
			shutdown(log, n, srv, false)
			if ctx.Err() != nil { // a signal while joining: a clean stop
				log.Info("stopped before joining a cluster")
				return nil
			}
			return err
		}
	}

	select {
	case err := <-serveErr:
		shutdown(log, n, srv, false)
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	stop()
	// A second signal stops at once.
	hard := make(chan os.Signal, 1)
	signal.Notify(hard, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-hard
		log.Warn("second signal: stopping at once")
		os.Exit(1)
	}()
	shutdown(log, n, srv, true)
	return nil
}

// shutdown stops serving and closes the node. A leader first hands leadership to a caught-up voter, so
// clients retrying on 503 see no failed write.
func shutdown(log *slog.Logger, n *node.Node, srv *http.Server, graceful bool) {
	if graceful && n.IsLeader() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.TransferLeadership(ctx, ""); errors.Is(err, node.ErrBadRequest) {
			log.Info("no leadership transfer before stopping", "why", err) // no other voter: a cluster of one
		} else if err != nil {
			log.Warn("leadership transfer before stopping", "err", err)
		} else {
			log.Info("leadership transferred before stopping")
		}
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	if err := n.Close(); err != nil {
		log.Warn("close node", "err", err)
	}
}

// joiner is the node that join asks a cluster to add.
type joiner interface {
	Fresh() bool // started without Raft state, and not in a cluster yet
	Joined()     // a cluster added it
	// AppliedIndex is how far it has applied the log: while it rises, a voter catching up as a non-voter
	// is making progress, and its join attempts (which time out until it has caught up) go on.
	AppliedIndex() uint64
	// AdoptVoters forms the configuration another node formed a new cluster with (--bootstrap-expect).
	AdoptVoters(voters []node.JoinRequest) (bool, error)
}

// joinClient sends join requests and bootstrap notifications.
var joinClient = &http.Client{Timeout: 15 * time.Second}

// postJoin POSTs req to path (/join or /notify) on the node at addr (host:port or a URL) and returns the
// answer's status code and its status line and body, for a log.
func postJoin(ctx context.Context, addr, path string, req node.JoinRequest) (int, string, error) {
	code, msg, _, err := postJoinBody(ctx, addr, path, req)
	return code, msg, err
}

// postJoinBody is postJoin that also returns the answer's body.
func postJoinBody(ctx context.Context, addr, path string, req node.JoinRequest) (int, string, []byte, error) {
	body, _ := json.Marshal(req)
	url := strings.TrimSuffix(addr, "/")
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	resp, err := joinClient.Do(hr)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Status + ": " + string(bytes.TrimSpace(answer)), answer, nil
}

// join asks the members in cfg.Join, in turn, to add this node, until one accepts or ctx ends. With
// --bootstrap-expect, each round first tells every one of them (POST /notify) that this node is waiting to
// form a new cluster; once they have formed it, the join that follows records this node's HTTP address like
// any other.
func join(ctx context.Context, log *slog.Logger, cfg config.Config, n joiner) error {
	post := func(addr, path string) (int, string, error) {
		// Fresh until this node has joined or formed a cluster (see node.JoinRequest).
		return postJoin(ctx, addr, path, node.JoinRequest{ID: cfg.ID, RaftAddr: cfg.RaftAdvertise, HTTPAddr: cfg.HTTPAdvertise,
			Voter: cfg.Voter, Fresh: n.Fresh()})
	}
	// notifyAll tells every member that this node waits to form a new cluster (--bootstrap-expect).
	notifyAll := func() error {
		for _, addr := range cfg.Join {
			code, msg, body, err := postJoinBody(ctx, addr, "/notify", node.JoinRequest{ID: cfg.ID, RaftAddr: cfg.RaftAdvertise,
				HTTPAddr: cfg.HTTPAdvertise, Voter: cfg.Voter, Fresh: n.Fresh()})
			switch {
			case err != nil:
				log.Info("bootstrap: notify failed; retrying", "to", addr, "err", err)
			case code == http.StatusBadRequest:
				return fmt.Errorf("bootstrap: %s refused this node: %s", addr, msg)
			case code != http.StatusOK:
				log.Info("bootstrap: notify failed; retrying", "to", addr, "err", msg)
			default:
				// A node that formed the cluster lists its voters: one this node has not heard from may have
				// died meanwhile, and this node's vote is needed for a leader.
				var formed struct {
					Voters []node.JoinRequest `json:"voters"`
				}
				if json.Unmarshal(body, &formed) == nil && len(formed.Voters) > 0 && n.Fresh() {
					if _, err := n.AdoptVoters(formed.Voters); err != nil {
						log.Warn("bootstrap: could not take the voters of the cluster formed", "from", addr, "err", err)
					}
				}
			}
		}
		return nil
	}
	delay := 200 * time.Millisecond
	const patience = 5 * time.Minute
	deadline := time.Now().Add(patience)
	hinted := map[string]bool{}
	var notAPISince time.Time // since when no join address has answered as rowboat's HTTP API (zero: one did)
	applied := n.AppliedIndex()
	for attempt := 1; ; attempt++ {
		// A voter is made one once it has caught up, which for a large database takes longer than a join
		// request may: as long as this node keeps applying the log, it is getting there.
		if a := n.AppliedIndex(); a > applied {
			applied, deadline = a, time.Now().Add(patience)
		}
		// Notifications first: a node that formed the cluster meanwhile answers with its voters, so this one
		// joins it as a voter it formed, not as a stranger without data (which is removed and added again).
		if cfg.BootstrapExpect > 1 {
			if err := notifyAll(); err != nil {
				return err
			}
		}
		allNotAPI := true
		for _, addr := range cfg.Join {
			code, msg, err := post(addr, "/join")
			if code == http.StatusOK {
				log.Info("joined the cluster", "via", addr, "voter", cfg.Voter)
				n.Joined()
				return nil
			}
			if code == http.StatusBadRequest {
				return fmt.Errorf("join via %s refused: %s", addr, msg)
			}
			// Something answered, but not as a rowboat node's HTTP API: most likely a Raft port (rqlite 8's
			// -join takes the Raft address; rowboat's takes the HTTP one).
			notAPI := code == http.StatusNotFound || (err != nil && ctx.Err() == nil &&
				(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "malformed HTTP")))
			allNotAPI = allNotAPI && notAPI
			if notAPI && !hinted[addr] {
				hinted[addr] = true
				log.Warn("the join address does not answer as rowboat's HTTP API: --join takes a member's HTTP address (its --http-addr, such as 127.0.0.1:4001), not its Raft address",
					"via", addr)
			}
			if err == nil {
				err = errors.New(msg)
			}
			log.Info("join attempt failed; retrying", "via", addr, "attempt", attempt, "err", err)
		}
		switch {
		case !allNotAPI:
			notAPISince = time.Time{}
		case notAPISince.IsZero():
			notAPISince = time.Now()
		}
		// Long enough that a member restarting (whose closing listener may reset a connection or two) is not
		// taken for a Raft port.
		if !notAPISince.IsZero() && time.Since(notAPISince) >= notAPIPatience {
			return fmt.Errorf("no address in --join %v answers as rowboat's HTTP API (--join takes a member's --http-addr, such as 127.0.0.1:4001, not its Raft address)", cfg.Join)
		}
		if time.Now().After(deadline) {
			if n.Fresh() {
				return fmt.Errorf("could not join via %v (if the cluster has no leader because it waits for this node's vote, "+
					"which it refused until it joined, restart this node with --vote-before-join)", cfg.Join)
			}
			return fmt.Errorf("could not join via %v", cfg.Join)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// notAPIPatience is how long join goes on while no --join address answers as rowboat's HTTP API.
var notAPIPatience = 30 * time.Second

// member is what announce needs from the node.
type member interface {
	ID() string
	Members() ([]node.Member, error)
	Leader() (id, httpAddr string)
	Ready() (bool, string)
}

// announce keeps the HTTP address the cluster records for this node up to date. A node restarted on its
// data directory does not join again, so one restarted with a new --http-addr (or --http-advertise) was
// still recorded at its old address: reads forwarded to it, leadership confirmations and /nodes went there.
// It asks the leader to record the address, as a join with its current identity (Raft address and suffrage
// unchanged) does, until the recorded one is right. A node the configuration does not list (removed) asks
// nothing, and the leader records its own address itself.
func announce(ctx context.Context, log *slog.Logger, cfg config.Config, n member) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	warned := false
	for {
		// Only once it has caught up: a node removed while it was down still finds itself in its old
		// configuration, and must not ask to be added again.
		if ok, _ := n.Ready(); !ok {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			continue
		}
		members, err := n.Members()
		if err != nil {
			return // shutting down
		}
		i := slices.IndexFunc(members, func(m node.Member) bool { return m.ID == n.ID() })
		if i < 0 {
			return
		}
		self := members[i]
		if self.Voter != cfg.Voter && !warned {
			warned = true
			log.Warn("--voter differs from this member's suffrage, which a restart does not change: remove it and join again to change it",
				"voter", self.Voter, "--voter", cfg.Voter)
		}
		if self.HTTPAddr == cfg.HTTPAdvertise {
			return
		}
		if id, addr := n.Leader(); id != "" && id != n.ID() && addr != "" {
			req := node.JoinRequest{ID: self.ID, RaftAddr: self.RaftAddr, HTTPAddr: cfg.HTTPAdvertise, Voter: self.Voter}
			if code, msg, err := postJoin(ctx, addr, "/join", req); err != nil || code != http.StatusOK {
				log.Info("recording this node's new HTTP address: retrying", "recorded", self.HTTPAddr, "http_addr", cfg.HTTPAdvertise, "err", err, "answer", msg)
			} else {
				log.Info("asked the leader to record this node's new HTTP address", "was", self.HTTPAddr, "http_addr", cfg.HTTPAdvertise)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
