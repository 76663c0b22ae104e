package sqlite3

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	lib "modernc.org/sqlite/lib"
)

// openTest opens a fresh database file in t.TempDir(). At cleanup it fails the test if a statement was left
// unfinalized, then closes the connection.
func openTest(tb testing.TB) *Conn {
	tb.Helper()
	c, err := Open(filepath.Join(tb.TempDir(), "test.db"), 0)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if p := lib.Xsqlite3_next_stmt(c.tls, c.db, 0); p != 0 {
			tb.Errorf("statement left unfinalized: %q", goString(lib.Xsqlite3_sql(c.tls, p)))
		}
		if err := c.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return c
}

func mustExec(tb testing.TB, c *Conn, sql string) {
	tb.Helper()
	if err := c.Exec(sql); err != nil {
		tb.Fatalf("Exec(%q): %v", sql, err)
	}
}

// queryAll runs sql with args bound to ?1, ?2, ... and returns every row.
func queryAll(tb testing.TB, c *Conn, sql string, args ...any) [][]any {
	tb.Helper()
	s, tail, err := c.Prepare(sql)
	if err != nil {
		tb.Fatalf("Prepare(%q): %v", sql, err)
	}
	if s == nil || strings.TrimSpace(tail) != "" {
		tb.Fatalf("Prepare(%q): stmt=%v tail=%q, want one statement", sql, s, tail)
	}
	defer s.Close()
	for i, a := range args {
		if err := s.Bind(i+1, a); err != nil {
			tb.Fatalf("Bind(%d, %#v): %v", i+1, a, err)
		}
	}
	var rows [][]any
	for {
		row, err := s.Step()
		if err != nil {
			tb.Fatalf("Step(%q): %v", sql, err)
		}
		if !row {
			return rows
		}
		r := make([]any, s.ColumnCount())
		for i := range r {
			r[i] = s.Column(i)
		}
		rows = append(rows, r)
	}
}

func queryOne(tb testing.TB, c *Conn, sql string, args ...any) any {
	tb.Helper()
	rows := queryAll(tb, c, sql, args...)
	if len(rows) != 1 || len(rows[0]) != 1 {
		tb.Fatalf("%q returned %v, want one value", sql, rows)
	}
	return rows[0][0]
}

func TestOpen(t *testing.T) {
	t.Run("creates the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new.db")
		c, err := Open(path, 0)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		mustExec(t, c, "CREATE TABLE t(a)")
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		ro, err := Open(path, OpenReadOnly)
		if err != nil {
			t.Fatalf("Open read-only: %v", err)
		}
		defer ro.Close()
		if got := queryOne(t, ro, "SELECT count(*) FROM sqlite_schema WHERE name = 't'"); got != int64(1) {
			t.Fatalf("table t: count=%v, want 1", got)
		}
		if err := ro.Exec("INSERT INTO t VALUES(1)"); !IsCode(err, ReadOnly) {
			t.Fatalf("insert on a read-only connection: err=%v, want code ReadOnly", err)
		}
	})
	t.Run("missing file read-only", func(t *testing.T) {
		c, err := Open(filepath.Join(t.TempDir(), "missing.db"), OpenReadOnly)
		if err == nil {
			c.Close()
			t.Fatal("Open of a missing file read-only succeeded")
		}
		if !IsCode(err, lib.SQLITE_CANTOPEN) {
			t.Fatalf("err=%v, want code SQLITE_CANTOPEN", err)
		}
	})
	t.Run("path with a NUL byte", func(t *testing.T) {
		dir := t.TempDir()
		c, err := Open(filepath.Join(dir, "a.db")+"\x00b", 0)
		if err == nil {
			c.Close()
			t.Fatal("Open of a path with a NUL byte succeeded")
		}
		if !IsCode(err, lib.SQLITE_MISUSE) {
			t.Fatalf("err=%v, want code SQLITE_MISUSE", err)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
			t.Fatalf("Open created %v", m)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		c, err := Open(filepath.Join(t.TempDir(), "no", "such", "dir.db"), 0)
		if err == nil {
			c.Close()
			t.Fatal("Open in a missing directory succeeded")
		}
	})
}

func TestConn_Prepare(t *testing.T) {
	c := openTest(t)
	mustExec(t, c, "CREATE TABLE t(a)")
	tests := []struct {
		sql     string
		wantSQL string // "" means no statement
		tail    string
	}{
		{"SELECT 1", "SELECT 1", ""},
		{"SELECT 1;", "SELECT 1;", ""},
		{"SELECT 1; SELECT 2", "SELECT 1;", " SELECT 2"},
		{"INSERT INTO t VALUES(1);INSERT INTO t VALUES(2);", "INSERT INTO t VALUES(1);", "INSERT INTO t VALUES(2);"},
		{"SELECT 'a;b'; -- c", "SELECT 'a;b';", " -- c"},
		{"  -- only a comment", "", ""},
		{"/* c */ ;", "", ""},
		{";  SELECT 3", ";  SELECT 3", ""}, // SQLite's text of the statement starts where Prepare started
		{"", "", ""},
		{"SELECT 'héllo'; SELECT 'wörld'", "SELECT 'héllo';", " SELECT 'wörld'"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			s, tail, err := c.Prepare(tt.sql)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			defer s.Close()
			got := ""
			if s != nil {
				got = s.SQL()
			}
			if got != tt.wantSQL || tail != tt.tail {
				t.Fatalf("Prepare(%q) = %q, tail %q; want %q, tail %q", tt.sql, got, tail, tt.wantSQL, tt.tail)
			}
		})
	}

	errTests := []struct {
		sql     string
		code    int
		msgPart string
	}{
		{"SELEC 1", lib.SQLITE_ERROR, "syntax error"},
		{"SELECT * FROM nope", lib.SQLITE_ERROR, "no such table: nope"},
		{"SELECT 1\x00", lib.SQLITE_MISUSE, "NUL"},
		{"SELECT 1; \x00", lib.SQLITE_MISUSE, "NUL"},
	}
	for _, tt := range errTests {
		t.Run(fmt.Sprintf("error %q", tt.sql), func(t *testing.T) {
			s, _, err := c.Prepare(tt.sql)
			if err == nil {
				s.Close()
				t.Fatal("Prepare succeeded")
			}
			if s != nil {
				t.Fatal("Prepare returned a statement with an error")
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.code || !strings.Contains(e.Msg, tt.msgPart) {
				t.Fatalf("err=%#v, want code %d and a message containing %q", err, tt.code, tt.msgPart)
			}
		})
	}
}

func TestConn_Exec(t *testing.T) {
	c := openTest(t)
	mustExec(t, c, "CREATE TABLE t(a); INSERT INTO t VALUES(1); -- comment\n INSERT INTO t VALUES(2); SELECT * FROM t;")
	if got := queryOne(t, c, "SELECT group_concat(a) FROM t"); got != "1,2" {
		t.Fatalf("rows=%v, want 1,2", got)
	}

	t.Run("stops at the first error", func(t *testing.T) {
		err := c.Exec("INSERT INTO t VALUES(3); INSERT INTO nope VALUES(1); INSERT INTO t VALUES(4)")
		if err == nil || err.Error() != "no such table: nope" {
			t.Fatalf("err=%v, want no such table: nope", err)
		}
		if got := queryOne(t, c, "SELECT group_concat(a) FROM t"); got != "1,2,3" {
			t.Fatalf("rows=%v, want 1,2,3", got)
		}
	})
	t.Run("SQL with a NUL byte runs nothing", func(t *testing.T) {
		err := c.Exec("DELETE FROM t;\x00")
		if !IsCode(err, lib.SQLITE_MISUSE) {
			t.Fatalf("err=%v, want code SQLITE_MISUSE", err)
		}
		if got := queryOne(t, c, "SELECT count(*) FROM t"); got != int64(3) {
			t.Fatalf("count=%v, want 3", got)
		}
	})
	t.Run("constraint error codes", func(t *testing.T) {
		mustExec(t, c, "CREATE TABLE u(id INTEGER PRIMARY KEY, v NOT NULL)")
		mustExec(t, c, "INSERT INTO u VALUES(1, 1)")
		err := c.Exec("INSERT INTO u VALUES(1, 1)")
		var e *Error
		if !errors.As(fmt.Errorf("wrapped: %w", err), &e) {
			t.Fatalf("err=%v (%T), want *Error", err, err)
		}
		if e.Code != Constraint || e.ExtendedCode != lib.SQLITE_CONSTRAINT_PRIMARYKEY || e.Msg != "UNIQUE constraint failed: u.id" {
			t.Fatalf("err=%#v, want Constraint/SQLITE_CONSTRAINT_PRIMARYKEY/UNIQUE constraint failed: u.id", e)
		}
		if !IsCode(fmt.Errorf("wrapped: %w", err), Constraint) {
			t.Fatal("IsCode(wrapped, Constraint) = false")
		}
		err = c.Exec("INSERT INTO u VALUES(2, NULL)")
		if !errors.As(err, &e) || e.ExtendedCode != lib.SQLITE_CONSTRAINT_NOTNULL {
			t.Fatalf("err=%#v, want SQLITE_CONSTRAINT_NOTNULL", err)
		}
	})
}

func TestConn_Counters(t *testing.T) {
	c := openTest(t)
	mustExec(t, c, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	if !c.Autocommit() {
		t.Fatal("Autocommit() = false outside a transaction")
	}
	mustExec(t, c, "BEGIN; INSERT INTO t(v) VALUES(1), (2), (3)")
	if c.Autocommit() {
		t.Fatal("Autocommit() = true inside BEGIN")
	}
	if got, want := c.Changes(), int64(3); got != want {
		t.Fatalf("Changes()=%d, want %d", got, want)
	}
	if got, want := c.LastInsertRowID(), int64(3); got != want {
		t.Fatalf("LastInsertRowID()=%d, want %d", got, want)
	}
	mustExec(t, c, "UPDATE t SET v = v + 1 WHERE id > 1; COMMIT")
	if got, want := c.TotalChanges(), int64(5); got != want {
		t.Fatalf("TotalChanges()=%d, want %d", got, want)
	}
	if !c.Autocommit() {
		t.Fatal("Autocommit() = false after COMMIT")
	}
}

func TestStmt_Metadata(t *testing.T) {
	c := openTest(t)
	mustExec(t, c, "CREATE TABLE t(id INTEGER PRIMARY KEY, Name TEXT, b)")
	s, _, err := c.Prepare("SELECT id, Name AS n, b, 1 + ? FROM t WHERE id IN (:a, @b, $c, ?5)")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.ReadOnly() {
		t.Error("SELECT: ReadOnly() = false")
	}
	if got, want := s.ParamCount(), 5; got != want {
		t.Errorf("ParamCount()=%d, want %d", got, want)
	}
	for i, want := range []string{"", ":a", "@b", "$c", "?5"} {
		if got := s.ParamName(i + 1); got != want {
			t.Errorf("ParamName(%d)=%q, want %q", i+1, got, want)
		}
	}
	if got, want := s.ColumnCount(), 4; got != want {
		t.Fatalf("ColumnCount()=%d, want %d", got, want)
	}
	for i, want := range [][2]string{{"id", "INTEGER"}, {"n", "TEXT"}, {"b", ""}, {"1 + ?", ""}} {
		if got := [2]string{s.ColumnName(i), s.ColumnDeclType(i)}; got != want {
			t.Errorf("column %d: name, decltype = %q, want %q", i, got, want)
		}
	}
	w, _, err := c.Prepare("INSERT INTO t(Name) VALUES('x')")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.ReadOnly() {
		t.Error("INSERT: ReadOnly() = true")
	}
}

// TestStmt_BindColumn pins how each Go type binds and comes back, both directly and after a round trip
// through a column without affinity.
func TestStmt_BindColumn(t *testing.T) {
	c := openTest(t)
	mustExec(t, c, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	long := strings.Repeat("0123456789", 1000) // larger than the initial scratch buffer
	tests := []struct {
		name     string
		in       any
		want     any
		wantType int
		typeName string
	}{
		{"nil", nil, nil, Null, "null"},
		{"int64 zero", int64(0), int64(0), Integer, "integer"},
		{"int64 max", int64(math.MaxInt64), int64(math.MaxInt64), Integer, "integer"},
		{"int64 min", int64(math.MinInt64), int64(math.MinInt64), Integer, "integer"},
		{"int", 7, int64(7), Integer, "integer"},
		{"bool true", true, int64(1), Integer, "integer"},
		{"bool false", false, int64(0), Integer, "integer"},
		{"float", 1.5, 1.5, Float, "real"},
		{"integral float stays real", 1.0, 1.0, Float, "real"},
		{"float max", math.MaxFloat64, math.MaxFloat64, Float, "real"},
		{"empty text", "", "", Text, "text"},
		{"text", "héllo", "héllo", Text, "text"},
		{"text with NUL bytes", "a\x00b\x00", "a\x00b\x00", Text, "text"},
		{"only a NUL", "\x00", "\x00", Text, "text"},
		{"long text", long, long, Text, "text"},
		{"blob", []byte{0, 1, 0xff}, []byte{0, 1, 0xff}, Blob, "blob"},
		{"empty blob", []byte{}, []byte{}, Blob, "blob"},
		{"nil blob binds NULL", []byte(nil), nil, Null, "null"},
		{"long blob", []byte(long), []byte(long), Blob, "blob"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := queryAll(t, c, "SELECT ?1, typeof(?1), octet_length(?1)", tt.in)[0]
			if !reflect.DeepEqual(row[0], tt.want) {
				t.Errorf("SELECT ?1: got %#v, want %#v", row[0], tt.want)
			}
			if row[1] != tt.typeName {
				t.Errorf("typeof(?1)=%v, want %s", row[1], tt.typeName)
			}
			if n, ok := lenOf(tt.want); ok && row[2] != int64(n) {
				t.Errorf("octet_length(?1)=%v, want %d", row[2], n)
			}

			id := int64(i + 1)
			mustBindExec(t, c, "INSERT INTO t(id, v) VALUES(?1, ?2)", id, tt.in)
			s, _, err := c.Prepare("SELECT v FROM t WHERE id = ?1")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Bind(1, id); err != nil {
				t.Fatal(err)
			}
			if row, err := s.Step(); err != nil || !row {
				t.Fatalf("Step: row=%v err=%v", row, err)
			}
			if got := s.ColumnType(0); got != tt.wantType {
				t.Errorf("ColumnType(0)=%d, want %d", got, tt.wantType)
			}
			if got := s.Column(0); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("stored and read back: got %#v, want %#v", got, tt.want)
			}
		})
	}

	t.Run("each text bind is copied", func(t *testing.T) {
		// Bind reuses one scratch buffer; SQLITE_TRANSIENT must make SQLite copy each value before the next.
		row := queryAll(t, c, "SELECT ?1, ?2, ?3", "first", []byte("second"), "third")[0]
		if want := []any{"first", []byte("second"), "third"}; !reflect.DeepEqual(row, want) {
			t.Fatalf("got %#v, want %#v", row, want)
		}
	})
	t.Run("unsupported types", func(t *testing.T) {
		s, _, err := c.Prepare("SELECT ?1")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, v := range []any{int32(1), uint64(1), float32(1), struct{}{}, []string{"x"}} {
			if err := s.Bind(1, v); err == nil {
				t.Errorf("Bind(%T) succeeded", v)
			}
		}
		if err := s.Bind(2, int64(1)); !IsCode(err, lib.SQLITE_RANGE) {
			t.Errorf("Bind out of range: err=%v, want SQLITE_RANGE", err)
		}
	})
	t.Run("Reset keeps bindings, ClearBindings clears them", func(t *testing.T) {
		s, _, err := c.Prepare("SELECT ?1")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Bind(1, "kept"); err != nil {
			t.Fatal(err)
		}
		for i, want := range []any{"kept", "kept", nil} {
			if i == 2 {
				s.ClearBindings()
			}
			if row, err := s.Step(); err != nil || !row {
				t.Fatalf("run %d: Step: row=%v err=%v", i, row, err)
			}
			if got := s.Column(0); got != want {
				t.Fatalf("run %d: Column(0)=%#v, want %#v", i, got, want)
			}
			if err := s.Reset(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func mustBindExec(tb testing.TB, c *Conn, sql string, args ...any) {
	tb.Helper()
	if rows := queryAll(tb, c, sql, args...); len(rows) != 0 {
		tb.Fatalf("%q returned rows", sql)
	}
}

func lenOf(v any) (int, bool) {
	switch x := v.(type) {
	case string:
		return len(x), true
	case []byte:
		return len(x), true
	}
	return 0, false
}

func TestColumn_IntegerVersusReal(t *testing.T) {
	c := openTest(t)
	mustExec(t, c, "CREATE TABLE t(i INTEGER, r REAL, n NUMERIC, x)")
	mustExec(t, c, "INSERT INTO t VALUES(1.0, 1, '2.0', 3.0), (2.5, 2.5, '1e3', 4)")
	got := queryAll(t, c, "SELECT i, r, n, x, 1, 1.0, 1e0, 7 / 2, 7 / 2.0, CAST(1 AS REAL), 9223372036854775807 + 1 FROM t")
	want := [][]any{
		{int64(1), 1.0, int64(2), 3.0, int64(1), 1.0, 1.0, int64(3), 3.5, 1.0, 9.223372036854776e18},
		{2.5, 2.5, int64(1000), int64(4), int64(1), 1.0, 1.0, int64(3), 3.5, 1.0, 9.223372036854776e18},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
}

// event is a copy of what one pre-update callback saw.
type event struct {
	Op              int
	Database, Table string
	OldRowID        int64 // 0 for inserts
	NewRowID        int64 // 0 for deletes
	Depth, Count    int
	Old, New        []any
}

// recordPreUpdates installs a hook appending a copy of each callback's PreUpdate to *events.
func recordPreUpdates(c *Conn, events *[]event) {
	c.SetPreUpdateHook(func(p *PreUpdate) {
		e := event{Op: p.Op, Database: p.Database, Table: p.Table, Depth: p.Depth(), Count: p.Count()}
		if p.Op != OpInsert {
			e.OldRowID = p.OldRowID
			for i := range e.Count {
				e.Old = append(e.Old, p.Old(i))
			}
		}
		if p.Op != OpDelete {
			e.NewRowID = p.NewRowID
			for i := range e.Count {
				e.New = append(e.New, p.New(i))
			}
		}
		*events = append(*events, e)
	})
}

const hookSchema = `
CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, b BLOB, r REAL, n);
CREATE TABLE log(id INTEGER PRIMARY KEY, tid INTEGER);
CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log(tid) VALUES(new.id); END;
CREATE TEMP TABLE tmp(x);
`

func TestPreUpdateHook(t *testing.T) {
	tests := []struct {
		name  string
		setup string // run before the hook is installed
		sql   string
		want  []event
	}{
		{
			name: "insert with NUL text and an empty blob, trigger at depth 1",
			sql:  "INSERT INTO t VALUES(1, 'a' || char(0) || 'b', x'', 1.5, NULL)",
			want: []event{
				{Op: OpInsert, Database: "main", Table: "t", NewRowID: 1, Count: 5, New: []any{int64(1), "a\x00b", []byte{}, 1.5, nil}},
				{Op: OpInsert, Database: "main", Table: "log", NewRowID: 1, Depth: 1, Count: 2, New: []any{int64(1), int64(1)}},
			},
		},
		{
			name: "integer versus real",
			sql:  "INSERT INTO t(id, r, n) VALUES(2, 4, 3.0)",
			want: []event{
				{Op: OpInsert, Database: "main", Table: "t", NewRowID: 2, Count: 5, New: []any{int64(2), nil, nil, 4.0, 3.0}},
				{Op: OpInsert, Database: "main", Table: "log", NewRowID: 1, Depth: 1, Count: 2, New: []any{int64(1), int64(2)}},
			},
		},
		{
			name:  "update changing the rowid",
			setup: "INSERT INTO t VALUES(1, 'x' || char(0), x'01', 2.0, 7)",
			sql:   "UPDATE t SET id = 5, s = char(0), b = zeroblob(0) WHERE id = 1",
			want: []event{{
				Op: OpUpdate, Database: "main", Table: "t", OldRowID: 1, NewRowID: 5, Count: 5,
				Old: []any{int64(1), "x\x00", []byte{1}, 2.0, int64(7)},
				New: []any{int64(5), "\x00", []byte{}, 2.0, int64(7)},
			}},
		},
		{
			name:  "delete",
			setup: "INSERT INTO t VALUES(3, '', x'', -1.0, 'z')",
			sql:   "DELETE FROM t",
			want: []event{{
				Op: OpDelete, Database: "main", Table: "t", OldRowID: 3, Count: 5,
				Old: []any{int64(3), "", []byte{}, -1.0, "z"},
			}},
		},
		{
			name:  "INSERT OR REPLACE is a delete then an insert",
			setup: "INSERT INTO t(id, s) VALUES(1, 'old')",
			sql:   "INSERT OR REPLACE INTO t(id, s) VALUES(1, 'new')",
			want: []event{
				{Op: OpDelete, Database: "main", Table: "t", OldRowID: 1, Count: 5, Old: []any{int64(1), "old", nil, nil, nil}},
				{Op: OpInsert, Database: "main", Table: "t", NewRowID: 1, Count: 5, New: []any{int64(1), "new", nil, nil, nil}},
				{Op: OpInsert, Database: "main", Table: "log", NewRowID: 2, Depth: 1, Count: 2, New: []any{int64(2), int64(1)}},
			},
		},
		{
			name: "temp table",
			sql:  "INSERT INTO tmp VALUES('q')",
			want: []event{{Op: OpInsert, Database: "temp", Table: "tmp", NewRowID: 1, Count: 1, New: []any{"q"}}},
		},
		{
			name: "statement changing nothing",
			sql:  "DELETE FROM t WHERE id = 42",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openTest(t)
			mustExec(t, c, hookSchema+tt.setup)
			var got []event
			recordPreUpdates(c, &got)
			mustExec(t, c, tt.sql)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("events:\n got  %#v\n want %#v", got, tt.want)
			}
		})
	}

	t.Run("removed with nil", func(t *testing.T) {
		c := openTest(t)
		mustExec(t, c, hookSchema)
		var got []event
		recordPreUpdates(c, &got)
		c.SetPreUpdateHook(nil)
		mustExec(t, c, "INSERT INTO t(s) VALUES('x')")
		if len(got) != 0 {
			t.Fatalf("events after removing the hook: %#v", got)
		}
	})
	t.Run("each connection has its own hook", func(t *testing.T) {
		c1, c2 := openTest(t), openTest(t)
		mustExec(t, c1, "CREATE TABLE a(x)")
		mustExec(t, c2, "CREATE TABLE b(x)")
		var got1, got2 []event
		recordPreUpdates(c1, &got1)
		recordPreUpdates(c2, &got2)
		mustExec(t, c2, "INSERT INTO b VALUES(1)")
		if len(got1) != 0 || len(got2) != 1 || got2[0].Table != "b" {
			t.Fatalf("c1 saw %#v, c2 saw %#v; want only c2 to see the insert into b", got1, got2)
		}
	})
}

func TestConn_SetTriggers(t *testing.T) {
	c := openTest(t)
	mustExec(t, c, hookSchema)
	var events []event
	recordPreUpdates(c, &events)

	if err := c.SetTriggers(false); err != nil {
		t.Fatalf("SetTriggers(false): %v", err)
	}
	mustExec(t, c, "INSERT INTO t(id) VALUES(1)")
	if got := queryOne(t, c, "SELECT count(*) FROM log"); got != int64(0) {
		t.Fatalf("triggers off: log has %v rows, want 0", got)
	}
	if len(events) != 1 || events[0].Table != "t" {
		t.Fatalf("triggers off: events %#v, want the insert into t only", events)
	}
	// Creating and dropping triggers still works with firing off.
	mustExec(t, c, "CREATE TRIGGER tr2 AFTER DELETE ON t BEGIN DELETE FROM log; END; DROP TRIGGER tr2")

	if err := c.SetTriggers(true); err != nil {
		t.Fatalf("SetTriggers(true): %v", err)
	}
	events = events[:0]
	mustExec(t, c, "INSERT INTO t(id) VALUES(2)")
	if got := queryOne(t, c, "SELECT count(*) FROM log"); got != int64(1) {
		t.Fatalf("triggers on: log has %v rows, want 1", got)
	}
	if len(events) != 2 || events[1].Table != "log" || events[1].Depth != 1 {
		t.Fatalf("triggers on: events %#v, want t then log at depth 1", events)
	}
}

func TestConn_SetDefensive(t *testing.T) {
	c := openTest(t)
	for _, on := range []bool{true, false} {
		if err := c.SetDefensive(on); err != nil {
			t.Fatalf("SetDefensive(%v): %v", on, err)
		}
	}
}

type authCall struct {
	Action                        int
	Arg1, Arg2, Database, Trigger string
}

func TestConn_SetAuthorizer(t *testing.T) {
	c := openTest(t)
	mustExec(t, c, hookSchema+"INSERT INTO t(id, s) VALUES(1, 'secret')")
	var calls []authCall
	deny := map[int]int{} // action -> result; AuthOK otherwise
	c.SetAuthorizer(func(action int, arg1, arg2, database, trigger string) int {
		calls = append(calls, authCall{action, arg1, arg2, database, trigger})
		if r, ok := deny[action]; ok && (action != ActionRead || arg2 == "s") {
			return r
		}
		return AuthOK
	})

	t.Run("sees actions", func(t *testing.T) {
		calls = nil
		s, _, err := c.Prepare("INSERT INTO t(s) VALUES(hex(random()))")
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		for _, want := range []authCall{
			{ActionInsert, "t", "", "main", ""},
			{ActionFunction, "", "random", "", ""},
			{ActionFunction, "", "hex", "", ""},
			{ActionInsert, "log", "", "main", "tr"}, // compiled from the trigger, which is named
		} {
			if !containsCall(calls, want) {
				t.Errorf("authorizer was not called with %+v; calls: %+v", want, calls)
			}
		}
		calls = nil
		mustExec(t, c, "CREATE TABLE x(a); DROP TABLE x")
		for _, want := range []authCall{
			{ActionCreateTable, "x", "", "main", ""},
			{ActionDropTable, "x", "", "main", ""},
		} {
			if !containsCall(calls, want) {
				t.Errorf("authorizer was not called with %+v; calls: %+v", want, calls)
			}
		}
	})
	t.Run("deny is an authorization error", func(t *testing.T) {
		deny[ActionDelete] = AuthDeny
		defer delete(deny, ActionDelete)
		s, _, err := c.Prepare("DELETE FROM t")
		if err == nil {
			s.Close()
			t.Fatal("Prepare of a denied statement succeeded")
		}
		if !IsCode(err, Auth) || err.Error() != "not authorized" {
			t.Fatalf("err=%#v, want code Auth, not authorized", err)
		}
		if err := c.Exec("DELETE FROM t"); !IsCode(err, Auth) {
			t.Fatalf("Exec: err=%v, want code Auth", err)
		}
		if got := queryOne(t, c, "SELECT count(*) FROM t"); got != int64(1) {
			t.Fatalf("rows after a denied DELETE: %v, want 1", got)
		}
	})
	t.Run("ignore reads NULL", func(t *testing.T) {
		deny[ActionRead] = AuthIgnore
		defer delete(deny, ActionRead)
		if got := queryAll(t, c, "SELECT id, s FROM t"); !reflect.DeepEqual(got, [][]any{{int64(1), nil}}) {
			t.Fatalf("got %#v, want id 1 and s NULL", got)
		}
	})
	t.Run("removed with nil", func(t *testing.T) {
		deny[ActionDelete] = AuthDeny
		defer delete(deny, ActionDelete)
		c.SetAuthorizer(nil)
		calls = nil
		mustExec(t, c, "DELETE FROM log")
		if len(calls) != 0 {
			t.Fatalf("authorizer called after removal: %+v", calls)
		}
	})
}

func containsCall(calls []authCall, want authCall) bool {
	for _, c := range calls {
		if c == want {
			return true
		}
	}
	return false
}

func TestConn_Interrupt(t *testing.T) {
	c := openTest(t)
	s, _, err := c.Prepare("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000) SELECT count(*) FROM n")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// An interrupt that arrives before the statement starts is forgotten when it starts, so keep interrupting
	// until Step returns.
	done := make(chan struct{})
	interrupter := make(chan int)
	go func() {
		n := 0
		deadline := time.Now().Add(time.Minute)
		for {
			select {
			case <-done:
				interrupter <- n
				return
			default:
			}
			if time.Now().After(deadline) {
				interrupter <- -1
				return
			}
			c.Interrupt()
			n++
			runtime.Gosched()
		}
	}()
	row, err := s.Step()
	close(done)
	if n := <-interrupter; n < 0 {
		t.Fatal("the query was not interrupted within a minute")
	}
	if row || !IsCode(err, Interrupt) {
		t.Fatalf("Step: row=%v err=%v, want an interrupt error", row, err)
	}
	if err.Error() != "interrupted" {
		t.Errorf("message %q, want interrupted", err.Error())
	}
	s.Reset()
	if got := queryOne(t, c, "SELECT 1"); got != int64(1) {
		t.Fatalf("after the interrupt: SELECT 1 = %v", got)
	}

	t.Run("after Close", func(t *testing.T) {
		c2, err := Open(filepath.Join(t.TempDir(), "x.db"), 0)
		if err != nil {
			t.Fatal(err)
		}
		c2.Close()
		c2.Interrupt() // must not touch the freed connection
	})
}

func TestCallbackPanic(t *testing.T) {
	type sentinel struct{ where string }
	catch := func(fn func()) (r any) {
		defer func() { r = recover() }()
		fn()
		return nil
	}

	t.Run("pre-update hook, Exec", func(t *testing.T) {
		c := openTest(t)
		mustExec(t, c, "CREATE TABLE t(x)")
		calls := 0
		c.SetPreUpdateHook(func(p *PreUpdate) {
			calls++
			panic(sentinel{"hook"})
		})
		r := catch(func() { c.Exec("INSERT INTO t VALUES(1), (2), (3)") })
		if r != (sentinel{"hook"}) {
			t.Fatalf("recovered %#v, want the hook's panic", r)
		}
		if calls != 1 {
			t.Fatalf("hook called %d times, want 1: callbacks after a panic are skipped", calls)
		}
		// The panic is not carried over to the next call.
		c.SetPreUpdateHook(nil)
		mustExec(t, c, "INSERT INTO t VALUES(4)")
	})
	t.Run("pre-update hook, Step", func(t *testing.T) {
		c := openTest(t)
		mustExec(t, c, "CREATE TABLE t(x)")
		c.SetPreUpdateHook(func(p *PreUpdate) { panic(sentinel{"step"}) })
		s, _, err := c.Prepare("INSERT INTO t VALUES(1)")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if r := catch(func() { s.Step() }); r != (sentinel{"step"}) {
			t.Fatalf("recovered %#v, want the hook's panic", r)
		}
	})
	t.Run("authorizer, Prepare", func(t *testing.T) {
		c := openTest(t)
		c.SetAuthorizer(func(action int, arg1, arg2, database, trigger string) int {
			if action == ActionCreateTable {
				panic(sentinel{"auth"})
			}
			return AuthOK
		})
		if r := catch(func() { c.Exec("CREATE TABLE t(x)") }); r != (sentinel{"auth"}) {
			t.Fatalf("recovered %#v, want the authorizer's panic", r)
		}
		if got := queryOne(t, c, "SELECT count(*) FROM sqlite_schema"); got != int64(0) {
			t.Fatalf("the panicking authorizer let the table be created (%v objects)", got)
		}
	})
}
