package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
	"github.com/rowboatdb/rowboat/logical"
)

// TestNode_ExecuteAfterTheWriterStopped: a write queued after the writer stopped (the node is closing while
// Raft still runs, so it still leads) is answered at once as not executed, instead of waiting for its context
// and being reported as "may still be applied".
func TestNode_ExecuteAfterTheWriterStopped(t *testing.T) {
	n := openNode(t, "n1", true)
	waitFor(t, "leadership", n.IsLeader)
	exec1(t, n, "CREATE TABLE t(x)")
	n.stopOnce.Do(func() { close(n.stop) }) // the first half of Close: the node's goroutines stop, Raft runs on
	<-n.writerDone
	defer func() { // the rest of Close
		n.raft.Shutdown().Error()
		close(n.raftDown)
		n.wg.Wait()
		n.closeResources()
	}()
	for i := range 20 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err := n.Execute(ctx, logical.Request{Statements: []logical.Statement{{SQL: "INSERT INTO t VALUES(1)"}}})
		if !errors.Is(err, ErrShuttingDown) || errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrTimeout) {
			t.Fatalf("write %d on a node whose writer stopped: %v, want ErrShuttingDown (not executed)", i, err)
		}
		cancel()
	}
}

// TestNode_LoadWaitsForWritesInFlight: a load replaces the database as it is when its own write runs: a table
// created by a write already in the writer's hands when the load began is dropped too.
func TestNode_LoadWaitsForWritesInFlight(t *testing.T) {
	n := openNode(t, "n1", true)
	waitFor(t, "leadership", n.IsLeader)
	exec1(t, n, "CREATE TABLE old(x)")
	n.busy.Lock() // the writer will hold the next batch until released
	ddl := make(chan error, 1)
	go func() {
		_, err := n.Execute(context.Background(), logical.Request{Statements: []logical.Statement{{SQL: "CREATE TABLE concurrent(x)"}}})
		ddl <- err
	}()
	waitFor(t, "the CREATE TABLE to be under way", func() bool {
		if n.exclusive.TryLock() { // no write holds it yet
			n.exclusive.Unlock()
			return false
		}
		return len(n.queue) == 0
	})
	loaded := make(chan error, 1)
	go func() {
		_, err := n.Load(context.Background(), []byte("CREATE TABLE loaded(x);"), true)
		loaded <- err
	}()
	waitFor(t, "the load to wait for the write in flight", func() bool {
		n.exclusive.mu.Lock()
		defer n.exclusive.mu.Unlock()
		return n.exclusive.wanting == 1
	})
	n.busy.Unlock()
	if err := <-ddl; err != nil {
		t.Fatal(err)
	}
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	res, _, err := n.Query(context.Background(), []logical.Statement{{SQL: `SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema
		WHERE type = 'table' AND name NOT LIKE '\_rowboat\_%' ESCAPE '\' ORDER BY name)`}})
	if err != nil || res[0].Error != "" {
		t.Fatalf("%v %s", err, res[0].Error)
	}
	if got := res[0].Rows[0][0]; got != "loaded" {
		t.Fatalf("tables after the load: %v, want only loaded", got)
	}
}

// A SQLite file in WAL mode is refused: its newest content may be in a -wal file the upload did not carry, and
// loading the rest would replace the database with an older or empty one. Nothing changes, nothing is left.
func TestNode_LoadRefusesAWALModeFile(t *testing.T) {
	n := openNode(t, "n1", true)
	waitFor(t, "leadership", n.IsLeader)
	exec1(t, n, "CREATE TABLE kept(x)")
	path := filepath.Join(t.TempDir(), "wal.sqlite")
	conn, err := sqlite3.Open(path, sqlite3.OpenReadWrite|sqlite3.OpenCreate)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec("PRAGMA journal_mode = WAL; CREATE TABLE other(x); INSERT INTO other VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path) // the main file alone, as a copy without its -wal would be
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Load(context.Background(), data, false)
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "WAL mode") {
		t.Fatalf("Load of a WAL-mode file: %v, want ErrBadRequest naming WAL mode", err)
	}
	res, _, err := n.Query(context.Background(), []logical.Statement{{SQL: "SELECT count(*) FROM sqlite_schema WHERE name = 'kept'"}})
	if err != nil || res[0].Rows[0][0] != int64(1) {
		t.Fatalf("the refused load changed the database: %v %v", res, err)
	}
	if left, _ := filepath.Glob(filepath.Join(n.cfg.DataDir, "upload-*")); len(left) > 0 {
		t.Fatalf("files left behind: %v", left)
	}
}

// A write waiting for a load to finish gives up at its own deadline, not the load's.
func TestNode_WriteBehindALoadTimesOut(t *testing.T) {
	n := openNode(t, "n1", true)
	waitFor(t, "leadership", n.IsLeader)
	if !n.exclusive.TryLock() { // as a load holds it
		t.Fatal("exclusive is held")
	}
	defer n.exclusive.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := n.Execute(ctx, logical.Request{Statements: []logical.Statement{{SQL: "CREATE TABLE t(x)"}}})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("write behind a load: %v, want ErrTimeout", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("the write waited %s, far past its 100ms deadline", waited)
	}
}

// SQL text loads as rqlite loads it: run against the database as it is, in one transaction, its results
// answered; nothing else is dropped (a load of a script used to replace the whole database). A failing
// statement changes nothing. With replace, the text replaces the database, as a database file does.
func TestNode_LoadSQLText(t *testing.T) {
	n := openNode(t, "n1", true)
	waitFor(t, "leadership", n.IsLeader)
	exec1(t, n, "CREATE TABLE kept(x)")
	exec1(t, n, "INSERT INTO kept VALUES (1)")
	tables := func() string {
		t.Helper()
		res, _, err := n.Query(context.Background(), []logical.Statement{{SQL: `SELECT group_concat(name) FROM (SELECT name FROM sqlite_schema
			WHERE type = 'table' AND name NOT LIKE '\_rowboat\_%' ESCAPE '\' ORDER BY name)`}})
		if err != nil || res[0].Error != "" {
			t.Fatalf("%v %+v", err, res)
		}
		s, _ := res[0].Rows[0][0].(string)
		return s
	}
	res, err := n.Load(context.Background(), []byte("BEGIN TRANSACTION;\nCREATE TABLE extra(x);\nINSERT INTO extra VALUES (7), (8);\nPRAGMA foreign_keys=ON;\nCOMMIT;\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Statements != 2 || len(res.Results) != 2 || res.Results[1].RowsAffected != 2 || res.Index == 0 {
		t.Fatalf("load result %+v, want 2 statements, the second inserting 2 rows", res)
	}
	if got := tables(); got != "extra,kept" {
		t.Fatalf("tables after loading SQL text: %q, want extra,kept", got)
	}
	_, err = n.Load(context.Background(), []byte("INSERT INTO kept VALUES (2); INSERT INTO nosuch VALUES (1);"), false)
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "statement 2") {
		t.Fatalf("a load with a failing statement: %v, want ErrBadRequest naming statement 2", err)
	}
	res2, _, err := n.Query(context.Background(), []logical.Statement{{SQL: "SELECT count(*) FROM kept"}})
	if err != nil || res2[0].Rows[0][0] != int64(1) {
		t.Fatalf("the failed load changed kept: %v %v", res2, err)
	}
	if _, err := n.Load(context.Background(), []byte("CREATE TABLE only(x);"), true); err != nil {
		t.Fatal(err)
	}
	if got := tables(); got != "only" {
		t.Fatalf("tables after a replacing load: %q, want only", got)
	}
}

// A write whose caller gives up while its statements run (a runaway recursive query, a ?timeout shorter than
// the apply timeout) is interrupted at once and answered "nothing applied", not "may still be applied"; the
// writer is free for the next write, instead of running it until the apply timeout.
func TestNode_AbandonedWriteIsInterrupted(t *testing.T) {
	n := openNode(t, "n1", true)
	waitFor(t, "leadership", n.IsLeader)
	exec1(t, n, "CREATE TABLE t(x)")
	before := n.AppliedIndex()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	runaway := "INSERT INTO t SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c) WHERE x < 0"
	start := time.Now()
	_, err := n.Execute(ctx, logical.Request{Statements: []logical.Statement{{SQL: runaway}}})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "nothing was applied") {
		t.Fatalf("a runaway write whose caller gave up: %v, want ErrTimeout saying nothing was applied", err)
	}
	if d := time.Since(start); d > 3*time.Second { // the apply timeout is 5 s
		t.Fatalf("the runaway write was answered after %s", d)
	}
	if got := exec1(t, n, "INSERT INTO t VALUES(1)").Index; got != before+1 {
		t.Fatalf("the next write is at index %d, want %d: the abandoned one took an entry", got, before+1)
	}
}
