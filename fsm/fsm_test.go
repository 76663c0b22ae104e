package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
	"github.com/rowboatdb/rowboat/logical"
)

func open(tb testing.TB, dir string) *FSM {
	tb.Helper()
	f, err := Open(dir, Options{Halt: func(err error) { tb.Errorf("diverged: %v", err) }})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// write executes SQL through capture and applies the payload at index, as a leader does.
func write(tb testing.TB, f *FSM, index uint64, sql ...string) []logical.Result {
	tb.Helper()
	req := logical.Request{}
	for _, s := range sql {
		req.Statements = append(req.Statements, logical.Statement{SQL: s})
	}
	res, payload, err := f.Execute(context.Background(), 1, []logical.Request{req})
	if err != nil {
		tb.Fatalf("Execute: %v", err)
	}
	f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: payload})
	return res[0]
}

func query(tb testing.TB, f *FSM, sql string) ([][]logical.Value, uint64) {
	tb.Helper()
	res, idx, err := f.Query(context.Background(), []logical.Statement{{SQL: sql}})
	if err != nil {
		tb.Fatalf("Query: %v", err)
	}
	if res[0].Error != "" {
		tb.Fatalf("Query %q: %s", sql, res[0].Error)
	}
	return res[0].Rows, idx.Index
}

func TestFSM_ApplyAndQuery(t *testing.T) {
	f := open(t, t.TempDir())
	write(t, f, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, x)")
	res := write(t, f, 2, "INSERT INTO t(x) VALUES (random())", "INSERT INTO nosuch VALUES (1)")
	if res[0].RowsAffected != 1 || res[1].Error == "" {
		t.Fatalf("results = %+v", res)
	}
	rows, idx := query(t, f, "SELECT count(*) FROM t")
	if got, want := idx, uint64(2); got != want {
		t.Fatalf("index = %d, want %d", got, want)
	}
	if rows[0][0] != int64(1) {
		t.Fatalf("count = %v", rows[0][0])
	}
	if got := f.AppliedIndex(); got != 2 {
		t.Fatalf("AppliedIndex() = %d, want 2", got)
	}
	// A replayed entry is skipped, not applied twice.
	res2, payload, err := f.Execute(context.Background(), 1, []logical.Request{{Statements: []logical.Statement{{SQL: "INSERT INTO t(x) VALUES (1)"}}}})
	if err != nil || res2[0][0].Error != "" {
		t.Fatalf("Execute: %v %+v", err, res2)
	}
	f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: payload})
	if rows, _ := query(t, f, "SELECT count(*) FROM t"); rows[0][0] != int64(1) {
		t.Fatalf("replayed entry applied: count = %v", rows[0][0])
	}
}

func TestFSM_QueryRefusesWrites(t *testing.T) {
	f := open(t, t.TempDir())
	write(t, f, 1, "CREATE TABLE t(x)")
	for _, sql := range []string{
		"INSERT INTO t VALUES (1)", "DELETE FROM t", "CREATE TABLE u(x)", "BEGIN", "ATTACH 'x.db' AS x",
		"PRAGMA journal_mode = DELETE", "PRAGMA wal_checkpoint", "SELECT load_extension('x')",
	} {
		_, _, err := f.Query(context.Background(), []logical.Statement{{SQL: "SELECT 1"}, {SQL: sql}})
		if !errors.Is(err, logical.ErrNotReadOnly) {
			t.Errorf("%s: err = %v, want ErrNotReadOnly", sql, err)
		}
	}
	if rows, _ := query(t, f, "SELECT count(*) FROM t"); rows[0][0] != int64(0) {
		t.Fatalf("count = %v", rows[0][0])
	}
	// Reads still work on every pooled connection afterwards.
	for range 8 {
		query(t, f, "PRAGMA user_version")
	}
}

func TestFSM_RestartSkipsApplied(t *testing.T) {
	dir := t.TempDir()
	f := open(t, dir)
	write(t, f, 1, "CREATE TABLE t(x)")
	_, payload, err := f.Execute(context.Background(), 3, []logical.Request{{Statements: []logical.Statement{{SQL: "INSERT INTO t VALUES (1)"}}}})
	if err != nil {
		t.Fatal(err)
	}
	f.Apply(&raft.Log{Index: 2, Term: 3, Type: raft.LogCommand, Data: payload})
	f.Apply(&raft.Log{Index: 3, Term: 3, Type: raft.LogCommand, Data: EncodeMember(CmdSetMember, Member{ID: "n1", HTTPAddr: "h:1", Voter: true})})
	f.Close()

	g := open(t, dir)
	if got, want := g.AppliedIndex(), uint64(3); got != want {
		t.Fatalf("AppliedIndex() after restart = %d, want %d", got, want)
	}
	if got, want := g.AppliedTerm(), uint64(3); got != want {
		t.Fatalf("AppliedTerm() = %d, want %d", got, want)
	}
	if m := g.Members()["n1"]; m.HTTPAddr != "h:1" || !m.Voter {
		t.Fatalf("member = %+v", m)
	}
	g.Apply(&raft.Log{Index: 2, Term: 3, Type: raft.LogCommand, Data: payload})
	if rows, _ := query(t, g, "SELECT count(*) FROM t"); rows[0][0] != int64(1) {
		t.Fatalf("entry re-applied after restart: count = %v", rows[0][0])
	}
}

// TestFSM_FencedEntry: an entry executed in one term and logged in a later one (its leader was deposed while
// the statements ran, then led again) is skipped, with ErrStaleEntry as its response, and still moves the
// applied index; logged in its own term, it applies.
func TestFSM_FencedEntry(t *testing.T) {
	f := open(t, t.TempDir())
	write(t, f, 1, "CREATE TABLE t(x)")
	_, payload, err := f.Execute(context.Background(), 2, []logical.Request{{Statements: []logical.Statement{{SQL: "INSERT INTO t VALUES ('stale')"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if CommandType(payload[0]) != CmdFencedEntry {
		t.Fatalf("Execute framed its entry as command %d, want CmdFencedEntry", payload[0])
	}
	if resp := f.Apply(&raft.Log{Index: 2, Term: 3, Type: raft.LogCommand, Data: payload}); resp != ErrStaleEntry {
		t.Fatalf("apply in a later term: response %v, want ErrStaleEntry", resp)
	}
	if rows, _ := query(t, f, "SELECT count(*) FROM t"); rows[0][0] != int64(0) {
		t.Fatalf("a stale entry was applied: %v rows", rows[0][0])
	}
	if f.AppliedIndex() != 2 {
		t.Fatalf("AppliedIndex() = %d after skipping entry 2", f.AppliedIndex())
	}
	if resp := f.Apply(&raft.Log{Index: 3, Term: 2, Type: raft.LogCommand, Data: payload}); resp != nil {
		t.Fatalf("apply in its own term: response %v", resp)
	}
	if rows, _ := query(t, f, "SELECT x FROM t"); len(rows) != 1 || rows[0][0] != "stale" {
		t.Fatalf("entry logged in its own term: rows %v", rows)
	}
	var got error
	g, err := Open(t.TempDir(), Options{Halt: func(err error) { got = err }})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte{byte(CmdFencedEntry)}})
	if !errors.Is(got, ErrBadCommand) {
		t.Fatalf("fenced entry without a term: Diverged called with %v", got)
	}
}

// TestFSM_ApplyWaitsForExecute: an entry that arrives while the leader executes a long write (the capture
// connection holds the write lock) waits for the lock, however long, and applies: a busy database is not a
// divergence.
func TestFSM_ApplyWaitsForExecute(t *testing.T) {
	defer func(ms int) { busyTimeoutMS = ms }(busyTimeoutMS)
	busyTimeoutMS = 20
	f := open(t, t.TempDir())
	write(t, f, 1, "CREATE TABLE t(x)")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	executed := make(chan error, 1)
	go func() {
		// Runs until ctx interrupts it, holding the write lock all along.
		_, _, err := f.Execute(ctx, 1, []logical.Request{{Statements: []logical.Statement{{
			SQL: "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) INSERT INTO t SELECT 'x' FROM c WHERE i < 0"}}}})
		executed <- err
	}()
	probe, err := sqlite3.OpenVFS(f.path, sqlite3.OpenReadWrite, sqlite3.ProcessExclusive)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := probe.Exec("BEGIN IMMEDIATE")
		if sqlite3.IsCode(err, sqlite3.Busy) {
			break // the capture holds the write lock
		}
		if err != nil {
			t.Fatal(err)
		}
		probe.Exec("ROLLBACK")
		if time.Now().After(deadline) {
			t.Fatal("the long write never took the write lock")
		}
		// Poll slower than the busy timeout: a probe that held the lock half the time made the capture's own
		// BEGIN give up (busy after 20 ms), and the long write never started.
		time.Sleep(3 * time.Duration(busyTimeoutMS) * time.Millisecond)
	}
	f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: EncodeMember(CmdSetMember, Member{ID: "n2", HTTPAddr: "h:2"})})
	if err := <-executed; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the long write ended with %v, want its deadline", err)
	}
	if f.AppliedIndex() != 2 || f.Members()["n2"].HTTPAddr != "h:2" {
		t.Fatalf("after the write lock was released: applied index %d, members %v", f.AppliedIndex(), f.Members())
	}
}

func TestFSM_Diverged(t *testing.T) {
	var got error
	f, err := Open(t.TempDir(), Options{Halt: func(err error) { got = err }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := &logical.Entry{Items: []logical.Item{logical.RowChange(logical.Change{Table: "nosuch", Op: logical.OpDelete, OldRowID: 1})}}
	payload, _ := logical.AppendEncode([]byte{byte(CmdEntry)}, e)
	f.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: payload})
	if !errors.Is(got, ErrDiverged) {
		t.Fatalf("Diverged called with %v, want ErrDiverged", got)
	}
	if f.AppliedIndex() != 0 {
		t.Fatalf("AppliedIndex() = %d after a failed entry", f.AppliedIndex())
	}
	got = nil
	f.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte{99}})
	if !errors.Is(got, ErrBadCommand) {
		t.Fatalf("unknown command: Diverged called with %v", got)
	}
}

// An entry at or below the applied index is skipped only if it can be the entry the database applied: the one
// at the applied index has the applied term, and none below it has a later term. Otherwise the log lost entries
// this database applied, and the new ones at their indexes would be acknowledged without being applied.
func TestFSM_ReplayedEntryOfAnotherTermDiverges(t *testing.T) {
	var got error
	f, err := Open(t.TempDir(), Options{Halt: func(err error) { got = err }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write(t, f, 1, "CREATE TABLE t(x)")
	write(t, f, 2, "INSERT INTO t VALUES (1)")
	write(t, f, 3, "INSERT INTO t VALUES (2)") // applied index 3, term 1
	payload := func() []byte {
		_, p, err := f.Execute(context.Background(), 2, []logical.Request{{Statements: []logical.Statement{{SQL: "INSERT INTO t VALUES (9)"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, l := range []raft.Log{{Index: 2, Term: 1}, {Index: 3, Term: 1}} {
		got = nil
		f.Apply(&raft.Log{Index: l.Index, Term: l.Term, Type: raft.LogCommand, Data: payload()})
		if got != nil {
			t.Fatalf("replay of entry %d of term %d: Diverged(%v)", l.Index, l.Term, got)
		}
	}
	for _, l := range []raft.Log{{Index: 3, Term: 2}, {Index: 2, Term: 2}, {Index: 3, Term: 0}} {
		got = nil
		f.Apply(&raft.Log{Index: l.Index, Term: l.Term, Type: raft.LogCommand, Data: payload()})
		if !errors.Is(got, ErrDiverged) {
			t.Fatalf("entry %d of term %d over applied index 3 of term 1: Diverged(%v), want ErrDiverged", l.Index, l.Term, got)
		}
	}
	if rows, idx := query(t, f, "SELECT count(*) FROM t"); rows[0][0] != int64(2) || idx != 3 {
		t.Fatalf("after the refused entries: %v rows at index %d, want 2 at 3", rows[0][0], idx)
	}
}

// A full disk while applying is a storage failure, not a diverged replica: Halt gets ErrStorage, the database
// keeps its state, and once there is room the same entry applies. (max_page_count makes SQLite's file full.)
func TestFSM_FullDiskIsNotDivergence(t *testing.T) {
	dir := t.TempDir()
	var got error
	f, err := Open(dir, Options{Halt: func(err error) { got = err }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write(t, f, 1, "CREATE TABLE t(x)")
	req := logical.Request{Statements: []logical.Statement{{SQL: "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 300) INSERT INTO t SELECT zeroblob(4096) FROM c"}}}
	res, payload, err := f.Execute(context.Background(), 1, []logical.Request{req})
	if err != nil || res[0][0].Error != "" {
		t.Fatalf("Execute: %v %+v", err, res)
	}
	rows, _ := query(t, f, "PRAGMA page_count")
	if err := f.applier.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", rows[0][0].(int64)+2)); err != nil {
		t.Fatal(err)
	}
	f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: payload})
	if !errors.Is(got, ErrStorage) || errors.Is(got, ErrDiverged) {
		t.Fatalf("apply on a full disk: Halt(%v), want ErrStorage and not ErrDiverged", got)
	}
	if rows, idx := query(t, f, "SELECT count(*) FROM t"); rows[0][0] != int64(0) || idx != 1 {
		t.Fatalf("after the failed apply: %v rows at index %d, want 0 at 1", rows[0][0], idx)
	}
	if err := f.applier.Exec("PRAGMA max_page_count = 4294967294"); err != nil {
		t.Fatal(err)
	}
	got = nil
	f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: payload})
	if got != nil {
		t.Fatalf("the same entry with room on the disk: Halt(%v)", got)
	}
	if rows, idx := query(t, f, "SELECT count(*) FROM t"); rows[0][0] != int64(300) || idx != 2 {
		t.Fatalf("after the entry applied: %v rows at index %d, want 300 at 2", rows[0][0], idx)
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

func TestFSM_SnapshotRestore(t *testing.T) {
	src := open(t, t.TempDir())
	write(t, src, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	write(t, src, 2, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) INSERT INTO t(v) SELECT randomblob(100) FROM n")
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after Snapshot() are not in it.
	write(t, src, 3, "DELETE FROM t")
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	data := s.Bytes()

	dst := open(t, t.TempDir())
	write(t, dst, 1, "CREATE TABLE other(x)")
	if err := dst.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got, want := dst.AppliedIndex(), uint64(2); got != want {
		t.Fatalf("AppliedIndex() = %d, want %d", got, want)
	}
	want, _ := query(t, src, "SELECT count(*) FROM t") // 0 now on src
	if want[0][0] != int64(0) {
		t.Fatalf("src count = %v", want[0][0])
	}
	rows, idx := query(t, dst, "SELECT count(*), sum(length(v)) FROM t")
	if !reflect.DeepEqual(rows[0], []logical.Value{int64(1000), int64(100000)}) || idx != 2 {
		t.Fatalf("restored rows = %v at %d", rows, idx)
	}
	// And the restored database keeps applying.
	write(t, dst, 3, "DELETE FROM t WHERE id = 1")
	if rows, _ := query(t, dst, "SELECT count(*) FROM t"); rows[0][0] != int64(999) {
		t.Fatalf("count after apply = %v", rows[0][0])
	}

	t.Run("corrupt", func(t *testing.T) {
		for name, mutate := range map[string]func([]byte) []byte{
			"flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
			"truncated":    func(b []byte) []byte { return b[:len(b)-100] },
			"bad magic":    func(b []byte) []byte { b[0] = 'X'; return b },
			"empty":        func(b []byte) []byte { return nil },
		} {
			bad := mutate(append([]byte(nil), data...))
			err := dst.Restore(io.NopCloser(bytes.NewReader(bad)))
			if !errors.Is(err, ErrCorruptSnapshot) {
				t.Errorf("%s: Restore = %v, want ErrCorruptSnapshot", name, err)
			}
		}
		if rows, idx := query(t, dst, "SELECT count(*) FROM t"); rows[0][0] != int64(999) || idx != 3 {
			t.Fatalf("refused snapshot changed the database: %v at %d", rows, idx)
		}
	})
}

func TestFSM_WaitApplied(t *testing.T) {
	f := open(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.WaitApplied(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitApplied = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.WaitApplied(context.Background(), 2) }()
	write(t, f, 1, "CREATE TABLE t(x)")
	write(t, f, 2, "INSERT INTO t VALUES (1)")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFSM_ForeignKeys(t *testing.T) {
	for _, off := range []bool{false, true} {
		f, err := Open(t.TempDir(), Options{NoForeignKeys: off, Halt: func(err error) { t.Errorf("diverged: %v", err) }})
		if err != nil {
			t.Fatal(err)
		}
		write(t, f, 1, "CREATE TABLE p(id INTEGER PRIMARY KEY)", "CREATE TABLE c(p INTEGER REFERENCES p(id))")
		res := write(t, f, 2, "INSERT INTO c VALUES(42)")
		if enforced := res[0].Error != ""; enforced == off {
			t.Errorf("NoForeignKeys=%v: insert of an orphan gave %+v", off, res[0])
		}
		f.Close()
	}
}

func TestFSM_ResultTooLarge(t *testing.T) {
	defer func(n int) { logical.MaxResultValues = n }(logical.MaxResultValues)
	logical.MaxResultValues = 1000
	f := open(t, t.TempDir())
	res, _, err := f.Query(context.Background(), []logical.Statement{
		{SQL: "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 600) SELECT i, i FROM n"},
		{SQL: "SELECT 1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res[0].Error, "too large") || len(res[0].Rows) != 0 {
		t.Fatalf("a 1200-value result: %+v", res[0].Error)
	}
	if res[1].Error != "" || res[1].Rows[0][0] != int64(1) {
		t.Fatalf("the next statement: %+v", res[1])
	}
}

// The index a read reports is never below the state it read, so a session that carries it as min_index
// cannot go back in time on another node. (The lone-statement fast path once reported the applied index
// loaded before the read: a read that raced an apply saw the new state and reported the old index, and the
// soak's append workload caught a monotonic-reads violation.)
// TestFSM_ReadIndexIsTheStateRead: a read reports exactly the position of the state it read, while entries
// apply: never below it (a session carrying it as min_index would go back in time on another node), and never
// above it (a client would believe it saw writes it did not, and a cache keyed by it would miss one).
func TestFSM_ReadIndexIsTheStateRead(t *testing.T) {
	f := open(t, t.TempDir())
	write(t, f, 1, "CREATE TABLE t(v INTEGER)")
	const last = 400
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(2); i <= last; i++ {
			write(t, f, i, fmt.Sprintf("INSERT INTO t(v) VALUES(%d)", i))
		}
	}()
	sql := "SELECT coalesce(max(v), 1) FROM t"
	query(t, f, sql) // prepared once: later runs take the lone-statement fast path
	var problem string
	for reads := 0; problem == ""; reads++ {
		rows, idx := query(t, f, sql)
		if seen := uint64(rows[0][0].(int64)); seen != idx {
			problem = fmt.Sprintf("read %d saw the state at index %d but reported index %d", reads, seen, idx)
		}
		select {
		case <-done:
			if problem == "" {
				return
			}
		default:
		}
	}
	<-done // the writer uses f until it finishes
	t.Fatal(problem)
}

func TestFSM_ApplyTimes(t *testing.T) {
	dir := t.TempDir()
	f := open(t, dir)
	if a, b := f.ApplyTimes(); !a.IsZero() || !b.IsZero() {
		t.Fatalf("ApplyTimes before any apply = %v, %v; want zero", a, b)
	}
	write(t, f, 1, "CREATE TABLE t(x)")
	_, payload, err := f.Execute(context.Background(), 1, []logical.Request{{Statements: []logical.Statement{{SQL: "INSERT INTO t VALUES (1)"}}}})
	if err != nil {
		t.Fatal(err)
	}
	appended := time.Now().Add(-3 * time.Second).Round(0)
	before := time.Now()
	f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: payload, AppendedAt: appended})
	gotAppended, gotApplied := f.ApplyTimes()
	if !gotAppended.Equal(appended) || gotApplied.Before(before) || gotApplied.After(time.Now()) {
		t.Fatalf("ApplyTimes = %v, %v; want %v and a time during the apply", gotAppended, gotApplied, appended)
	}
	// A skipped entry (already applied) changes nothing.
	f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: payload, AppendedAt: time.Now()})
	if a, _ := f.ApplyTimes(); !a.Equal(appended) {
		t.Fatalf("a skipped entry moved AppendedAt to %v", a)
	}
	f.Close()
	// Reopened, it cannot tell when its last entry was appended.
	g := open(t, dir)
	if a, b := g.ApplyTimes(); !a.IsZero() || !b.IsZero() {
		t.Fatalf("ApplyTimes after reopening = %v, %v; want zero", a, b)
	}
}

// A node that applied schema changes as a follower and then leads executes against that schema, not the one
// its capture connection saw before: statements that compile to nothing on an outdated schema (DROP … IF
// EXISTS of an object created since) were silently lost, and a re-CREATE after them stopped every node.
func TestFSM_LeaderSeesSchemaAppliedAsFollower(t *testing.T) {
	cases := map[string]struct {
		stmts []string
		check string // a query whose answer must be the same on both nodes and equal want
		want  string
	}{
		"drop table if exists": {[]string{"DROP TABLE IF EXISTS d3"},
			"SELECT count(*) FROM sqlite_schema WHERE name = 'd3'", "0"},
		"drop and create again": {[]string{"DROP TABLE IF EXISTS d3", "CREATE TABLE d3(a)"},
			"SELECT group_concat(name) FROM pragma_table_info('d3')", "a"},
		"create if not exists": {[]string{"CREATE TABLE IF NOT EXISTS d3(zzz)"},
			"SELECT group_concat(name) FROM pragma_table_info('d3')", "id,ts"},
		"drop view if exists": {[]string{"DROP VIEW IF EXISTS dv"},
			"SELECT count(*) FROM sqlite_schema WHERE name = 'dv'", "0"},
		"drop index if exists": {[]string{"DROP INDEX IF EXISTS ix"},
			"SELECT count(*) FROM sqlite_schema WHERE name = 'ix'", "0"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a, b := open(t, t.TempDir()), open(t, t.TempDir())
			both := func(on *FSM, index uint64, sql ...string) {
				t.Helper()
				req := logical.Request{Transaction: true}
				for _, s := range sql {
					req.Statements = append(req.Statements, logical.Statement{SQL: s})
				}
				res, payload, err := on.Execute(context.Background(), 1, []logical.Request{req})
				if err != nil {
					t.Fatalf("Execute: %v", err)
				}
				for _, r := range res[0] {
					if r.Error != "" {
						t.Fatalf("%q: %s", sql, r.Error)
					}
				}
				l := &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: payload}
				a.Apply(l)
				b.Apply(l)
			}
			// b's capture connection read its schema when b opened; a leads first.
			both(a, 1, "CREATE TABLE unrelated(x)")
			both(a, 2, "CREATE TABLE d3(id INTEGER PRIMARY KEY, ts TEXT)", "CREATE VIEW dv AS SELECT 1 AS one",
				"CREATE INDEX ix ON d3(ts)", "INSERT INTO d3 VALUES (1, 'x')")
			both(b, 3, tc.stmts...) // b leads now
			for _, f := range []*FSM{a, b} {
				rows, _ := query(t, f, tc.check)
				if got := fmt.Sprint(rows[0][0]); got != tc.want {
					t.Fatalf("%s: got %s, want %s", tc.check, got, tc.want)
				}
			}
		})
	}
}

// A backup taken while a snapshot is installed copies one whole state, the old or the new, never the old
// database file read through the new one's WAL.
func TestFSM_BackupDuringRestore(t *testing.T) {
	src := open(t, t.TempDir())
	write(t, src, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	for i := uint64(2); i <= 30; i++ {
		write(t, src, i, "INSERT INTO t(v) VALUES (randomblob(500))")
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := open(t, t.TempDir())
	write(t, dst, 1, "CREATE TABLE other(x)")
	for i := uint64(2); i <= 5; i++ {
		write(t, dst, i, "INSERT INTO other VALUES (randomblob(500))")
	}
	restored := make(chan error, 1)
	pinnedOpened = func() {
		pinnedOpened = nil
		go func() {
			err := dst.Restore(io.NopCloser(bytes.NewReader(s.Bytes())))
			for i := uint64(31); err == nil && i <= 40; i++ { // the new database takes writes (its WAL grows)
				write(t, dst, i, "INSERT INTO t(v) VALUES (randomblob(500))")
			}
			restored <- err
		}()
		// Give the restore the chance the old code gave it; the fixed code holds it off until the read began.
		select {
		case err := <-restored:
			restored <- err
		case <-time.After(300 * time.Millisecond):
		}
	}
	defer func() { pinnedOpened = nil }()
	var backup bytes.Buffer
	pos, err := dst.WriteBackup(&backup)
	if err != nil {
		t.Fatalf("WriteBackup: %v", err)
	}
	if err := <-restored; err != nil {
		t.Fatalf("Restore: %v", err)
	}
	path := filepath.Join(t.TempDir(), "backup.sqlite")
	if err := os.WriteFile(path, backup.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, err := sqlite3.Open(path, sqlite3.OpenReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, _, err := conn.Prepare("PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("the backup (position %v) cannot be read: %v", pos, err)
	}
	_, err = st.Step()
	res := st.Column(0)
	st.Close()
	if err != nil || res != "ok" {
		t.Fatalf("the backup (position %v) is corrupt: %v %v", pos, res, err)
	}
}

// Temporary files a stopped process left while it wrote or received a snapshot are removed at Open.
func TestFSM_OpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	f := open(t, dir)
	write(t, f, 1, "CREATE TABLE t(x)")
	f.Close()
	left := []string{filepath.Join(dir, "restore-1.tmp"), filepath.Join(dir, "snapshot-2.tmp")}
	for _, name := range left {
		if err := os.WriteFile(name, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f = open(t, dir)
	for _, name := range left {
		if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Open: %v", name, err)
		}
	}
	if rows, _ := query(t, f, "SELECT count(*) FROM sqlite_schema WHERE name = 't'"); rows[0][0] != int64(1) {
		t.Fatalf("the database itself changed: %v", rows)
	}
}

// The values one request returns are bounded in bytes too, over all its statements, on reads and on writes
// that return rows: a few huge values must not exhaust the node's memory.
func TestFSM_ResultBytesBounded(t *testing.T) {
	defer func(n int) { logical.MaxResultBytes = n }(logical.MaxResultBytes)
	logical.MaxResultBytes = 1 << 20
	f := open(t, t.TempDir())
	res, _, err := f.Query(context.Background(), []logical.Statement{
		{SQL: "SELECT zeroblob(900000000)"}, // 900 MB, past MaxRowBytes: refused before it is allocated
		{SQL: "SELECT length(zeroblob(600000)), zeroblob(600000)"},
		{SQL: "SELECT randomblob(600000)"}, // with the one before, past 1 MiB
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res[0].Error, "too big") { // SQLite refuses it before allocating it (MaxRowBytes)
		t.Fatalf("a 900 MB value: %+v", res[0].Error)
	}
	if res[1].Error != "" || res[1].Rows[0][0] != int64(600000) {
		t.Fatalf("the second statement: %v", res[1].Error)
	}
	if !strings.Contains(res[2].Error, "too large") {
		t.Fatalf("the third statement, past the request's budget: %+v", res[2].Error)
	}
	// A later request starts with the whole budget again.
	res, _, err = f.Query(context.Background(), []logical.Statement{{SQL: "SELECT randomblob(600000)"}})
	if err != nil || res[0].Error != "" {
		t.Fatalf("the next request: %v %v", err, res[0].Error)
	}
	// Writes that return rows are bounded the same way.
	write(t, f, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, b)")
	got := write(t, f, 2, "INSERT INTO t(b) VALUES (zeroblob(900000)), (zeroblob(900000)) RETURNING b")
	if !strings.Contains(got[0].Error, "too large") {
		t.Fatalf("RETURNING past the budget: %+v", got[0].Error)
	}
	if rows, _ := query(t, f, "SELECT count(*) FROM t"); rows[0][0] != int64(0) {
		t.Fatalf("the failed INSERT … RETURNING left %v rows", rows[0][0])
	}
}

// FTS5 terms that an earlier part of the same SQL string wrote are captured even when a schema statement
// follows in that string (it would flush them while it runs, and a schema statement's rows are not kept):
// every node's full-text index stays whole.
func TestFSM_FTS5TermsBeforeASchemaStatementInOneString(t *testing.T) {
	for _, ddl := range []string{"CREATE TABLE z(a)", "CREATE INDEX oi2 ON other(a)", "ALTER TABLE other ADD COLUMN b",
		"CREATE VIEW v AS SELECT 1", "ANALYZE", "CREATE TABLE z2 AS SELECT 1 AS x"} {
		t.Run(ddl, func(t *testing.T) {
			f := open(t, t.TempDir())
			write(t, f, 1, "CREATE VIRTUAL TABLE f USING fts5(a)", "CREATE TABLE other(a)")
			if res := write(t, f, 2, "INSERT INTO f VALUES('hello world'); "+ddl); res[0].Error != "" {
				t.Fatal(res[0].Error)
			}
			rows, _ := query(t, f, "SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM f WHERE f MATCH 'hello')")
			check := write(t, f, 3, "INSERT INTO f(f) VALUES('integrity-check')")
			if rows[0][0] != int64(1) || rows[0][1] != int64(1) || check[0].Error != "" {
				t.Fatalf("documents %v, documents matching 'hello' %v, integrity-check: %q", rows[0][0], rows[0][1], check[0].Error)
			}
		})
	}
}

// A virtual table's setting from a write that was rolled back (here FTS5's secure-delete, in a transaction
// request that failed) does not stay in force on the writer: the same committed log gives the same tables.
func TestFSM_VirtualTableSettingOfARolledBackWrite(t *testing.T) {
	run := func(first string) string {
		f := open(t, t.TempDir())
		write(t, f, 1, "CREATE VIRTUAL TABLE f USING fts5(a)")
		for i := uint64(2); i < 12; i++ {
			write(t, f, i, fmt.Sprintf("INSERT INTO f VALUES('alpha beta w%d')", i))
		}
		res, payload, err := f.Execute(context.Background(), 1, []logical.Request{{Transaction: true, Statements: []logical.Statement{
			{SQL: first}, {SQL: "SELECT * FROM nosuch"}}}})
		if err != nil || res[0][len(res[0])-1].Error == "" {
			t.Fatalf("the request should fail: %v %+v", err, res)
		}
		f.Apply(&raft.Log{Index: 12, Term: 1, Type: raft.LogCommand, Data: payload}) // nothing in it
		write(t, f, 13, "DELETE FROM f WHERE rowid = 3")
		rows, _ := query(t, f, "SELECT (SELECT group_concat(k || '=' || v) FROM f_config), (SELECT group_concat(hex(block)) FROM f_data)")
		return fmt.Sprint(rows)
	}
	plain := run("INSERT INTO f(f, rank) VALUES('automerge', 8)")
	after := run("INSERT INTO f(f, rank) VALUES('secure-delete', 1)")
	if plain != after {
		t.Fatalf("the same committed log gives different FTS5 tables:\n%.300s\n%.300s", plain, after)
	}
}

// An R*Tree table can be read on the read path: R*Tree prepares the statements that write its shadow tables
// as soon as it connects, and the read path's authorizer refused them, so every read of one failed, and so did
// PRAGMA integrity_check once the database had one. Writes to those tables are still refused there.
func TestFSM_ReadsOfVirtualTables(t *testing.T) {
	f := open(t, t.TempDir())
	write(t, f, 1, "CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)")
	write(t, f, 2, "INSERT INTO r VALUES(1, 0, 1)")
	write(t, f, 3, "CREATE VIRTUAL TABLE s USING fts5(body)")
	write(t, f, 4, "INSERT INTO s VALUES('hello world')")
	for sql, want := range map[string]any{"SELECT id FROM r WHERE x0 <= 0.5 AND x1 >= 0.5": int64(1),
		"SELECT body FROM s WHERE s MATCH 'hello'": "hello world", "PRAGMA integrity_check": "ok", "PRAGMA main.quick_check(5)": "ok"} {
		rows, _ := query(t, f, sql)
		if len(rows) != 1 || rows[0][0] != want {
			t.Fatalf("%s: %v, want %v", sql, rows, want)
		}
	}
	for _, sql := range []string{"INSERT INTO r_node VALUES(9, x'00')", "DELETE FROM r_rowid", "UPDATE r_parent SET parentnode = 1"} {
		if _, _, err := f.Query(context.Background(), []logical.Statement{{SQL: sql}}); !errors.Is(err, logical.ErrNotReadOnly) {
			t.Fatalf("%s on the read path: %v, want ErrNotReadOnly", sql, err)
		}
	}
}

// At start raft replays the log from its latest snapshot, and the database, which skips what it holds, is
// ahead of what raft has handed it until the replay catches up. A snapshot taken then was labelled with the
// lower index but held the whole database: a follower that installed it and restarted before its log reached
// the database's index was refused as "ahead of its log". No snapshot is taken until the replay catches up.
func TestFSM_NoSnapshotWhileReplaying(t *testing.T) {
	dir := t.TempDir()
	f := open(t, dir)
	write(t, f, 1, "CREATE TABLE t(x)")
	write(t, f, 2, "INSERT INTO t VALUES (1)")
	write(t, f, 3, "INSERT INTO t VALUES (2)")
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("a snapshot of a database raft has handed every entry: %v", err)
	}
	snap.Release()
	f.Close()
	f = open(t, dir)
	if _, err := f.Snapshot(); err == nil {
		t.Fatal("a snapshot before raft replayed anything: taken, and labelled below the database's index 3")
	}
	f.Apply(&raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: []byte{99}}) // replayed: skipped unread
	if _, err := f.Snapshot(); err == nil {
		t.Fatal("a snapshot part way through the replay was taken")
	}
	f.Apply(&raft.Log{Index: 3, Term: 1, Type: raft.LogCommand, Data: []byte{99}})
	snap, err = f.Snapshot()
	if err != nil {
		t.Fatalf("a snapshot once the replay reached the database: %v", err)
	}
	snap.Release()
}

// The apply connection checkpoints the WAL itself (SQLite's automatic checkpoint ignores its errors, and a
// failed fsync retried later can copy stale pages): it stays bounded over many applies, and the automatic
// one is off.
func TestFSM_ChecksItsOwnCheckpoints(t *testing.T) {
	dir := t.TempDir()
	f := open(t, dir)
	write(t, f, 1, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	const applies = 2000
	for i := uint64(2); i <= applies; i++ {
		write(t, f, i, fmt.Sprintf("INSERT INTO t(v) VALUES (randomblob(%d))", 1000+i%7))
	}
	st, err := os.Stat(filepath.Join(dir, DBFile+"-wal"))
	if err != nil {
		t.Fatal(err)
	}
	// Without checkpoints the WAL holds every page written, two or three per apply (20 MB here); with them,
	// about one interval's (4 MB). The limit is twice that.
	if limit := int64(2*checkpointPages) * 4120; st.Size() > limit {
		t.Fatalf("WAL of %d bytes after %d applies: more than %d, so checkpoints did not run", st.Size(), applies, limit)
	}
	s, _, err := f.applyDB.Prepare("PRAGMA wal_autocheckpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.Step(); !ok || err != nil || s.Column(0) != int64(0) {
		t.Fatalf("PRAGMA wal_autocheckpoint on the apply connection: %v %v %v, want 0", s.Column(0), ok, err)
	}
}
