package logical

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// Each case runs its batches (one request per string) on the leader, replicates the entries, and requires the
// replica to match the leader completely after every batch.
var equalityCases = []struct {
	name    string
	batches [][]string
}{
	{"text with NUL bytes", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"},
		{"INSERT INTO t(v) VALUES(char(97, 0, 98, 0))", "INSERT INTO t(v) VALUES(char(0))", "UPDATE t SET v = v || char(0) || 'z'"},
	}},
	{"empty blobs and empty text", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB, s TEXT)"},
		{"INSERT INTO t(b, s) VALUES(x'', ''), (zeroblob(0), ''), (NULL, NULL), (x'00ff', 'x')"},
		{"UPDATE t SET b = x'' WHERE id = 4"},
	}},
	{"integer versus real", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, a, r REAL, i INTEGER, n NUMERIC)"},
		{"INSERT INTO t(a, r, i, n) VALUES(1, 1, 1.0, '2'), (1.0, 2.5, 3.5, '1e3'), (9223372036854775807, -0.0, -9223372036854775808, 1.5e300)"},
		{"UPDATE t SET a = a * 1.0, r = r + 1"},
	}},
	{"INSERT OR REPLACE", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, u TEXT UNIQUE, v)"},
		{"INSERT INTO t VALUES(1, 'a', 1), (2, 'b', 2)"},
		{"INSERT OR REPLACE INTO t VALUES(1, 'c', 3)", "INSERT OR REPLACE INTO t(u, v) VALUES('b', 4)", "REPLACE INTO t VALUES(7, 'a', 5)"},
	}},
	{"UPSERT", [][]string{
		{"CREATE TABLE t(k TEXT PRIMARY KEY, n INTEGER)"},
		{"INSERT INTO t VALUES('a', 1) ON CONFLICT(k) DO UPDATE SET n = n + 1"},
		{"INSERT INTO t VALUES('a', 1) ON CONFLICT(k) DO UPDATE SET n = n + excluded.n", "INSERT INTO t VALUES('b', 1) ON CONFLICT DO NOTHING", "INSERT INTO t VALUES('b', 9) ON CONFLICT DO NOTHING"},
	}},
	{"UPDATE changing the rowid and the INTEGER PRIMARY KEY", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, v)", "CREATE TABLE r(a, b)"},
		{"INSERT INTO t VALUES(1, 'a'), (2, 'b'), (3, 'c')", "INSERT INTO r VALUES(1, 2), (3, 4)"},
		{"UPDATE t SET id = id + 10", "UPDATE r SET rowid = rowid + 100", "UPDATE t SET id = 5 WHERE id = 11"},
		{"UPDATE OR REPLACE t SET id = 12 WHERE id = 5"},
	}},
	{"bulk UPDATE and DELETE", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, g INTEGER, v)"},
		{"WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 500) INSERT INTO t(g, v) SELECT x % 7, hex(x) FROM s"},
		{"UPDATE t SET v = v || '!' WHERE g IN (1, 3)", "DELETE FROM t WHERE g = 5", "DELETE FROM t WHERE id > 450"},
	}},
	{"AUTOINCREMENT", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, v)"},
		{"INSERT INTO t(v) VALUES('a'), ('b'), ('c')", "DELETE FROM t WHERE id = 3"},
		{"INSERT INTO t(v) VALUES('d')", "INSERT INTO t(id, v) VALUES(100, 'e')", "DELETE FROM t WHERE id = 100"},
		{"INSERT INTO t(v) VALUES('f')", "UPDATE sqlite_sequence SET seq = 1000 WHERE name = 't'", "INSERT INTO t(v) VALUES('g')"},
	}},
	{"columns named rowid, _rowid_ and oid", [][]string{
		{"CREATE TABLE r1(rowid TEXT, x)", "CREATE TABLE r2(ROWID, _Rowid_ INTEGER, x)", "CREATE TABLE r3(id INTEGER PRIMARY KEY, rowid, oid)"},
		{"INSERT INTO r1 VALUES('a', 1), ('b', 2)", "INSERT INTO r2 VALUES('p', 10, 1), ('q', 20, 2)", "INSERT INTO r3 VALUES(7, 'r', 'o'), (8, 's', 'p')"},
		{"UPDATE r1 SET rowid = 'c' WHERE x = 1", "UPDATE r2 SET oid = oid + 5, _rowid_ = 99", "DELETE FROM r1 WHERE x = 2", "UPDATE r3 SET id = 9 WHERE id = 8"},
		{"CREATE TABLE r4 AS SELECT rowid, x FROM r1", "INSERT INTO r4 VALUES('z', 3)", "DELETE FROM r2 WHERE x = 1", "DELETE FROM r3 WHERE rowid = 'r'"},
	}},
	{"temp objects stay on the leader's connection", [][]string{
		{"CREATE TABLE x(a)"},
		{"CREATE TEMP TABLE y(a); CREATE INDEX yi ON y(a)", "CREATE TEMP TABLE x(a); ALTER TABLE x ADD COLUMN b", "INSERT INTO main.x VALUES(1)",
			"ANALYZE temp", "REINDEX temp.yi", "CREATE VIRTUAL TABLE temp.tv USING fts5(a)", "DROP TABLE temp.tv"},
		{"INSERT INTO main.x VALUES(2)", "CREATE TABLE tv(a, b)", "INSERT INTO tv VALUES(1, 2)"},
	}},
	{"FTS5 configuration commands (written as blob writes)", [][]string{
		{"CREATE VIRTUAL TABLE f USING fts5(a)", "INSERT INTO f VALUES('hello world')"},
		{"INSERT INTO f(f, rank) VALUES('rank', 'bm25(2.0)')", "INSERT INTO f(f, rank) VALUES('automerge', 4)", "INSERT INTO f(f, rank) VALUES('pgsz', 8000)"},
		{"INSERT INTO f VALUES('more words')", "INSERT INTO f(f) VALUES('optimize')", "INSERT INTO f(f) VALUES('integrity-check')"},
	}},
	{"a failing statement that changed the schema first", [][]string{
		{"CREATE TABLE t(a, g AS (a+1) VIRTUAL, b)", "CREATE TABLE u(a, b)"},
		{"ALTER TABLE t DROP COLUMN g; INSERT INTO t VALUES(1, 2); SELECT * FROM nosuch", "INSERT INTO t(a, b) VALUES(10, 20)",
			"ALTER TABLE u ADD COLUMN c; INSERT INTO u VALUES(1, 2, 3); SELECT * FROM nosuch", "INSERT INTO u VALUES(4, 5)"},
	}},
	{"WITHOUT ROWID key with a collation other than its column's", [][]string{
		{"CREATE TABLE w(k TEXT COLLATE NOCASE, v, PRIMARY KEY(k COLLATE BINARY)) WITHOUT ROWID",
			"CREATE TABLE r(a TEXT COLLATE RTRIM, b INTEGER, v, PRIMARY KEY(b, a COLLATE BINARY)) WITHOUT ROWID"},
		{"INSERT INTO w VALUES('a', 1), ('A', 2)", "INSERT INTO r VALUES('x', 1, 1), ('x ', 1, 2)"},
		{"DELETE FROM w WHERE v = 1", "UPDATE w SET v = 3 WHERE v = 2", "UPDATE r SET v = 9 WHERE v = 2", "DELETE FROM r WHERE v = 1"},
	}},
	{"WITHOUT ROWID with a composite key", [][]string{
		{"CREATE TABLE w(a TEXT, b INTEGER, c, d BLOB, PRIMARY KEY(b, a)) WITHOUT ROWID"},
		{"INSERT INTO w VALUES('x', 1, 1.5, x'01'), ('y', 1, NULL, x''), ('x', 2, 'z', NULL)"},
		{"UPDATE w SET c = 'changed' WHERE a = 'x'", "UPDATE w SET a = 'q', b = 9 WHERE b = 2", "DELETE FROM w WHERE a = 'y'"},
		{"INSERT OR REPLACE INTO w VALUES('q', 9, 'replaced', NULL)"},
	}},
	{"generated columns, STORED and VIRTUAL", [][]string{
		{"CREATE TABLE g(id INTEGER PRIMARY KEY, a TEXT, b AS (upper(a)) VIRTUAL, c INTEGER, d AS (c * 2) STORED, e)"},
		{"INSERT INTO g(a, c, e) VALUES('x', 1, 'e1'), ('y', 2, 'e2')"},
		{"UPDATE g SET a = 'z', c = c + 10", "DELETE FROM g WHERE id = 1", "CREATE INDEX gi ON g(b)"},
		{"INSERT INTO g(a, c, e) VALUES('w', 5, 'e3')"},
	}},
	{"triggers, one of them calling random()", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, v)", "CREATE TABLE log(id INTEGER PRIMARY KEY, tid, r, what)",
			"CREATE TRIGGER ti AFTER INSERT ON t BEGIN INSERT INTO log(tid, r, what) VALUES(new.id, random(), 'ins'); END",
			"CREATE TRIGGER tu AFTER UPDATE ON t BEGIN INSERT INTO log(tid, r, what) VALUES(new.id, randomblob(4), 'upd'); UPDATE t SET v = v || '+' WHERE id = new.id AND v NOT LIKE '%+'; END",
			"CREATE TRIGGER td BEFORE DELETE ON t BEGIN DELETE FROM log WHERE tid = old.id AND what = 'ins'; END"},
		{"INSERT INTO t(v) VALUES('a'), ('b'), ('c')"},
		{"UPDATE t SET v = 'x' WHERE id = 2", "DELETE FROM t WHERE id = 1"},
	}},
	{"foreign-key cascades", [][]string{
		{"CREATE TABLE p(id INTEGER PRIMARY KEY, v)",
			"CREATE TABLE c1(id INTEGER PRIMARY KEY, pid REFERENCES p(id) ON DELETE CASCADE ON UPDATE CASCADE)",
			"CREATE TABLE c2(id INTEGER PRIMARY KEY, pid REFERENCES p(id) ON DELETE SET NULL)"},
		{"INSERT INTO p VALUES(1, 'a'), (2, 'b')", "INSERT INTO c1(pid) VALUES(1), (1), (2)", "INSERT INTO c2(pid) VALUES(1), (2)"},
		{"UPDATE p SET id = 10 WHERE id = 1", "DELETE FROM p WHERE id = 2"},
		{"INSERT INTO c1(pid) VALUES(99)"}, // a foreign-key violation: an error, nothing replicated
		{"DROP TABLE p"},
	}},
	{"FTS5", [][]string{
		{"CREATE VIRTUAL TABLE f USING fts5(title, body)"},
		{"INSERT INTO f VALUES('hello', 'hello world')", "INSERT INTO f VALUES('second', 'the quick brown fox')"},
		{"INSERT INTO f(rowid, title, body) VALUES(10, 'x', 'jumps over'); UPDATE f SET body = 'lazy dog' WHERE rowid = 1", "DELETE FROM f WHERE title = 'second'"},
		{"INSERT INTO f(f) VALUES('optimize')"},
		{"DROP TABLE f"},
	}},
	{"R*Tree", [][]string{
		{"CREATE VIRTUAL TABLE rt USING rtree(id, x0, x1, y0, y1)"},
		{"INSERT INTO rt VALUES(1, 0, 1, 0, 1), (2, 5, 6, 5, 6)"},
		{"UPDATE rt SET x1 = 2 WHERE id = 1", "DELETE FROM rt WHERE id = 2"},
	}},
	{"TEMP tables are not replicated", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, v)"},
		{"CREATE TEMP TABLE scratch(v); INSERT INTO scratch VALUES('a'), ('b'); INSERT INTO t(v) SELECT v FROM scratch; DROP TABLE scratch"},
		{"CREATE TEMP TABLE t(v); INSERT INTO t VALUES('shadowing main.t'); DROP TABLE temp.t", "INSERT INTO main.t(v) VALUES('c')"},
	}},
	{"DDL: tables, indexes, views, triggers, ALTER", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, a, b)", "CREATE INDEX ti ON t(a)", "CREATE UNIQUE INDEX tu ON t(b) WHERE b IS NOT NULL",
			"CREATE VIEW tv AS SELECT id, a FROM t WHERE a > 1", "CREATE TRIGGER tt AFTER INSERT ON t BEGIN SELECT 1; END"},
		{"INSERT INTO t(a, b) VALUES(1, 'x'), (2, 'y'), (3, NULL)"},
		{"ALTER TABLE t ADD COLUMN c DEFAULT 'dflt'", "ALTER TABLE t RENAME COLUMN a TO aa", "ALTER TABLE t RENAME TO t2", "INSERT INTO t2(aa, b) VALUES(4, 'z')"},
		{"ALTER TABLE t2 DROP COLUMN c", "DROP INDEX ti", "DROP VIEW tv", "DROP TRIGGER tt", "CREATE INDEX ti2 ON t2(aa, b)"},
		{"REINDEX", "ANALYZE", "PRAGMA user_version = 42", "PRAGMA application_id = 7"},
		{"DROP TABLE t2"},
	}},
	{"CREATE TABLE AS SELECT with random()", [][]string{
		{"CREATE TABLE src(id INTEGER PRIMARY KEY, v)"},
		{"INSERT INTO src(v) VALUES('a'), ('b'), ('c'), (NULL)"},
		{"CREATE TABLE copy AS SELECT id, v, random() AS r, randomblob(4) AS b, datetime('now') AS t FROM src"},
		{"CREATE TABLE IF NOT EXISTS copy AS SELECT 1 AS x", "CREATE TABLE empty AS SELECT * FROM src WHERE 0"},
	}},
	{"non-deterministic DML", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, x, ts, b)"},
		{"INSERT INTO t(x) VALUES(1), (2), (3), (4), (5), (6)"},
		{"UPDATE t SET x = random()", "UPDATE t SET ts = unixepoch('subsec')", "UPDATE t SET b = randomblob(8)",
			"INSERT INTO t(x, ts) VALUES(CURRENT_TIMESTAMP, strftime('%f', 'now'))",
			"DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY random() LIMIT 1)"},
	}},
	{"multi-statement strings and failures in between", [][]string{
		{"CREATE TABLE t(id INTEGER PRIMARY KEY, v NOT NULL)"},
		{"INSERT INTO t(v) VALUES(1); INSERT INTO t(v) VALUES(2)", "INSERT INTO t(v) VALUES(3); INSERT INTO t(v) VALUES(NULL)", "INSERT INTO nosuch VALUES(1)", "INSERT INTO t(v) VALUES(4)"},
		{"INSERT OR FAIL INTO t(id, v) VALUES(50, 'a'), (51, NULL)", "INSERT OR ROLLBACK INTO t(id, v) VALUES(60, 'a'), (1, 'dup')", "INSERT INTO t(v) VALUES(5)"},
	}},
}

func TestCapture_Equality(t *testing.T) {
	for _, tc := range equalityCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t)
			for _, batch := range tc.batches {
				p.exec(batch...)
				p.check()
			}
		})
	}
}

// TestCapture_EqualityOneBatch runs every case's statements as a single batch, so savepoints, DDL and FTS flushes
// interleave in one transaction.
func TestCapture_EqualityOneBatch(t *testing.T) {
	for _, tc := range equalityCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t)
			var all []string
			for _, b := range tc.batches {
				all = append(all, b...)
			}
			p.exec(all...)
			p.check()
		})
	}
}

func TestCapture_NonDeterminism(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE t(id INTEGER PRIMARY KEY, x)")
	p.mustExec("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 50) INSERT INTO t(id) SELECT n FROM s")

	t.Run("random per row", func(t *testing.T) {
		p.mustExec("UPDATE t SET x = random()")
		p.check()
		distinct := queryRows(t, p.replica, "SELECT count(DISTINCT x), count(*), count(x) FROM t")
		if got, want := distinct[0], "int(50) int(50) int(50)"; got != want {
			t.Fatalf("distinct/total/non-null = %s, want %s", got, want)
		}
	})
	t.Run("ORDER BY random() LIMIT 1", func(t *testing.T) {
		p.mustExec("DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY random() LIMIT 1)")
		p.check()
		if got := queryRows(t, p.replica, "SELECT count(*) FROM t")[0]; got != "int(49)" {
			t.Fatalf("count = %s, want int(49)", got)
		}
	})
	t.Run("unixepoch subsec, CURRENT_TIMESTAMP, randomblob", func(t *testing.T) {
		p.mustExec("UPDATE t SET x = unixepoch('subsec') WHERE id % 3 = 0", "UPDATE t SET x = CURRENT_TIMESTAMP WHERE id % 3 = 1", "UPDATE t SET x = randomblob(8) WHERE id % 3 = 2")
		p.check()
		if got := queryRows(t, p.replica, "SELECT count(*) FROM t WHERE typeof(x) = 'blob' AND length(x) = 8")[0]; got == "int(0)" {
			t.Fatalf("no randomblob rows on the replica")
		}
	})
}

func TestCapture_Results(t *testing.T) {
	p := newPair(t)
	res := p.exec(
		"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
		"INSERT INTO t(v) VALUES('a'), ('b')",
		"UPDATE t SET v = 'c'",
		"SELECT id, v, 1.5 AS r FROM t ORDER BY id",
		"INSERT INTO nosuch VALUES(1)",
		"INSERT INTO t(v) VALUES('d') RETURNING id, v",
		"DROP TABLE IF EXISTS nosuch",
		"UPDATE t SET v = 'e' WHERE id > 100",
	)
	if r := res[6]; r.RowsAffected != 0 || r.Error != "" {
		t.Errorf("DROP TABLE IF EXISTS of a missing table: %+v, want rows_affected 0 (not the earlier INSERT's 1)", r)
	}
	if r := res[7]; r.RowsAffected != 0 {
		t.Errorf("an UPDATE that matched nothing: rows_affected %d, want 0", r.RowsAffected)
	}
	if r := res[1]; r.LastInsertID != 2 || r.RowsAffected != 2 || r.Error != "" {
		t.Errorf("insert: %+v, want last_insert_id 2, rows_affected 2", r)
	}
	if r := res[2]; r.RowsAffected != 2 {
		t.Errorf("update: rows_affected %d, want 2", r.RowsAffected)
	}
	r := res[3]
	if got, want := strings.Join(r.Columns, ","), "id,v,r"; got != want {
		t.Errorf("columns %s, want %s", got, want)
	}
	if got, want := strings.Join(r.Types, ","), "integer,text,"; got != want {
		t.Errorf("types %s, want %s", got, want)
	}
	if len(r.Rows) != 2 || r.Rows[1][0] != int64(2) || r.Rows[1][1] != "c" || r.Rows[1][2] != 1.5 {
		t.Errorf("rows %v", r.Rows)
	}
	if got, want := res[4].Error, "no such table: nosuch"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if r := res[5]; len(r.Rows) != 1 || r.Rows[0][0] != int64(3) || r.RowsAffected != 1 {
		t.Errorf("RETURNING: %+v", r)
	}
	for i, r := range res {
		if r.Time <= 0 {
			t.Errorf("statement %d: no time (?timings): %+v", i, r)
		}
	}
	p.check()
}

func TestCapture_Parameters(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE t(id INTEGER PRIMARY KEY, a, b)")
	res := p.execRequests(Request{Statements: []Statement{
		{SQL: "INSERT INTO t(a, b) VALUES(?, ?)", Args: []any{int64(1), "x\x00y"}},
		{SQL: "INSERT INTO t(a, b) VALUES(:a, @b)", Named: map[string]any{"a": 2.5, "b": []byte{}}},
		{SQL: "INSERT INTO t(a, b) VALUES(?2, ?1)", Args: []any{"second", "first"}},
		{SQL: "INSERT INTO t(a, b) VALUES(?, ?)", Args: []any{int64(1)}},
		{SQL: "INSERT INTO t(a, b) VALUES(?, ?)", Args: []any{int64(1), int64(2), int64(3)}},
		{SQL: "INSERT INTO t(a, b) VALUES(:a, :missing)", Named: map[string]any{"a": 1}},
		{SQL: "INSERT INTO t(a, b) VALUES(?, ?)", Args: []any{true, nil}},
		{SQL: "INSERT INTO t(a, b) VALUES(?, ?)", Args: []any{map[string]any{}, 1}},
	}})[0]
	for i, wantErr := range []bool{false, false, false, true, true, true, false, true} {
		if got := res[i].Error != ""; got != wantErr {
			t.Errorf("statement %d: error %q, want error: %v", i, res[i].Error, wantErr)
		}
	}
	p.check()
	got := queryRows(t, p.replica, "SELECT a, b FROM t ORDER BY id")
	want := []string{`int(1) text("x\x00y")`, `real(2.5) blob()`, `text("first") text("second")`, `int(1) NULL`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("rows %q, want %q", got, want)
	}
}

func TestCapture_Transaction(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE t(id INTEGER PRIMARY KEY, v NOT NULL)")
	res := p.execRequests(
		Request{Transaction: true, Statements: []Statement{{SQL: "INSERT INTO t(v) VALUES('a')"}, {SQL: "INSERT INTO t(v) VALUES(NULL)"}, {SQL: "INSERT INTO t(v) VALUES('never')"}}},
		Request{Statements: []Statement{{SQL: "INSERT INTO t(v) VALUES('b')"}, {SQL: "INSERT INTO t(v) VALUES(NULL)"}, {SQL: "INSERT INTO t(v) VALUES('c')"}}},
		Request{Transaction: true, Statements: []Statement{{SQL: "INSERT INTO t(v) VALUES('d')"}, {SQL: "INSERT INTO t(v) VALUES('e')"}}},
	)
	if got := len(res[0]); got != 2 {
		t.Errorf("transaction request: %d results, want 2 (stop at the failing statement)", got)
	}
	if res[0][1].Error == "" {
		t.Errorf("transaction request: second statement should fail")
	}
	if len(res[1]) != 3 || res[1][1].Error == "" || res[1][2].Error != "" {
		t.Errorf("plain request: %+v", res[1])
	}
	p.check()
	if got, want := strings.Join(queryRows(t, p.replica, "SELECT v FROM t ORDER BY v"), ","), `text("b"),text("c"),text("d"),text("e")`; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
}

// A statement that rolls back the whole transaction fails alone; the other requests of its batch survive.
func TestCapture_StatementEndsTransaction(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)", "CREATE TABLE guard(x)",
		"CREATE TRIGGER g BEFORE INSERT ON guard BEGIN SELECT RAISE(ROLLBACK, 'guard says no'); END")
	res := p.exec("INSERT INTO t VALUES(1, 'a')", "INSERT INTO guard VALUES(1)", "INSERT OR ROLLBACK INTO t VALUES(1, 'dup')", "INSERT INTO t VALUES(2, 'b')")
	if res[0].Error != "" || res[3].Error != "" {
		t.Errorf("healthy statements failed: %+v", res)
	}
	if !strings.Contains(res[1].Error, "guard says no") || res[2].Error == "" {
		t.Errorf("rolling-back statements: %q, %q", res[1].Error, res[2].Error)
	}
	p.check()
	if got := queryRows(t, p.replica, "SELECT count(*) FROM t")[0]; got != "int(2)" {
		t.Errorf("count %s, want int(2)", got)
	}
}

func TestCapture_Refused(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
	for _, sql := range []string{
		"ATTACH DATABASE ':memory:' AS other",
		"DETACH DATABASE other",
		"VACUUM",
		"  /* comment */ vacuum INTO '/tmp/x.db'",
		"SELECT load_extension('x')",
		"BEGIN",
		"COMMIT",
		"SAVEPOINT s",
		"RELEASE s",
		"PRAGMA journal_mode = DELETE",
		"PRAGMA synchronous = FULL",
		"PRAGMA foreign_keys = OFF",
		"PRAGMA writable_schema = ON",
		"PRAGMA recursive_triggers = 1",
		"PRAGMA wal_checkpoint",
		"PRAGMA optimize",
		"CREATE TABLE _rowboat_mine(x)",
		"CREATE INDEX i ON t(v) WHERE v > random()",
		"CREATE TABLE p(x DEFAULT ?)",
		"CREATE VIRTUAL TABLE s USING dbstat",
		"CREATE VIEW _rowboat_v AS SELECT 1",
		"CREATE INDEX _rowboat_i ON t(v)", // dumps and loads skip objects with the reserved prefix
		"CREATE TRIGGER _rowboat_tr AFTER INSERT ON t BEGIN SELECT 1; END",
		"ALTER TABLE t RENAME TO _rowboat_t",
		"UPDATE sqlite_dbpage SET data = zeroblob(4096) WHERE pgno = 2",
		"INSERT INTO sqlite_dbpage(pgno, data) VALUES (1, zeroblob(4096))",
		"DELETE FROM sqlite_dbpage WHERE pgno = 3",
		"CREATE VIRTUAL TABLE temp.pg USING sqlite_dbpage", // an alias whose writes the name check would miss
		"CREATE VIRTUAL TABLE temp.s USING dbstat",
	} {
		res := p.exec(sql)
		if res[0].Error == "" {
			t.Errorf("%q: no error", sql)
			continue
		}
		if word := strings.Fields(sql)[0]; (word == "BEGIN" || word == "COMMIT" || word == "SAVEPOINT") && !strings.HasPrefix(res[0].Error, ErrRefused.Error()+": "+word+" ") {
			t.Errorf("%q: error %q does not name the statement", sql, res[0].Error)
		}
		if !strings.Contains(sql, "random") && !strings.Contains(sql, "?") && !strings.Contains(res[0].Error, ErrRefused.Error()) {
			t.Errorf("%q: error %q does not say it was refused", sql, res[0].Error)
		}
	}
	// Allowed: reading settings, introspection, replicated pragmas, views and triggers calling random().
	for _, sql := range []string{"PRAGMA foreign_keys", "PRAGMA journal_mode", "PRAGMA table_info(t)", "PRAGMA integrity_check",
		"PRAGMA user_version = 3", "CREATE VIEW rv AS SELECT random() AS r",
		"CREATE TRIGGER rt AFTER INSERT ON t BEGIN UPDATE t SET v = random() WHERE id = new.id; END", "SELECT * FROM _rowboat_x"} {
		res := p.exec(sql)
		if res[0].Error != "" && !strings.Contains(res[0].Error, "no such table: _rowboat_x") {
			t.Errorf("%q: unexpected error %q", sql, res[0].Error)
		}
	}
	p.check()
}

// TestCapture_RowIDHidden: a rowid table whose columns are named rowid, _rowid_ and oid hides its rowid from
// SQL, so its rows cannot be replicated by rowid. Creating it is allowed; every write that would put a row in
// it, directly, by a trigger or by CREATE TABLE AS, is refused and changes nothing, and the other statements of
// the batch still apply.
func TestCapture_RowIDHidden(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE h(rowid, _rowid_, oid)", "CREATE TABLE t(id INTEGER PRIMARY KEY, v)",
		"CREATE TRIGGER tr AFTER INSERT ON t WHEN new.v = 'fire' BEGIN INSERT INTO h VALUES(1, 2, 3); END")
	res := p.exec("INSERT INTO t(v) VALUES('before')", "INSERT INTO h VALUES(1, 2, 3)", "INSERT INTO t(v) VALUES('fire')",
		"CREATE TABLE h2 AS SELECT 1 AS rowid, 2 AS oid, 3 AS _ROWID_", "CREATE TABLE h3 AS SELECT 1 AS rowid, 2 AS oid, 3 AS _rowid_ WHERE 0",
		"INSERT INTO t(v) VALUES('after')")
	for _, i := range []int{1, 2, 3} {
		if !strings.Contains(res[i].Error, ErrRefused.Error()) || !strings.Contains(res[i].Error, "rowid, _rowid_ and oid") {
			t.Errorf("statement %d: error %q, want a refusal that names the three columns", i, res[i].Error)
		}
	}
	for _, i := range []int{0, 4, 5} {
		if res[i].Error != "" {
			t.Errorf("statement %d: unexpected error %q", i, res[i].Error)
		}
	}
	p.check()
	if got := queryRows(t, p.replica, "SELECT v FROM t ORDER BY id"); strings.Join(got, ",") != `text("before"),text("after")` {
		t.Fatalf("replica rows of t: %v, want before and after only", got)
	}
	if got := queryRows(t, p.leader, "SELECT count(*) FROM h"); got[0] != "int(0)" {
		t.Fatalf("leader's h holds %v rows, want 0", got)
	}
}

func TestCapture_ContextCancelled(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE t(x)")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := p.capturer.Execute(ctx, []Request{{Statements: []Statement{{SQL: "INSERT INTO t VALUES(1)"}}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// A long statement interrupted mid-way.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := p.capturer.Execute(ctx, []Request{{Statements: []Statement{{SQL: "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s) INSERT INTO t SELECT n FROM s"}}}})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted: err = %v, want context.Canceled", err)
	}
	// The capturer still works afterwards and nothing leaked into the database.
	p.mustExec("INSERT INTO t VALUES(2)")
	p.check()
	if got := queryRows(t, p.replica, "SELECT count(*) FROM t")[0]; got != "int(1)" {
		t.Fatalf("count %s, want int(1)", got)
	}
}

func TestCapture_TooManyChanges(t *testing.T) {
	defer func(n int) { MaxChanges = n }(MaxChanges)
	MaxChanges = 100
	p := newPair(t)
	p.mustExec("CREATE TABLE t(x)")
	res := p.exec(
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 500) INSERT INTO t SELECT i FROM n",
		"INSERT INTO t VALUES(1)",
	)
	if !strings.Contains(res[0].Error, "too many row changes") {
		t.Fatalf("500 inserts with a limit of 100: %+v", res[0])
	}
	if res[1].Error != "" {
		t.Fatalf("the next statement failed: %+v", res[1])
	}
	p.check()
}

// TestCapture_FailedTransactionChangedSchema: a transaction request that altered a table and then failed is
// rolled back whole; the next request must capture rows by the table as it is again, not as the failed
// request left the schema cache.
func TestCapture_FailedTransactionChangedSchema(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE t(a, b)")
	res := p.execRequests(
		Request{Transaction: true, Statements: []Statement{{SQL: "ALTER TABLE t ADD COLUMN c"}, {SQL: "INSERT INTO t VALUES(1, 2, 3)"}, {SQL: "INSERT INTO nosuch VALUES(1)"}}},
		Request{Statements: []Statement{{SQL: "INSERT INTO t VALUES(4, 5)"}}})
	if res[0][2].Error == "" || res[1][0].Error != "" {
		t.Fatalf("results %+v: want the transaction to fail and the next insert to succeed", res)
	}
	p.check()
}

// TestCapture_DeferredForeignKeys: a deferred foreign key is checked where SQLite's COMMIT would check it, at
// the end of a statement outside a transaction request and at the end of a transaction request, although the
// capture transaction never commits; a violation fails it and replicates nothing, and within a transaction
// request a violation fixed before its end is fine.
func TestCapture_DeferredForeignKeys(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE parent(id INTEGER PRIMARY KEY)",
		"CREATE TABLE child(id INTEGER PRIMARY KEY, pid REFERENCES parent DEFERRABLE INITIALLY DEFERRED)")
	res := p.execRequests(
		Request{Statements: []Statement{{SQL: "INSERT INTO child VALUES(1, 42)"}, {SQL: "INSERT INTO parent VALUES(1)"}}},
		Request{Transaction: true, Statements: []Statement{{SQL: "INSERT INTO child VALUES(2, 43)"}, {SQL: "INSERT INTO parent VALUES(2)"}}},
		Request{Transaction: true, Statements: []Statement{{SQL: "INSERT INTO child VALUES(3, 44)"}, {SQL: "INSERT INTO parent VALUES(44)"}}},
	)
	if !strings.Contains(res[0][0].Error, "FOREIGN KEY") || res[0][1].Error != "" {
		t.Errorf("a lone statement leaving a deferred violation: %+v, want it to fail and the next to apply", res[0])
	}
	if !strings.Contains(res[1][len(res[1])-1].Error, "FOREIGN KEY") {
		t.Errorf("a transaction request ending with a deferred violation: %+v, want it to fail", res[1])
	}
	for _, r := range res[2] {
		if r.Error != "" {
			t.Errorf("a transaction request that fixes its violation before its end: %+v", res[2])
		}
	}
	p.check()
	if got := queryRows(t, p.replica, "SELECT id, pid FROM child ORDER BY id"); strings.Join(got, ",") != "int(3) int(44)" {
		t.Fatalf("replica's child rows %v, want only (3, 44)", got)
	}
	if got := queryRows(t, p.replica, "SELECT count(*) FROM pragma_foreign_key_check"); got[0] != "int(0)" {
		t.Fatalf("the replica holds foreign-key violations: %v", got)
	}
}

// A schema may call non-deterministic functions where they run only as a row is written: the row the leader
// wrote is what replicates. (A CHECK that calls random() decides once, on the leader: apply must not decide
// again.)
func TestCapture_NonDeterministicSchema(t *testing.T) {
	p := newPair(t)
	p.mustExec(
		"CREATE TABLE d(id INTEGER PRIMARY KEY, created TEXT DEFAULT CURRENT_TIMESTAMP, r DEFAULT (random()), "+
			"dt DEFAULT (datetime('now')), f DEFAULT (strftime('%f', 'now')), b DEFAULT (randomblob(8)))",
		"CREATE INDEX d_day ON d(date(created))",
		"CREATE TABLE c(id INTEGER PRIMARY KEY, v CHECK (abs(random()) % 2 = 0))",
	)
	passed := 0
	for i := range 40 {
		p.mustExec(fmt.Sprintf("INSERT INTO d(id) VALUES (%d)", i))
		if res := p.exec(fmt.Sprintf("INSERT INTO c VALUES (%d, 'x')", i)); res[0].Error == "" {
			passed++
		} else if !strings.Contains(res[0].Error, "CHECK constraint failed") {
			t.Fatalf("insert into c: %s", res[0].Error)
		}
	}
	if passed == 0 || passed == 40 {
		t.Fatalf("%d of 40 rows passed the random CHECK: the test needs some of each", passed)
	}
	// SQLite itself refuses a clock or random() where it would evaluate them on its own.
	for _, sql := range []string{
		"CREATE INDEX d_now ON d(date('now'))",
		"CREATE INDEX d_part ON d(id) WHERE created < datetime('now')",
		"CREATE TABLE g(id INTEGER PRIMARY KEY, x AS (random()))",
	} {
		if res := p.exec(sql); res[0].Error == "" {
			t.Errorf("%q: no error", sql)
		}
	}
	p.check()
}

// The values one batch captures are bounded in bytes: a statement that passes MaxChangeBytes fails and
// changes nothing, the statements before it keep their rows, and a failed statement's bytes do not count.
func TestCapture_ChangesTooLarge(t *testing.T) {
	defer func(n int) { MaxChangeBytes = n }(MaxChangeBytes)
	MaxChangeBytes = 1 << 20
	p := newPair(t)
	p.mustExec("CREATE TABLE b(id INTEGER PRIMARY KEY, v)")
	res := p.execRequests(
		Request{Statements: []Statement{{SQL: "INSERT INTO b(v) VALUES (zeroblob(600000)), (zeroblob(600000))"}}},
		Request{Statements: []Statement{{SQL: "INSERT INTO b(v) VALUES (zeroblob(600000))"}}},
		Request{Statements: []Statement{{SQL: "INSERT INTO b(v) VALUES (zeroblob(600000))"}}},
	)
	if !strings.Contains(res[0][0].Error, "too large") {
		t.Fatalf("1.2 MB in one statement: %q", res[0][0].Error)
	}
	if res[1][0].Error != "" {
		t.Fatalf("600 kB after a failed statement: %q", res[1][0].Error)
	}
	if !strings.Contains(res[2][0].Error, "too large") {
		t.Fatalf("another 600 kB in the same batch: %q", res[2][0].Error)
	}
	if res := p.mustExec("INSERT INTO b(v) VALUES (zeroblob(600000))"); res[0].RowsAffected != 1 { // a new batch
		t.Fatalf("a new batch: %+v", res[0])
	}
	p.check()
	var n int64
	s, _, _ := p.replica.Prepare("SELECT count(*) FROM b")
	s.Step()
	n = s.ColumnInt64(0)
	s.Close()
	if n != 2 {
		t.Fatalf("replica holds %d rows, want 2", n)
	}
}

// Rows a savepoint flushes (FTS5's pending terms) count toward the batch's MaxChangeBytes without failing the
// batch or leaving the next one a budget already spent; the rows budget (MaxResultBytes) is per request.
func TestCapture_BudgetsPerBatchAndRequest(t *testing.T) {
	defer func(c, r int) { MaxChangeBytes, MaxResultBytes = c, r }(MaxChangeBytes, MaxResultBytes)
	p := newPair(t)
	p.mustExec("CREATE VIRTUAL TABLE f USING fts5(body)", "CREATE TABLE small(x)", "CREATE TABLE b(id INTEGER PRIMARY KEY, v)")
	MaxChangeBytes, MaxResultBytes = 1<<20, 1<<20
	var words strings.Builder
	for i := 0; words.Len() < 450_000; i++ {
		fmt.Fprintf(&words, "w%x ", i*7919)
	}
	res := p.execRequests(Request{Statements: []Statement{
		{SQL: "INSERT INTO f(body) VALUES ('" + words.String() + "')"},
		{SQL: "INSERT INTO small VALUES (1)"},
	}})
	for i, r := range res[0] {
		if r.Error != "" {
			t.Fatalf("statement %d of a batch under its budget: %s", i+1, r.Error)
		}
	}
	if res := p.exec("INSERT INTO small VALUES (2)"); res[0].Error != "" {
		t.Fatalf("the next batch: %s", res[0].Error)
	}
	MaxChangeBytes = 4 << 20
	res = p.execRequests(
		Request{Statements: []Statement{{SQL: "INSERT INTO b(v) VALUES (zeroblob(600000)) RETURNING v"}}},
		Request{Statements: []Statement{{SQL: "INSERT INTO b(v) VALUES (zeroblob(600000)) RETURNING v"}}},
	)
	for i, r := range res {
		if r[0].Error != "" {
			t.Fatalf("request %d, returning 600 kB of a 1 MiB budget each: %s", i+1, r[0].Error)
		}
	}
	p.check()
}

// A pragma set to ” is a write, not a read of the setting: refused like any other setting on the writer
// connection, replicated for user_version, and refused on the read path.
func TestCapture_EmptyPragmaValue(t *testing.T) {
	p := newPair(t)
	p.mustExec("PRAGMA user_version = 7")
	for _, sql := range []string{"PRAGMA trusted_schema = ''", `PRAGMA foreign_keys = ""`} {
		if res := p.exec(sql); !strings.Contains(res[0].Error, ErrRefused.Error()) {
			t.Errorf("%s: %q, want a refusal", sql, res[0].Error)
		}
	}
	p.mustExec("PRAGMA user_version = ''") // replicated: 0 on every node
	p.check()
	for _, c := range []*sqlite3.Conn{p.leader, p.replica} {
		s, _, err := c.Prepare("PRAGMA user_version")
		if err != nil {
			t.Fatal(err)
		}
		s.Step()
		v := s.ColumnInt64(0)
		s.Close()
		if v != 0 {
			t.Fatalf("user_version %d after PRAGMA user_version = '', want 0 on both", v)
		}
	}
	r, err := NewReader(p.leader)
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := r.ReadTx(context.Background(), "", []Statement{{SQL: "PRAGMA trusted_schema = ''"}})
	if err == nil && (len(res) == 0 || res[0].Error == "") {
		t.Fatalf("the read path ran PRAGMA trusted_schema = '': %+v", res)
	}
}

// TestCapture_TempObjectsEndWithTheirRequest: requests of one batch share the capture connection, so a temp
// table one request made hid the main table of the same name from the next (its insert, acknowledged, went
// into the temp table and was never replicated), and a temp trigger ran on another request's writes. Temp
// objects now end with the request that made them, which can still use them.
func TestCapture_TempObjectsEndWithTheirRequest(t *testing.T) {
	p := newPair(t)
	p.mustExec("CREATE TABLE t(id INTEGER PRIMARY KEY, v)", "CREATE TABLE audit(x)")
	p.mustExec("CREATE TEMP TABLE t(id INTEGER PRIMARY KEY, v)", "INSERT INTO t(v) VALUES('b')",
		"CREATE TEMP TRIGGER tr AFTER INSERT ON main.audit BEGIN DELETE FROM main.audit; END", "INSERT INTO audit VALUES('d')")
	p.execRequests(Request{Statements: []Statement{{SQL: "CREATE TEMP TABLE s(x)"}, {SQL: "INSERT INTO s VALUES('own')"},
		{SQL: "INSERT INTO t(v) SELECT x FROM s"}}})
	p.check()
	for q, want := range map[string]string{"SELECT group_concat(v) FROM (SELECT v FROM t ORDER BY id)": "b,own", "SELECT group_concat(x) FROM audit": "d"} {
		s, _, err := p.replica.Prepare(q)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Step(); !ok || err != nil {
			t.Fatalf("%s: %v %v", q, ok, err)
		}
		got, _ := s.Column(0).(string)
		s.Close()
		if got != want {
			t.Errorf("replica: %s = %q, want %q", q, got, want)
		}
	}
}

// TestCapture_WideTables: an UPDATE that moves the rowid of a table with 2000 columns (SQLite's limit) was
// applied as an UPDATE setting 2001, which SQLite refuses: every node stopped. A WITHOUT ROWID table whose key
// is too long to look up is refused at the write instead.
func TestCapture_WideTables(t *testing.T) {
	p := newPair(t)
	cols := make([]string, 1999)
	for i := range cols {
		cols[i] = fmt.Sprintf("c%d", i)
	}
	p.mustExec("CREATE TABLE w(id INTEGER PRIMARY KEY, " + strings.Join(cols, ", ") + ")")
	p.mustExec("INSERT INTO w(id, c0, c1998) VALUES(1, 'a', 'z')", "UPDATE w SET id = 5", "UPDATE w SET rowid = 9, c0 = 'b'")
	// (check() cannot dump a table this wide: SELECT rowid, * would return 2001 columns.)
	for name, db := range map[string]*sqlite3.Conn{"leader": p.leader, "replica": p.replica} {
		s, _, err := db.Prepare("SELECT group_concat(id || c0 || c1998) FROM w")
		if err != nil {
			t.Fatal(err)
		}
		ok, err := s.Step()
		got, _ := s.Column(0).(string)
		s.Close()
		if !ok || err != nil || got != "9bz" {
			t.Fatalf("%s: w holds %q (%v), want one row 9, b, z", name, got, err)
		}
	}
	keys := make([]string, 999)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	p.mustExec("CREATE TABLE k(" + strings.Join(keys, ", ") + ", PRIMARY KEY(" + strings.Join(keys, ", ") + ")) WITHOUT ROWID")
	res := p.exec("INSERT INTO k VALUES(" + strings.Repeat("1, ", len(keys)-1) + "1)")
	if !strings.Contains(res[0].Error, "primary key has 999 columns") {
		t.Fatalf("a write to a WITHOUT ROWID table with a 999-column key: %q", res[0].Error)
	}
}

// The connection settings a client sets as it connects (pyrqlite sends them to /db/query) do nothing on the
// read path and answer no rows, as on rqlite, where they were refused as writes; the shared read connection
// keeps its own settings. Other settings are still refused there.
func TestReader_SessionPragmasDoNothing(t *testing.T) {
	p := newPair(t)
	r, err := NewReader(p.leader)
	if err != nil {
		t.Fatal(err)
	}
	read := func(sql string) []Result {
		t.Helper()
		res, _, err := r.ReadTx(context.Background(), "", []Statement{{SQL: sql}})
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return res
	}
	before := read("PRAGMA foreign_keys")[0].Rows[0][0]
	for _, sql := range []string{"PRAGMA foreign_keys = ON", "PRAGMA foreign_keys=OFF", "pragma busy_timeout = 5000", "PRAGMA main.cache_size = -2000"} {
		if res := read(sql); res[0].Error != "" || len(res[0].Rows) != 0 {
			t.Errorf("%s on the read path: %+v, want no error and no rows", sql, res[0])
		}
	}
	if after := read("PRAGMA foreign_keys")[0].Rows[0][0]; after != before {
		t.Fatalf("PRAGMA foreign_keys on the read connection went from %v to %v", before, after)
	}
	for _, sql := range []string{"PRAGMA case_sensitive_like = 1", "PRAGMA journal_mode = DELETE", "PRAGMA query_only = 0"} {
		res, _, err := r.ReadTx(context.Background(), "", []Statement{{SQL: sql}})
		if !errors.Is(err, ErrNotReadOnly) && (len(res) == 0 || res[0].Error == "") {
			t.Errorf("%s on the read path: %v %+v, want a refusal", sql, err, res)
		}
	}
}
