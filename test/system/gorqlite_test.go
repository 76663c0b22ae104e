package system

import (
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rqlite/gorqlite"
	_ "github.com/rqlite/gorqlite/stdlib" // database/sql driver "rqlite"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// gorqliteWait bounds every wait of the gorqlite tests.
const gorqliteWait = 60 * time.Second

// TestGorqlite drives a real three-node cluster with github.com/rqlite/gorqlite, rqlite's Go client, through
// every call it exposes: opened on the leader, on a follower (gorqlite then discovers the leader) and on a
// follower with discovery off (every request then goes through the follower, which forwards).
func TestGorqlite(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, gorqliteWait)
	followers := c.Followers(leader)
	if len(followers) != 2 {
		t.Fatalf("%d followers, want 2", len(followers))
	}
	for _, tc := range []struct {
		name      string
		via       *cluster.Node
		discovery bool
	}{
		{"leader", leader, true},
		{"follower", followers[0], true},
		{"follower without discovery", followers[1], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.via.URL()
			if !tc.discovery {
				url += "?disableClusterDiscovery=true"
			}
			conn, err := gorqlite.Open(url)
			if err != nil {
				t.Fatalf("gorqlite.Open(%s): %v", url, err)
			}
			defer conn.Close()
			g := &gorqliteRun{t: t, c: c, conn: conn, leader: leader, via: tc.via, discovery: tc.discovery,
				table: "g_" + tc.via.ID}
			g.run()
		})
	}
	t.Run("database/sql driver", func(t *testing.T) { gorqliteStdlib(t, followers[0]) })
}

type gorqliteRun struct {
	t         *testing.T
	c         *cluster.Cluster
	conn      *gorqlite.Connection
	leader    *cluster.Node
	via       *cluster.Node
	discovery bool
	table     string
}

// sql replaces the placeholder {t} with the run's table.
func (g *gorqliteRun) sql(s string) string { return strings.ReplaceAll(s, "{t}", g.table) }

func (g *gorqliteRun) run() {
	t := g.t
	t.Run("Leader and Peers", g.leaderAndPeers)
	t.Run("Write", g.write)
	t.Run("WriteParameterized", g.writeParameterized)
	t.Run("SQL errors", g.sqlErrors)
	t.Run("Query", g.query)
	t.Run("QueryParameterized", g.queryParameterized)
	t.Run("Request", g.request)
	t.Run("consistency levels", g.levels)
	t.Run("transactions", g.transactions)
	t.Run("Queue", g.queue)
}

func (g *gorqliteRun) leaderAndPeers(t *testing.T) {
	want := g.leader.HTTPAddr
	if !g.discovery {
		want = g.via.HTTPAddr // without discovery gorqlite only knows the URL it was given
	}
	got, err := g.conn.Leader()
	if err != nil {
		t.Fatalf("Leader(): %v", err)
	}
	if got != want {
		t.Fatalf("Leader()=%q, want %q", got, want)
	}
	var wantPeers []string
	if g.discovery {
		for _, f := range g.c.Followers(g.leader) {
			wantPeers = append(wantPeers, f.HTTPAddr)
		}
	}
	sort.Strings(wantPeers)
	// /nodes reports reachability from a probe; under load one may briefly miss, so poll.
	var peers []string
	cluster.Eventually(t, gorqliteWait, "Peers() to list every node", func() bool {
		peers, err = g.conn.Peers()
		if err != nil {
			t.Fatalf("Peers(): %v", err)
		}
		return len(peers) == 1+len(wantPeers)
	})
	if peers[0] != want {
		t.Fatalf("Peers()=%v: the first is not the leader %s", peers, want)
	}
	others := append([]string(nil), peers[1:]...)
	sort.Strings(others)
	if len(others) > 0 && !reflect.DeepEqual(others, wantPeers) {
		t.Fatalf("Peers()=%v, want the leader %s then %v", peers, want, wantPeers)
	}
}

func (g *gorqliteRun) write(t *testing.T) {
	wr, err := g.conn.WriteOne(g.sql("CREATE TABLE {t} (id INTEGER PRIMARY KEY, name TEXT, score REAL, born DATETIME)"))
	if err != nil || wr.Err != nil {
		t.Fatalf("WriteOne(CREATE TABLE): %v / %v", err, wr.Err)
	}
	wrs, err := g.conn.Write([]string{
		g.sql("INSERT INTO {t}(name, score, born) VALUES('alice', 1.5, '2024-01-02 03:04:05')"),
		g.sql("INSERT INTO {t}(name, score) VALUES('bob', 2)"),
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(wrs) != 2 {
		t.Fatalf("Write returned %d results, want 2", len(wrs))
	}
	for i, wr := range wrs {
		if wr.Err != nil || wr.LastInsertID != int64(i+1) || wr.RowsAffected != 1 {
			t.Fatalf("Write result %d: %+v, want last_insert_id %d, rows_affected 1", i, wr, i+1)
		}
	}
}

func (g *gorqliteRun) writeParameterized(t *testing.T) {
	wrs, err := g.conn.WriteParameterized([]gorqlite.ParameterizedStatement{
		{Query: g.sql("INSERT INTO {t}(name, score) VALUES(?, ?)"), Arguments: []any{"carol", 3.5}},
		{Query: g.sql("INSERT INTO {t}(name, score) VALUES(:name, :score)"), Arguments: []any{map[string]any{"name": "dave", "score": 4}}},
		{Query: g.sql("INSERT INTO {t}(name, score) VALUES(?, ?)"), Arguments: []any{nil, 5}},
	})
	if err != nil {
		t.Fatalf("WriteParameterized: %v", err)
	}
	for i, wr := range wrs {
		if wr.Err != nil || wr.LastInsertID != int64(i+3) || wr.RowsAffected != 1 {
			t.Fatalf("WriteParameterized result %d: %+v, want last_insert_id %d", i, wr, i+3)
		}
	}
	wr, err := g.conn.WriteOneParameterized(gorqlite.ParameterizedStatement{
		Query: g.sql("UPDATE {t} SET score = score + 10 WHERE id > ?"), Arguments: []any{2},
	})
	if err != nil || wr.RowsAffected != 3 {
		t.Fatalf("WriteOneParameterized(UPDATE): %+v, %v; want rows_affected 3", wr, err)
	}
	// (last_insert_id is SQLite's last_insert_rowid() of the connection, as in rqlite: not asserted here.)
	wr, err = g.conn.WriteOne(g.sql("UPDATE {t} SET score = score WHERE 0"))
	if err != nil || wr.RowsAffected != 0 {
		t.Fatalf("an UPDATE that matches nothing: %+v, %v", wr, err)
	}
}

func (g *gorqliteRun) sqlErrors(t *testing.T) {
	wr, err := g.conn.WriteOne("INSERT INTO nosuch VALUES(1)")
	if err == nil || wr.Err == nil {
		t.Fatal("a write to a missing table succeeded")
	}
	var se *gorqlite.StatementError
	if !errors.As(err, &se) || !strings.Contains(se.Message, "no such table: nosuch") {
		t.Fatalf("write error %v (%T): want a StatementError with SQLite's message", err, err)
	}
	qr, err := g.conn.QueryOne("SELECT * FROM nosuch")
	if err == nil || qr.Err == nil || !strings.Contains(err.Error(), "no such table: nosuch") {
		t.Fatalf("query of a missing table: %v / %v", err, qr.Err)
	}
	_, err = g.conn.WriteOne(g.sql("INSERT INTO {t}(id, name) VALUES(1, 'dup')"))
	if err == nil || !strings.Contains(err.Error(), "UNIQUE constraint failed") {
		t.Fatalf("a duplicate key: %v", err)
	}
	// A write sent through Query is refused as a whole and changes nothing.
	if _, err := g.conn.QueryOne(g.sql("DELETE FROM {t}")); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("DELETE through Query: %v, want a 400", err)
	}
	if n := g.count(t); n != 5 {
		t.Fatalf("%d rows after the refused DELETE, want 5", n)
	}
}

func (g *gorqliteRun) count(t *testing.T) int64 {
	t.Helper()
	qr, err := g.conn.QueryOne(g.sql("SELECT COUNT(*) FROM {t}"))
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	var n int64
	if !qr.Next() {
		t.Fatal("count: no row")
	}
	if err := qr.Scan(&n); err != nil {
		t.Fatalf("count: Scan: %v", err)
	}
	return n
}

func (g *gorqliteRun) query(t *testing.T) {
	qr, err := g.conn.QueryOne(g.sql("SELECT id, name, score, born FROM {t} ORDER BY id"))
	if err != nil {
		t.Fatalf("QueryOne: %v", err)
	}
	if got, want := qr.Columns(), []string{"id", "name", "score", "born"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Columns()=%v, want %v", got, want)
	}
	if got, want := qr.Types(), []string{"integer", "text", "real", "datetime"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Types()=%v, want %v", got, want)
	}
	if qr.NumRows() != 5 {
		t.Fatalf("NumRows()=%d, want 5", qr.NumRows())
	}
	type row struct {
		id    int64
		name  gorqlite.NullString
		score float64
		born  gorqlite.NullTime
	}
	var got []row
	for qr.Next() {
		var r row
		if err := qr.Scan(&r.id, &r.name, &r.score, &r.born); err != nil {
			t.Fatalf("Scan row %d: %v", qr.RowNumber(), err)
		}
		got = append(got, r)
	}
	born := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	want := []row{
		{1, gorqlite.NullString{String: "alice", Valid: true}, 1.5, gorqlite.NullTime{Time: born, Valid: true}},
		{2, gorqlite.NullString{String: "bob", Valid: true}, 2, gorqlite.NullTime{}},
		{3, gorqlite.NullString{String: "carol", Valid: true}, 13.5, gorqlite.NullTime{}},
		{4, gorqlite.NullString{String: "dave", Valid: true}, 14, gorqlite.NullTime{}},
		{5, gorqlite.NullString{}, 15, gorqlite.NullTime{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows:\n got %+v\nwant %+v", got, want)
	}

	qr, err = g.conn.QueryOne(g.sql("SELECT id, name, born FROM {t} WHERE id = 1"))
	if err != nil || !qr.Next() {
		t.Fatalf("QueryOne: %v", err)
	}
	m, err := qr.Map()
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if m["id"] != float64(1) || m["name"] != "alice" || m["born"] != born {
		t.Fatalf("Map()=%v", m)
	}

	// A DATE and a TIMESTAMP of Unix seconds come as times, as rqlite answers them: gorqlite could not scan
	// "2024-01-02" into a time.Time.
	if wr, err := g.conn.WriteOne(g.sql("CREATE TABLE {t}_d (day DATE, at TIMESTAMP)")); err != nil || wr.Err != nil {
		t.Fatalf("CREATE TABLE: %v / %v", err, wr.Err)
	}
	if wr, err := g.conn.WriteOne(g.sql("INSERT INTO {t}_d VALUES ('2024-01-02', 1704164645)")); err != nil || wr.Err != nil {
		t.Fatalf("INSERT: %v / %v", err, wr.Err)
	}
	qr, err = g.conn.QueryOne(g.sql("SELECT day, at FROM {t}_d"))
	if err != nil || !qr.Next() {
		t.Fatalf("QueryOne: %v", err)
	}
	var day, at time.Time
	if err := qr.Scan(&day, &at); err != nil {
		t.Fatalf("Scan of DATE and TIMESTAMP: %v", err)
	}
	if !day.Equal(time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)) || !at.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("DATE %v, TIMESTAMP %v", day, at)
	}

	qrs, err := g.conn.Query([]string{g.sql("SELECT COUNT(*) AS n FROM {t}"), g.sql("SELECT name FROM {t} WHERE 0")})
	if err != nil || len(qrs) != 2 {
		t.Fatalf("Query: %d results, %v", len(qrs), err)
	}
	if !qrs[0].Next() {
		t.Fatal("Query: no count row")
	}
	var n int
	if err := qrs[0].Scan(&n); err != nil || n != 5 {
		t.Fatalf("Query count: %d, %v", n, err)
	}
	if qrs[1].NumRows() != 0 || qrs[1].Next() || !reflect.DeepEqual(qrs[1].Columns(), []string{"name"}) {
		t.Fatalf("an empty result: %d rows, columns %v", qrs[1].NumRows(), qrs[1].Columns())
	}
}

func (g *gorqliteRun) queryParameterized(t *testing.T) {
	qrs, err := g.conn.QueryParameterized([]gorqlite.ParameterizedStatement{
		{Query: g.sql("SELECT name FROM {t} WHERE id = ?"), Arguments: []any{2}},
		{Query: g.sql("SELECT name FROM {t} WHERE name = :name"), Arguments: []any{map[string]any{"name": "carol"}}},
	})
	if err != nil || len(qrs) != 2 {
		t.Fatalf("QueryParameterized: %d results, %v", len(qrs), err)
	}
	for i, want := range []string{"bob", "carol"} {
		var name string
		if !qrs[i].Next() {
			t.Fatalf("result %d: no row", i)
		}
		if err := qrs[i].Scan(&name); err != nil || name != want {
			t.Fatalf("result %d: %q, %v; want %q", i, name, err, want)
		}
	}
	qr, err := g.conn.QueryOneParameterized(gorqlite.ParameterizedStatement{
		Query: g.sql("SELECT COUNT(*) FROM {t} WHERE score > ?"), Arguments: []any{10},
	})
	var n int64
	if err != nil || !qr.Next() || qr.Scan(&n) != nil || n != 3 {
		t.Fatalf("QueryOneParameterized: %d, %v; want 3", n, err)
	}
}

func (g *gorqliteRun) request(t *testing.T) {
	rrs, err := g.conn.RequestParameterized([]gorqlite.ParameterizedStatement{
		{Query: g.sql("INSERT INTO {t}(name, score) VALUES(?, ?)"), Arguments: []any{"erin", 6}},
		{Query: g.sql("SELECT name FROM {t} WHERE id = ?"), Arguments: []any{6}},
	})
	if err != nil || len(rrs) != 2 {
		t.Fatalf("RequestParameterized: %d results, %v", len(rrs), err)
	}
	if w := rrs[0].Write; rrs[0].Err != nil || w == nil || w.LastInsertID != 6 || w.RowsAffected != 1 {
		t.Fatalf("RequestParameterized write result: %+v / %+v", rrs[0], w)
	}
	q := rrs[1].Query
	if rrs[1].Err != nil || q == nil || !q.Next() {
		t.Fatalf("RequestParameterized query result: %+v", rrs[1])
	}
	var name string
	if err := q.Scan(&name); err != nil || name != "erin" {
		t.Fatalf("the read after the write in one request saw %q, %v", name, err)
	}

	// All reads: served as a query.
	rrs, err = g.conn.Request([]string{g.sql("SELECT COUNT(*) FROM {t}"), "VALUES(1)"})
	if err != nil || len(rrs) != 2 || rrs[0].Query == nil || rrs[1].Query == nil {
		t.Fatalf("Request(reads): %+v, %v", rrs, err)
	}
	var n int64
	if !rrs[0].Query.Next() || rrs[0].Query.Scan(&n) != nil || n != 6 {
		t.Fatalf("Request(reads) count %d, want 6", n)
	}
	// A WITH that writes is executed, not refused.
	rrs, err = g.conn.Request([]string{g.sql("WITH x(v) AS (VALUES('frank')) INSERT INTO {t}(name) SELECT v FROM x")})
	if err != nil || len(rrs) != 1 || rrs[0].Write == nil || rrs[0].Write.RowsAffected != 1 {
		t.Fatalf("Request(WITH ... INSERT): %+v, %v", rrs, err)
	}
	// An error in one statement.
	rrs, err = g.conn.Request([]string{"SELECT * FROM nosuch"})
	if err == nil || len(rrs) != 1 || rrs[0].Err == nil || !strings.Contains(rrs[0].Err.Error(), "no such table") {
		t.Fatalf("Request(bad): %+v, %v", rrs, err)
	}
}

func (g *gorqliteRun) levels(t *testing.T) {
	wr, err := g.conn.WriteOne(g.sql("INSERT INTO {t}(name) VALUES('levels')"))
	if err != nil {
		t.Fatal(err)
	}
	want := wr.LastInsertID // ids have no gaps here: the count equals the last id
	for _, level := range []string{"none", "weak", "linearizable", "strong"} {
		cl, err := gorqlite.ParseConsistencyLevel(level)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.conn.SetConsistencyLevel(cl); err != nil {
			t.Fatalf("SetConsistencyLevel(%s): %v", level, err)
		}
		if got, _ := g.conn.ConsistencyLevel(); got != level {
			t.Fatalf("ConsistencyLevel()=%q, want %q", got, level)
		}
		if level == "none" && !g.discovery {
			// Served by the follower from its own state, which may trail the leader's for a moment.
			cluster.Eventually(t, gorqliteWait, "the follower to apply the write", func() bool { return g.count(t) == want })
			continue
		}
		if n := g.count(t); n != want {
			t.Fatalf("level %s: %d rows, want %d", level, n, want)
		}
	}
	if err := g.conn.SetConsistencyLevel(gorqlite.ConsistencyLevelWeak); err != nil {
		t.Fatal(err)
	}
}

func (g *gorqliteRun) transactions(t *testing.T) {
	before := g.count(t)
	// gorqlite sends ?transaction by default: a failing statement undoes the request.
	_, err := g.conn.Write([]string{g.sql("INSERT INTO {t}(name) VALUES('tx1')"), "INSERT INTO nosuch VALUES(1)"})
	if err == nil {
		t.Fatal("a transaction with a failing statement succeeded")
	}
	if n := g.count(t); n != before {
		t.Fatalf("%d rows after a failed transaction, want %d", n, before)
	}
	if err := g.conn.SetExecutionWithTransaction(false); err != nil {
		t.Fatal(err)
	}
	defer g.conn.SetExecutionWithTransaction(true)
	wrs, err := g.conn.Write([]string{g.sql("INSERT INTO {t}(name) VALUES('a')"), "INSERT INTO nosuch VALUES(1)", g.sql("INSERT INTO {t}(name) VALUES('b')")})
	var se gorqlite.StatementErrors
	if !errors.As(err, &se) || len(se) != 1 {
		t.Fatalf("Write without a transaction: err %v, want one statement error", err)
	}
	if len(wrs) != 3 || wrs[0].Err != nil || wrs[1].Err == nil || wrs[2].Err != nil || wrs[2].LastInsertID != wrs[0].LastInsertID+1 {
		t.Fatalf("Write without a transaction: %+v", wrs)
	}
	if n := g.count(t); n != before+2 {
		t.Fatalf("%d rows, want %d", n, before+2)
	}
}

func (g *gorqliteRun) queue(t *testing.T) {
	// rqlite's queued writes: rowboat applies them synchronously and answers a sequence number.
	before := g.count(t)
	seq, err := g.conn.QueueOne(g.sql("INSERT INTO {t}(name) VALUES('queued')"))
	if err != nil || seq <= 0 {
		t.Fatalf("QueueOne: %d, %v", seq, err)
	}
	seq2, err := g.conn.QueueParameterized([]gorqlite.ParameterizedStatement{
		{Query: g.sql("INSERT INTO {t}(name) VALUES(?)"), Arguments: []any{"queued 2"}},
	})
	if err != nil || seq2 <= seq {
		t.Fatalf("QueueParameterized: %d, %v (after %d)", seq2, err, seq)
	}
	cluster.Eventually(t, gorqliteWait, "the queued writes", func() bool { return g.count(t) == before+2 })
}

func gorqliteStdlib(t *testing.T, via *cluster.Node) {
	db, err := sql.Open("rqlite", via.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE g_stdlib (id INTEGER PRIMARY KEY, name TEXT)"); err != nil {
		t.Fatalf("Exec(CREATE): %v", err)
	}
	for i, name := range []string{"x", "y"} {
		res, err := db.Exec("INSERT INTO g_stdlib(name) VALUES(?)", name)
		if err != nil {
			t.Fatalf("Exec(INSERT): %v", err)
		}
		id, err := res.LastInsertId()
		if err != nil || id != int64(i+1) {
			t.Fatalf("LastInsertId()=%d, %v; want %d", id, err, i+1)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			t.Fatalf("RowsAffected()=%d, %v", n, err)
		}
	}
	var name string
	if err := db.QueryRow("SELECT name FROM g_stdlib WHERE id = ?", 2).Scan(&name); err != nil || name != "y" {
		t.Fatalf("QueryRow: %q, %v", name, err)
	}
	rows, err := db.Query("SELECT id, name FROM g_stdlib ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s", id, name))
	}
	if err := rows.Err(); err != nil || !reflect.DeepEqual(got, []string{"1:x", "2:y"}) {
		t.Fatalf("Query rows %v, %v", got, err)
	}
	if _, err := db.Exec("INSERT INTO nosuch VALUES(1)"); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("Exec of a bad statement: %v", err)
	}
}
