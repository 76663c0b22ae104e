package fsm

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/logical"
)

func TestSplitSQL(t *testing.T) {
	got := SplitSQL("CREATE TABLE t(x); INSERT INTO t VALUES('a;b');\n-- c;\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 1; DELETE FROM t; END;\nSELECT 1")
	want := []string{"CREATE TABLE t(x);", "INSERT INTO t VALUES('a;b');", "-- c;\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 1; DELETE FROM t; END;", "SELECT 1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SplitSQL = %q\nwant %q", got, want)
	}
}

func TestLiteral(t *testing.T) {
	for v, want := range map[any]string{
		nil: "NULL", int64(-3): "-3", 1.0: "1.0", 0.1: "0.1", "it's": "'it''s'", "a\x00b": "CAST(X'610062' AS TEXT)",
	} {
		if got := Literal(v); got != want {
			t.Errorf("Literal(%#v) = %s, want %s", v, got, want)
		}
	}
	if got := Literal([]byte{}); got != "X''" {
		t.Errorf("empty blob = %s", got)
	}
}

// A dump loaded into an empty database through capture and apply gives back every row with its type.
func TestDump_RoundTrip(t *testing.T) {
	src := open(t, t.TempDir())
	write(t, src, 1,
		"CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT)",
		"CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) ON DELETE CASCADE, r REAL, b BLOB, g AS (r * 2) STORED)",
		"CREATE TABLE k(a TEXT, b INTEGER, v, PRIMARY KEY(a, b)) WITHOUT ROWID",
		"CREATE TABLE norowid(x)",
		"CREATE TABLE shadow(rowid TEXT, oid)",
		"CREATE VIRTUAL TABLE ft USING fts5(body)",
		"CREATE INDEX c_p ON c(p)",
		"CREATE VIEW v AS SELECT p.name, count(*) n FROM p JOIN c ON c.p = p.id GROUP BY p.name",
		"CREATE TRIGGER tr AFTER INSERT ON p BEGIN INSERT INTO k VALUES(new.name, new.id, 'trig'); END",
		"INSERT INTO p VALUES(1, 'it''s'), (2, 'nul'||char(0)||'byte')",
		"INSERT INTO c(p, r, b) VALUES(1, 1.0, x''), (1, 2.5, x'00ff'), (2, 1e300, NULL)",
		"INSERT INTO norowid VALUES(1), (2.0), ('3')",
		"DELETE FROM norowid WHERE x = 1",
		"INSERT INTO shadow VALUES('a', 1), ('b', 2)",
		"DELETE FROM shadow WHERE oid = 1",
		"INSERT INTO ft VALUES('hello world'), ('semi;colon')",
	)
	var sb strings.Builder
	if _, err := src.DumpSQL(&sb); err != nil {
		t.Fatal(err)
	}
	dump := sb.String()

	dst := open(t, t.TempDir())
	var stmts []logical.Statement
	for _, s := range SplitSQL(dump) {
		if s != "BEGIN TRANSACTION;" && s != "COMMIT;" {
			stmts = append(stmts, logical.Statement{SQL: s})
		}
	}
	res, payload, err := dst.Execute(context.Background(), 1, []logical.Request{{Statements: stmts, Transaction: true}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res[0] {
		if r.Error != "" {
			t.Fatalf("statement %d %q: %s", i, stmts[i].SQL, r.Error)
		}
	}
	dst.Apply(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: payload})

	for _, q := range []string{
		"SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE '\\_rowboat%' ESCAPE '\\' ORDER BY name",
		"SELECT rowid, *, typeof(name) FROM p", "SELECT rowid, *, typeof(r), typeof(b) FROM c", "SELECT * FROM k",
		"SELECT rowid, x, typeof(x) FROM norowid", "SELECT _rowid_, rowid, oid FROM shadow", "SELECT rowid, * FROM ft WHERE ft MATCH 'hello'", "SELECT * FROM v",
	} {
		want, _ := query(t, src, q)
		got, _ := query(t, dst, q)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", q, got, want)
		}
	}
}

// DropAllSQL drops every user table, including one whose name merely starts with a virtual table's name; only
// the virtual table's own shadow tables are left to it.
func TestDropAllSQL_TablesNamedLikeShadows(t *testing.T) {
	f := open(t, t.TempDir())
	write(t, f, 1, "CREATE VIRTUAL TABLE docs USING fts5(body)", "CREATE TABLE docs_archive(x)", "CREATE TABLE plain(x)")
	drops, err := f.DropAllSQL(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(drops, "\n")
	for _, want := range []string{`"docs"`, `"docs_archive"`, `"plain"`} {
		if !strings.Contains(all, "DROP TABLE IF EXISTS "+want) {
			t.Errorf("no drop of %s in:\n%s", want, all)
		}
	}
	if strings.Contains(all, `"docs_data"`) || strings.Contains(all, `"docs_config"`) {
		t.Errorf("a shadow table is dropped on its own:\n%s", all)
	}
}
