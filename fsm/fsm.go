// Package fsm is rowboat's raft.FSM: a SQLite database in WAL mode that every node changes only by applying
// committed log entries (logical entries of row changes, and rowboat's own metadata commands).
//
// It owns the database file and every connection to it: the apply connection (the Raft goroutine's), the
// capture connection the leader executes client writes on before proposing them, a pool of read-only query
// connections, and the connections snapshots read from. The index and term of the last applied entry are
// stored in the database in the same transaction as the entry's changes, so a restarted node skips what it
// already holds instead of rebuilding its database from the log.
//
// It imports logical and hashicorp/raft, nothing else of rowboat's.
package fsm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
	"github.com/rowboatdb/rowboat/logical"
)

// Errors callers branch on.
var (
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("database closed")
	// ErrDiverged wraps the error given to Options.Halt when an entry could not be applied exactly: the
	// database no longer matches the leader's, and only a copy from the cluster repairs it.
	ErrDiverged = logical.ErrDiverged
	// ErrStorage wraps the error given to Options.Halt when an entry could not be applied because storage
	// failed (the disk is full, an I/O error, out of memory): the transaction rolled back, the database is
	// intact, and a restart applies the entry again once the cause is fixed.
	ErrStorage = errors.New("storage failed")
)

// DBFile is the name of the SQLite database inside the data directory.
const DBFile = "db.sqlite"

const (
	metaTable    = logical.ReservedPrefix + "meta"
	membersTable = logical.ReservedPrefix + "members"
	schemaSQL    = `CREATE TABLE IF NOT EXISTS ` + metaTable + `(k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ` + membersTable + `(id TEXT PRIMARY KEY, http_addr TEXT NOT NULL, raft_addr TEXT NOT NULL, voter INTEGER NOT NULL) WITHOUT ROWID`
	appliedQuery = `SELECT (SELECT v FROM ` + metaTable + ` WHERE k = 'applied_index'), (SELECT v FROM ` + metaTable + ` WHERE k = 'applied_term')`
	setApplied   = `INSERT INTO ` + metaTable + `(k, v) VALUES ('applied_index', ?1), ('applied_term', ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v`
)

// Options tune an FSM. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// ReadConns is the number of read-only query connections (default 4).
	ReadConns int
	// NoForeignKeys turns off enforcement of foreign-key constraints on client writes (on by default).
	NoForeignKeys bool
	// Halt is called on the goroutine applying the log when an entry cannot be applied, with an error that
	// wraps ErrDiverged (the database no longer matches the leader's) or ErrStorage (the disk is full, or
	// failed). It must stop the node; it must not return normally. The default panics.
	Halt func(err error)
	// OnSnapshot and OnRestore, if set, are called after a snapshot was written or installed, with its index.
	OnSnapshot, OnRestore func(index uint64, took time.Duration)
}

// FSM is rowboat's state machine. Apply, ApplyBatch, Snapshot and Restore follow raft.FSM's contract (one
// goroutine, Raft's); Execute is for one writer goroutine at a time; Query, AppliedIndex, WaitApplied and
// Members are safe from any goroutine.
type FSM struct {
	dir  string
	path string
	opts Options
	log  *slog.Logger

	// mu is held exclusively while Restore swaps the database file, shared by everything using a connection
	// other than the apply connection.
	mu       sync.RWMutex
	closed   bool
	applyDB  *sqlite3.Conn
	applier  *logical.Applier
	capDB    *sqlite3.Conn
	capturer *logical.Capturer
	capMu    sync.Mutex
	readers  chan *reader

	applied atomic.Uint64
	// applying is set to an apply's last position before its commit (and equals the applied one otherwise),
	// so it is never below the state any reader can see: reads report it when they cannot read the exact one.
	applying    atomic.Pointer[Position]
	appliedTerm atomic.Uint64
	appliedPos  atomic.Pointer[Position] // the applied index and its term, together (see AppliedPosition)
	// handed is the highest index raft has handed ApplyBatch since the database was opened (or the index of
	// the snapshot restored). Below the applied index while raft replays the log at start: see Snapshot.
	handed atomic.Uint64
	// walPages estimates the pages written to the WAL since the last checkpoint (apply goroutine only).
	walPages int
	logBytes atomic.Int64 // bytes of log entries applied since the last snapshot
	// The last applied entry's AppendedAt (the leader's clock when it appended it) and the local time it was
	// applied, in Unix nanoseconds; 0 when unknown (nothing applied since this process started or restored).
	appendedAt, appliedAt atomic.Int64

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced whenever the applied index moves

	membersMu sync.RWMutex
	members   map[string]Member
}

type reader struct {
	conn *sqlite3.Conn
	r    *logical.Reader
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// Open opens (creating if needed) the database in dir.
func Open(dir string, opts Options) (*FSM, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	if opts.Halt == nil {
		opts.Halt = func(err error) { panic(err) }
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	f := &FSM{
		dir: dir, path: filepath.Join(dir, DBFile), opts: opts,
		log:    opts.Logger.With("component", "fsm"),
		notify: make(chan struct{}),
	}
	removeLeftovers(dir, f.log, "snapshot-*.tmp", "restore-*.tmp")
	if err := f.openConns(); err != nil {
		return nil, err
	}
	return f, nil
}

// removeLeftovers deletes the temporary files in dir matching the patterns: left by a process that stopped
// while it wrote a snapshot or received one, they would otherwise pile up (a node that crashes while
// installing a large snapshot, again and again, would fill its disk).
func removeLeftovers(dir string, log *slog.Logger, patterns ...string) {
	for _, p := range patterns {
		names, _ := filepath.Glob(filepath.Join(dir, p))
		for _, name := range names {
			if err := os.Remove(name); err == nil {
				log.Info("removed a temporary file left by an earlier run", "file", name)
			}
		}
	}
}

// openConns opens every connection and loads the applied index and the members.
func (f *FSM) openConns() (err error) {
	defer func() {
		if err != nil {
			f.closeConns()
		}
	}()
	if f.applyDB, err = openRW(f.path); err != nil {
		return err
	}
	if err = f.applyDB.Exec(schemaSQL); err != nil {
		return fmt.Errorf("create metadata tables: %w", err)
	}
	if f.applier, err = logical.NewApplier(f.applyDB); err != nil {
		return err
	}
	if f.capDB, err = openRW(f.path); err != nil {
		return err
	}
	if f.capturer, err = logical.NewCapturer(f.capDB); err != nil {
		return err
	}
	if f.opts.NoForeignKeys {
		if err = f.capturer.SetForeignKeys(false); err != nil {
			return err
		}
	}
	f.readers = make(chan *reader, f.opts.ReadConns)
	for range f.opts.ReadConns {
		c, err := openRO(f.path)
		if err != nil {
			return err
		}
		r, err := logical.NewReader(c)
		if err != nil {
			c.Close()
			return err
		}
		f.readers <- &reader{conn: c, r: r}
	}
	return f.load()
}

// busyTimeoutMS is how long a statement on a read-write connection waits for a lock another holds (tests
// shorten it). The apply connection waits on past it (see begin).
var busyTimeoutMS = 10_000

func openRW(path string) (*sqlite3.Conn, error) {
	c, err := sqlite3.OpenVFS(path, sqlite3.OpenReadWrite|sqlite3.OpenCreate, sqlite3.ProcessExclusive)
	if err != nil {
		return nil, err
	}
	c.SetBusyTimeout(busyTimeoutMS)
	// synchronous=NORMAL in WAL mode may lose the last transactions on power loss, never on a process crash;
	// the Raft log (fsynced) still holds them and they are above the stored applied index, so they re-apply.
	// Checkpoints are the apply's own (see checkpoint): SQLite's automatic one ignores its errors.
	if err := c.Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0"); err != nil {
		c.Close()
		return nil, fmt.Errorf("configure %s: %w", path, err)
	}
	return c, nil
}

func openRO(path string) (*sqlite3.Conn, error) {
	c, err := sqlite3.OpenVFS(path, sqlite3.OpenReadOnly, sqlite3.ProcessExclusive)
	if err != nil {
		return nil, err
	}
	c.SetBusyTimeout(busyTimeoutMS)
	return c, nil
}

func (f *FSM) closeConns() {
	if f.readers != nil {
	drain:
		for {
			select {
			case r := <-f.readers:
				r.r.Close()
				r.conn.Close()
			default:
				break drain
			}
		}
	}
	if f.capturer != nil {
		f.capturer.Close()
		f.capturer = nil
	}
	if f.capDB != nil {
		f.capDB.Close()
		f.capDB = nil
	}
	if f.applier != nil {
		f.applier.Close()
		f.applier = nil
	}
	if f.applyDB != nil {
		f.applyDB.Close()
		f.applyDB = nil
	}
}

// load reads the applied index and the members from the database.
func (f *FSM) load() error {
	s, _, err := f.applyDB.Prepare(appliedQuery)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Step(); err != nil {
		return fmt.Errorf("read applied index: %w", err)
	}
	idx, _ := s.Column(0).(int64)
	term, _ := s.Column(1).(int64)
	pos := &Position{Index: uint64(idx), Term: uint64(term)}
	f.applying.Store(pos)
	f.appliedPos.Store(pos)
	f.applied.Store(uint64(idx))
	f.appliedTerm.Store(uint64(term))
	f.appendedAt.Store(0) // a database opened or restored: when its last entry was appended is not known
	f.appliedAt.Store(0)

	m, _, err := f.applyDB.Prepare(`SELECT id, http_addr, raft_addr, voter FROM ` + membersTable)
	if err != nil {
		return err
	}
	defer m.Close()
	members := make(map[string]Member)
	for {
		row, err := m.Step()
		if err != nil {
			return fmt.Errorf("read members: %w", err)
		}
		if !row {
			break
		}
		id, _ := m.Column(0).(string)
		http, _ := m.Column(1).(string)
		raftAddr, _ := m.Column(2).(string)
		members[id] = Member{ID: id, HTTPAddr: http, RaftAddr: raftAddr, Voter: m.ColumnInt64(3) != 0}
	}
	f.membersMu.Lock()
	f.members = members
	f.membersMu.Unlock()
	f.publish()
	return nil
}

// Close closes every connection. Snapshots being persisted keep their own connection until released.
func (f *FSM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.closeConns()
	return nil
}

// Path is the database file.
func (f *FSM) Path() string { return f.path }

// AppliedIndex is the index of the last log entry applied to the database.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// LogBytesSinceSnapshot is the size of the log entries applied since the last snapshot began.
func (f *FSM) LogBytesSinceSnapshot() int64 { return f.logBytes.Load() }

// AppliedPosition is the index of the last log entry applied to the database and its term, read together
// (AppliedIndex and AppliedTerm, read one after the other, may straddle an apply).
func (f *FSM) AppliedPosition() Position {
	if p := f.appliedPos.Load(); p != nil {
		return *p
	}
	return Position{}
}

// AppliedTerm is the term of the last log entry applied to the database.
func (f *FSM) AppliedTerm() uint64 { return f.appliedTerm.Load() }

// Changed returns a channel closed the next time the applied index moves.
func (f *FSM) Changed() <-chan struct{} {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	return f.notify
}

func (f *FSM) publish() {
	f.notifyMu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
}

// WaitApplied waits until the applied index is at least index, or ctx ends (returning ctx.Err()).
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := f.Changed()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Members returns every member's metadata as of the applied index.
func (f *FSM) Members() map[string]Member {
	f.membersMu.RLock()
	defer f.membersMu.RUnlock()
	out := make(map[string]Member, len(f.members))
	for k, v := range f.members {
		out[k] = v
	}
	return out
}

// Apply applies one log entry. See ApplyBatch.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed log entries in one SQLite transaction, together with the new applied index.
// Entries at or below the stored applied index are already in the database and are skipped. An entry that
// cannot be applied is fatal: Options.Halt is called. The responses are nil.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	if len(logs) > 0 && logs[len(logs)-1].Index > f.handed.Load() {
		f.handed.Store(logs[len(logs)-1].Index)
	}
	resps := make([]any, len(logs))
	applied, appliedTerm := f.applied.Load(), f.appliedTerm.Load()
	var last *raft.Log
	var memberChanges []func(map[string]Member)
	batchBytes := 0
	for i, l := range logs {
		if l.Index <= applied {
			// Already applied, so this must be the same entry the database saw: the entry at the applied index
			// has its term, and terms never decrease along a log. Anything else is a log that lost entries
			// this database applied, and whose indexes now hold new ones: skipping them would acknowledge
			// writes that are never applied.
			if appliedTerm > 0 && (l.Index == applied && l.Term != appliedTerm || l.Term > appliedTerm) {
				f.diverged(l, fmt.Errorf("entry %d of term %d is at or below the applied index %d of term %d: the log is not the one this database applied",
					l.Index, l.Term, applied, appliedTerm))
				return resps
			}
			continue
		}
		// Configuration entries change nothing here, but they move the applied index: a read index may point at
		// one. (Raft's own no-op and barrier entries never reach the FSM; see node's leader barrier.)
		if l.Type != raft.LogCommand && l.Type != raft.LogConfiguration {
			continue
		}
		if last == nil {
			if err := f.begin(); err != nil {
				f.diverged(l, fmt.Errorf("begin: %w", err))
				return resps
			}
		}
		last = l
		f.logBytes.Add(int64(len(l.Data)))
		batchBytes += len(l.Data)
		if l.Type != raft.LogCommand {
			continue
		}
		change, resp, err := f.applyOne(l)
		resps[i] = resp
		if err != nil {
			f.applier.Rollback()
			f.diverged(l, err)
			return resps
		}
		if change != nil {
			memberChanges = append(memberChanges, change)
		}
	}
	if last == nil {
		return resps
	}
	if err := f.applier.Exec(setApplied, int64(last.Index), int64(last.Term)); err != nil {
		f.applier.Rollback()
		f.diverged(last, fmt.Errorf("store applied index: %w", err))
		return resps
	}
	pos := &Position{Index: last.Index, Term: last.Term}
	f.applying.Store(pos)
	if err := f.applier.Commit(); err != nil {
		f.diverged(last, err)
		return resps
	}
	if len(memberChanges) > 0 {
		f.membersMu.Lock()
		for _, c := range memberChanges {
			c(f.members)
		}
		f.membersMu.Unlock()
	}
	f.appliedTerm.Store(last.Term)
	var appendedAt int64
	if !last.AppendedAt.IsZero() {
		appendedAt = last.AppendedAt.UnixNano()
	}
	f.appendedAt.Store(appendedAt)
	f.appliedAt.Store(time.Now().UnixNano())
	f.appliedPos.Store(pos)
	f.applied.Store(last.Index)
	f.publish()
	// Pages written, roughly: the applied index's, and a table's and an index's for every 4 KiB of changes.
	if f.walPages += 2 + batchBytes/2048; f.walPages >= checkpointPages {
		f.checkpoint(last)
	}
	return resps
}

// checkpointPages is about how many pages the WAL gathers between checkpoints, as SQLite's automatic one.
const checkpointPages = 1000

// checkpoint copies the WAL into the database file. It is the apply's own, in place of SQLite's automatic one,
// which ignores errors: a checkpoint whose fsync failed is tried again later, and the pages the kernel failed
// to write may by then read back stale and be copied into the database, a silent divergence. A storage error
// stops the node instead: at restart SQLite recovers what reached the WAL, and the log re-applies the rest.
// A checkpoint that cannot run now (another holds a lock it needs) waits for the next turn.
func (f *FSM) checkpoint(last *raft.Log) {
	err := f.applyDB.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	if err == nil || sqlite3.IsCode(err, sqlite3.Busy) || sqlite3.IsCode(err, sqlite3.Locked) {
		if err == nil {
			f.walPages = 0
		}
		return
	}
	f.diverged(last, fmt.Errorf("checkpoint: %w", err))
}

// begin opens the apply transaction. While this node, as leader, executes a batch of writes, the capture
// connection holds the database's write lock until the batch's deadline at most; entries can arrive meanwhile
// (membership changes, or a new leader's writes when this one was deposed). Waiting for the lock is not a
// divergence, so begin waits as long as it takes.
func (f *FSM) begin() error {
	start := time.Now()
	var logged time.Time
	for {
		err := f.applier.Begin()
		if err == nil || !sqlite3.IsCode(err, sqlite3.Busy) {
			return err
		}
		if time.Since(logged) >= 5*time.Second {
			logged = time.Now()
			f.log.Warn("apply waits for the write lock, which a write being executed holds", "waited", time.Since(start).Round(time.Millisecond))
		}
	}
}

// ApplyTimes returns when the leader appended the last entry applied here (its clock, raft.Log.AppendedAt) and
// when this node applied it (its own clock); zero times when not known. The difference is how far behind the
// leader this node was at that apply.
func (f *FSM) ApplyTimes() (appendedAt, appliedAt time.Time) {
	if a := f.appendedAt.Load(); a != 0 {
		appendedAt = time.Unix(0, a)
	}
	if a := f.appliedAt.Load(); a != 0 {
		appliedAt = time.Unix(0, a)
	}
	return appendedAt, appliedAt
}

func (f *FSM) diverged(l *raft.Log, err error) {
	if se := storageFailure(err); se != nil {
		// What SQLite said: on its way up it may have been wrapped as a divergence, which it is not.
		err = fmt.Errorf("apply log entry %d (term %d): %w: %s", l.Index, l.Term, ErrStorage, se.Msg)
		f.log.Error("cannot apply the log: storage failed; stopping (the database is intact)", "index", l.Index, "term", l.Term, "err", err)
		f.opts.Halt(err)
		return
	}
	if !errors.Is(err, ErrDiverged) {
		err = fmt.Errorf("%w: %w", ErrDiverged, err)
	}
	err = fmt.Errorf("apply log entry %d (term %d): %w", l.Index, l.Term, err)
	f.log.Error("replica diverged: stopping", "index", l.Index, "term", l.Term, "err", err)
	f.opts.Halt(err)
}

// storageFailure returns SQLite's error if it refused for want of disk, memory or a working file system rather
// than for anything about the data, and nil otherwise: a full disk is not a diverged replica, and removing the
// data directory, which is the cure for one, would be the wrong advice for the other.
func storageFailure(err error) *sqlite3.Error {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code {
	case sqlite3.Full, sqlite3.IOErr, sqlite3.NoMem, sqlite3.CantOpen, sqlite3.ReadOnly:
		return se
	}
	return nil
}

// applyOne applies one command inside the open transaction. It returns the change to the in-memory member
// table to make once the transaction commits, and the entry's apply response (ErrStaleEntry for a fenced entry
// it skipped, nil otherwise).
func (f *FSM) applyOne(l *raft.Log) (func(map[string]Member), any, error) {
	data := l.Data
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%w: empty log entry", ErrBadCommand)
	}
	switch CommandType(data[0]) {
	case CmdEntry:
		e, err := logical.Decode(data[1:])
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, f.applier.Apply(e)
	case CmdFencedEntry:
		term, n := binary.Uvarint(data[1:])
		if n <= 0 {
			return nil, nil, fmt.Errorf("%w: fenced entry without a term", ErrBadCommand)
		}
		e, err := logical.Decode(data[1+n:])
		if err != nil {
			return nil, nil, err
		}
		if term != l.Term {
			f.log.Warn("skipping a write executed in an earlier term than it was logged in", "index", l.Index,
				"term", l.Term, "executed_in_term", term)
			return nil, ErrStaleEntry, nil
		}
		return nil, nil, f.applier.Apply(e)
	case CmdNoop:
		return nil, nil, nil
	case CmdSetMember:
		m, err := decodeMember(data[1:])
		if err != nil {
			return nil, nil, err
		}
		err = f.applier.Exec(`INSERT INTO `+membersTable+`(id, http_addr, raft_addr, voter) VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT(id) DO UPDATE SET http_addr = excluded.http_addr, raft_addr = excluded.raft_addr, voter = excluded.voter`,
			m.ID, m.HTTPAddr, m.RaftAddr, m.Voter)
		return func(ms map[string]Member) { ms[m.ID] = m }, nil, err
	case CmdRemoveMember:
		m, err := decodeMember(data[1:])
		if err != nil {
			return nil, nil, err
		}
		err = f.applier.Exec(`DELETE FROM `+membersTable+` WHERE id = ?1`, m.ID)
		return func(ms map[string]Member) { delete(ms, m.ID) }, nil, err
	default:
		return nil, nil, fmt.Errorf("%w: unknown command type %d", ErrBadCommand, data[0])
	}
}

// Execute runs client write requests on the capture connection against the applied state and rolls them back,
// returning each request's results and the Raft payload (a CmdFencedEntry) carrying the row changes they made.
// term is the leadership term the caller executes them in: the entry applies only if it is logged in that term
// (see ErrStaleEntry). The caller must not call Execute again before that payload, if proposed, is applied:
// Execute must see every committed write.
func (f *FSM) Execute(ctx context.Context, term uint64, reqs []logical.Request) ([][]logical.Result, []byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return nil, nil, ErrClosed
	}
	f.capMu.Lock()
	defer f.capMu.Unlock()
	results, entry, err := f.capturer.Execute(ctx, reqs)
	if err != nil {
		return nil, nil, err
	}
	payload, err := logical.AppendEncode(binary.AppendUvarint([]byte{byte(CmdFencedEntry)}, term), entry)
	if err != nil {
		return nil, nil, fmt.Errorf("encode entry: %w", err)
	}
	return results, payload, nil
}

// Position is a point in the log: an entry's index and the term it was logged in. Terms never decrease along
// the log, so positions of one log order the same way by index or by (term, index): a client can use one as
// a fencing token that only grows.
type Position struct {
	Index, Term uint64
}

// Query runs read-only statements on a read connection, all against one consistent state, and returns their
// results with the position of that state, exactly. Writes are refused per statement (logical.ErrNotReadOnly).
func (f *FSM) Query(ctx context.Context, stmts []logical.Statement) ([]logical.Result, Position, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return nil, Position{}, ErrClosed
	}
	var r *reader
	select {
	case r = <-f.readers:
	case <-ctx.Done():
		return nil, Position{}, ctx.Err()
	}
	defer func() { f.readers <- r }()
	// ReadTx reads the exact position when it runs a transaction. The lone-statement fast path does not: the
	// state it read is at least the one applied before it began, and at most the one being applied after it
	// ended (applying is stored before a commit). When the two are the same, that is the position; otherwise
	// an apply committed meanwhile, and the read runs again in a transaction that reads its position.
	before := f.applied.Load()
	results, meta, err := r.r.ReadTx(ctx, positionQuery, stmts)
	if err == nil && meta == nil {
		if after := *f.applying.Load(); after.Index == before {
			return results, after, nil
		}
		results, meta, err = r.r.ReadInTx(ctx, positionQuery, stmts)
	}
	if err != nil {
		return nil, Position{}, err
	}
	if len(meta) == 2 && meta[0] == nil && meta[1] == nil {
		return results, Position{}, nil // nothing applied yet
	}
	var idx, term int64
	ok := len(meta) == 2
	if ok {
		idx, ok = meta[0].(int64)
	}
	if ok {
		term, ok = meta[1].(int64)
	}
	if !ok {
		return nil, Position{}, fmt.Errorf("read the applied position: got %v", meta)
	}
	return results, Position{Index: uint64(idx), Term: uint64(term)}, nil
}

// positionQuery reads the applied position inside a read transaction.
const positionQuery = `SELECT (SELECT v FROM ` + metaTable + ` WHERE k = 'applied_index'), (SELECT v FROM ` + metaTable + ` WHERE k = 'applied_term')`

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (w *errWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	w.err = err
	return n, err
}
