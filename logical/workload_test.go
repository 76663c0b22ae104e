package logical

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

var (
	workloadSeed    = flag.Uint64("workload-seed", 1, "seed of the randomized capture/apply workload")
	workloadBatches = flag.Int("workload-batches", 400, "batches in the randomized capture/apply workload")
)

// workloadSchema covers the table shapes capture has to get right.
var workloadSchema = []string{
	"CREATE TABLE a(id INTEGER PRIMARY KEY, n INTEGER, u TEXT UNIQUE, b BLOB, r REAL)",
	"CREATE TABLE b(x, y)", // implicit rowid
	"CREATE TABLE w(k1 TEXT, k2 INTEGER, v, PRIMARY KEY(k1, k2)) WITHOUT ROWID",
	"CREATE TABLE ai(id INTEGER PRIMARY KEY AUTOINCREMENT, v)",
	"CREATE TABLE g(id INTEGER PRIMARY KEY, a INTEGER, v AS (a * 2) VIRTUAL, s AS (a || 'x') STORED)",
	"CREATE TABLE p(id INTEGER PRIMARY KEY, v)",
	"CREATE TABLE c(id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p(id) ON DELETE CASCADE ON UPDATE CASCADE, v)",
	"CREATE TABLE audit(id INTEGER PRIMARY KEY, tbl, r)",
	"CREATE TRIGGER a_upd AFTER UPDATE ON a BEGIN INSERT INTO audit(tbl, r) VALUES('a', random()); END",
	"CREATE TRIGGER p_del AFTER DELETE ON p BEGIN INSERT INTO audit(tbl, r) VALUES('p', randomblob(3)); END",
	"CREATE VIRTUAL TABLE f USING fts5(body)",
}

type workload struct {
	rng   *rand.Rand
	snaps int // CREATE TABLE AS snapshots made so far
	cols  int // columns added to b
}

func (w *workload) text() string {
	switch w.rng.IntN(6) {
	case 0:
		return "''"
	case 1:
		return "char(97, 0, 98)"
	case 2:
		return "'héllo'"
	case 3:
		return "hex(randomblob(2))"
	default:
		return fmt.Sprintf("'t%d'", w.rng.IntN(40))
	}
}

func (w *workload) value() string {
	switch w.rng.IntN(8) {
	case 0:
		return "NULL"
	case 1:
		return "x''"
	case 2:
		return "randomblob(4)"
	case 3:
		return fmt.Sprintf("%d.5", w.rng.IntN(100))
	case 4:
		return "random()"
	case 5:
		return w.text()
	default:
		return fmt.Sprint(w.rng.IntN(100))
	}
}

func (w *workload) id() int { return 1 + w.rng.IntN(60) }

func (w *workload) statement() string {
	r := w.rng
	switch r.IntN(30) {
	case 0, 1:
		return fmt.Sprintf("INSERT INTO a(n, u, b, r) VALUES(%d, %s, %s, %s)", r.IntN(100), w.text(), w.value(), w.value())
	case 2:
		return fmt.Sprintf("INSERT OR REPLACE INTO a(id, n, u) VALUES(%d, %d, %s)", w.id(), r.IntN(100), w.text())
	case 3:
		return fmt.Sprintf("INSERT INTO a(id, n) VALUES(%d, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1, r = random()", w.id())
	case 4:
		return fmt.Sprintf("UPDATE a SET n = %s WHERE n %% 5 = %d", w.value(), r.IntN(5))
	case 5:
		return fmt.Sprintf("UPDATE a SET id = id + 100 WHERE id = %d", w.id())
	case 6:
		return "DELETE FROM a WHERE id IN (SELECT id FROM a ORDER BY random() LIMIT 2)"
	case 7, 8:
		return fmt.Sprintf("INSERT INTO b(x, y) VALUES(%s, %s), (%s, %s)", w.value(), w.value(), w.value(), w.value())
	case 9:
		return fmt.Sprintf("UPDATE b SET rowid = rowid + 1000, y = %s WHERE rowid = (SELECT max(rowid) FROM b)", w.value())
	case 10:
		return "DELETE FROM b WHERE rowid IN (SELECT rowid FROM b ORDER BY random() LIMIT 3)"
	case 11, 12:
		return fmt.Sprintf("INSERT OR REPLACE INTO w VALUES(%s, %d, %s)", w.text(), r.IntN(5), w.value())
	case 13:
		return fmt.Sprintf("UPDATE w SET k2 = k2 + 1, v = %s WHERE k1 = %s", w.value(), w.text())
	case 14:
		return fmt.Sprintf("DELETE FROM w WHERE k2 = %d", r.IntN(6))
	case 15:
		return fmt.Sprintf("INSERT INTO ai(v) VALUES(%s)", w.value())
	case 16:
		return "DELETE FROM ai WHERE id = (SELECT max(id) FROM ai)"
	case 17:
		return fmt.Sprintf("INSERT INTO g(a) VALUES(%d)", r.IntN(1000))
	case 18:
		return fmt.Sprintf("UPDATE g SET a = a + %d WHERE id %% 3 = %d", r.IntN(9), r.IntN(3))
	case 19:
		return fmt.Sprintf("INSERT INTO p(id, v) VALUES(%d, %s)", w.id(), w.value())
	case 20:
		return fmt.Sprintf("INSERT INTO c(pid, v) VALUES(%d, %s)", w.id(), w.value()) // often a foreign-key error
	case 21:
		return fmt.Sprintf("UPDATE p SET id = %d WHERE id = %d", w.id()+100, w.id())
	case 22:
		return fmt.Sprintf("DELETE FROM p WHERE id %% 4 = %d", r.IntN(4))
	case 23, 24:
		return fmt.Sprintf("INSERT INTO f(body) VALUES('%s %s')", words[r.IntN(len(words))], words[r.IntN(len(words))])
	case 25:
		return fmt.Sprintf("DELETE FROM f WHERE rowid IN (SELECT rowid FROM f ORDER BY random() LIMIT 1)")
	case 26:
		w.snaps++
		return fmt.Sprintf("CREATE TABLE snap%d AS SELECT id, n, random() AS r FROM a", w.snaps)
	case 27:
		return fmt.Sprintf("DROP TABLE IF EXISTS snap%d", 1+r.IntN(w.snaps+1))
	case 28:
		if r.IntN(2) == 0 {
			return fmt.Sprintf("CREATE INDEX IF NOT EXISTS a_n%d ON a(n, %d)", r.IntN(3), r.IntN(3))
		}
		return fmt.Sprintf("DROP INDEX IF EXISTS a_n%d", r.IntN(3))
	default:
		if w.cols < 5 && r.IntN(4) == 0 {
			w.cols++
			return fmt.Sprintf("ALTER TABLE b ADD COLUMN extra%d DEFAULT %d", w.cols, w.cols)
		}
		return "SELECT count(*) FROM a"
	}
}

var words = []string{"alpha", "beta", "gamma", "delta", "épsilon", "zeta", "eta", "theta"}

func (w *workload) batch() []Request {
	reqs := make([]Request, 1+w.rng.IntN(6))
	for i := range reqs {
		reqs[i].Transaction = w.rng.IntN(4) == 0
		for range 1 + w.rng.IntN(4) {
			reqs[i].Statements = append(reqs[i].Statements, Statement{SQL: w.statement()})
		}
	}
	return reqs
}

// TestCapture_RandomWorkload runs a seeded random mix of statements over every tricky table shape and checks,
// after every batch, that a replica fed only the captured entries equals the leader that ran the SQL.
func TestCapture_RandomWorkload(t *testing.T) {
	p := newPair(t)
	p.mustExec(workloadSchema...)
	w := &workload{rng: rand.New(rand.NewPCG(*workloadSeed, 99))}
	statements, failed := 0, 0
	batches := *workloadBatches
	if testing.Short() {
		batches /= 4
	}
	for i := range batches {
		reqs := w.batch()
		res := p.execRequests(reqs...)
		for _, rr := range res {
			for _, r := range rr {
				statements++
				if r.Error != "" {
					failed++
				}
			}
		}
		l, r := dump(t, p.leader), dump(t, p.replica)
		if l != r {
			t.Fatalf("seed %d, batch %d: leader and replica differ:\n%s\nbatch: %+v", *workloadSeed, i, diff(l, r), reqs)
		}
	}
	t.Logf("seed %d: %d batches, %d statements (%d failed as SQL errors), leader == replica after each", *workloadSeed, batches, statements, failed)
	if failed == statements {
		t.Fatalf("every statement failed: the workload tests nothing")
	}
}

// TestCapture_LeaderAppliesToo runs the workload the way a leader does: capture rolls back, and the leader's
// own database changes only through an Applier on a second connection, exactly like the replica's. Both
// databases must stay identical, and capture must keep seeing the applied state (FTS5 caches included).
func TestCapture_LeaderAppliesToo(t *testing.T) {
	dir := t.TempDir()
	lpath := filepath.Join(dir, "leader.db")
	capt, err := NewCapturer(openDB(t, lpath))
	if err != nil {
		t.Fatal(err)
	}
	defer capt.Close()
	var appliers []*Applier
	var dumps []func() string
	for _, path := range []string{lpath, filepath.Join(dir, "replica.db")} {
		a, err := NewApplier(openDB(t, path))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		appliers = append(appliers, a)
		reader := openDB(t, path)
		dumps = append(dumps, func() string { return dump(t, reader) })
	}
	apply := func(e *Entry) {
		enc, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range appliers {
			d, err := Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Begin(); err != nil {
				t.Fatal(err)
			}
			if err := a.Apply(d); err != nil {
				t.Fatalf("apply: %v", err)
			}
			if err := a.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	run := func(reqs []Request) {
		_, e, err := capt.Execute(context.Background(), reqs)
		if err != nil {
			t.Fatal(err)
		}
		apply(e)
	}
	for _, s := range workloadSchema {
		run([]Request{{Statements: []Statement{{SQL: s}}}})
	}
	w := &workload{rng: rand.New(rand.NewPCG(*workloadSeed, 7))}
	batches := *workloadBatches / 4
	for i := range batches {
		run(w.batch())
		if l, r := dumps[0](), dumps[1](); l != r {
			t.Fatalf("batch %d: leader and replica differ:\n%s", i, diff(l, r))
		}
	}
	// The FTS index works on the leader after all of that.
	leader := openDB(t, lpath)
	if got := queryRows(t, leader, "SELECT count(*) FROM f WHERE f MATCH 'alpha OR beta'"); len(got) != 1 {
		t.Fatalf("fts query: %v", got)
	}
	if got := queryRows(t, leader, "INSERT INTO f(f) VALUES('integrity-check')"); got != nil {
		t.Fatalf("fts integrity-check: %v", got)
	}
	if got := strings.Join(queryRows(t, leader, "PRAGMA integrity_check"), ""); got != `text("ok")` {
		t.Fatalf("integrity_check: %s", got)
	}
}
