package logical

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// openDB opens (creating) a WAL database for a test and closes it at cleanup.
func openDB(tb testing.TB, path string) *sqlite3.Conn {
	tb.Helper()
	c, err := sqlite3.OpenVFS(path, 0, sqlite3.ProcessExclusive) // as package fsm opens its database
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	tb.Cleanup(func() { c.Close() })
	c.SetBusyTimeout(5000)
	if err := c.Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF"); err != nil {
		tb.Fatalf("pragmas: %v", err)
	}
	return c
}

// pair is a leader database that keeps what its statements did (capture commits instead of rolling back) and
// a replica built only by applying the captured entries. If capture is exact, the two stay identical.
type pair struct {
	tb       testing.TB
	capturer *Capturer
	applier  *Applier
	leader   *sqlite3.Conn // a separate connection for dumping the leader
	replica  *sqlite3.Conn
	entries  int
}

func newPair(tb testing.TB) *pair {
	tb.Helper()
	dir := tb.TempDir()
	lpath, rpath := filepath.Join(dir, "leader.db"), filepath.Join(dir, "replica.db")
	capConn := openDB(tb, lpath)
	c, err := NewCapturer(capConn)
	if err != nil {
		tb.Fatalf("NewCapturer: %v", err)
	}
	c.keep = true
	tb.Cleanup(func() { c.Close() })
	rconn := openDB(tb, rpath)
	a, err := NewApplier(rconn)
	if err != nil {
		tb.Fatalf("NewApplier: %v", err)
	}
	tb.Cleanup(func() { a.Close() })
	return &pair{tb: tb, capturer: c, applier: a, leader: openDB(tb, lpath), replica: openDB(tb, rpath)}
}

// exec runs one request per SQL string, replicates the entry through an encode/decode round trip, and returns
// the results.
func (p *pair) exec(sqls ...string) []Result {
	p.tb.Helper()
	reqs := make([]Request, len(sqls))
	for i, s := range sqls {
		reqs[i] = Request{Statements: []Statement{{SQL: s}}}
	}
	res := p.execRequests(reqs...)
	out := make([]Result, len(res))
	for i := range res {
		out[i] = res[i][0]
	}
	return out
}

func (p *pair) execRequests(reqs ...Request) [][]Result {
	p.tb.Helper()
	res, e, err := p.capturer.Execute(context.Background(), reqs)
	if err != nil {
		p.tb.Fatalf("Execute: %v", err)
	}
	p.replicate(e)
	return res
}

// mustExec is exec that fails the test on any statement error.
func (p *pair) mustExec(sqls ...string) []Result {
	p.tb.Helper()
	res := p.exec(sqls...)
	for i, r := range res {
		if r.Error != "" {
			p.tb.Fatalf("statement %q: %s", sqls[i], r.Error)
		}
	}
	return res
}

func (p *pair) replicate(e *Entry) {
	p.tb.Helper()
	b, err := Encode(e)
	if err != nil {
		p.tb.Fatalf("Encode: %v", err)
	}
	d, err := Decode(b)
	if err != nil {
		p.tb.Fatalf("Decode: %v", err)
	}
	if err := p.applier.Begin(); err != nil {
		p.tb.Fatalf("Begin: %v", err)
	}
	if err := p.applier.Apply(d); err != nil {
		p.applier.Rollback()
		p.tb.Fatalf("Apply(%v): %v", e, err)
	}
	if err := p.applier.Commit(); err != nil {
		p.tb.Fatalf("Commit: %v", err)
	}
	p.entries++
}

// check fails the test unless leader and replica hold the same schema and the same rows, value types included.
func (p *pair) check() {
	p.tb.Helper()
	l, r := dump(p.tb, p.leader), dump(p.tb, p.replica)
	if l != r {
		p.tb.Fatalf("leader and replica differ after %d entries:\n%s", p.entries, diff(l, r))
	}
}

// dump renders a database completely: sqlite_schema (without root pages) and every row of every table, with
// rowids and value types.
func dump(tb testing.TB, c *sqlite3.Conn) string {
	tb.Helper()
	var b strings.Builder
	type tbl struct {
		name string
		sql  string
	}
	var tables []tbl
	query(tb, c, "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name", func(v []any) {
		fmt.Fprintf(&b, "schema %v %v %v %q\n", v[0], v[1], v[2], v[3])
		if v[0] == "table" {
			sql, _ := v[3].(string)
			tables = append(tables, tbl{v[1].(string), sql})
		}
	})
	for _, t := range tables {
		if strings.HasPrefix(strings.ToUpper(t.sql), "CREATE VIRTUAL") {
			continue // its shadow tables are compared instead
		}
		var cols []string
		query(tb, c, "SELECT name FROM pragma_table_xinfo('"+strings.ReplaceAll(t.name, "'", "''")+"')", func(v []any) {
			cols = append(cols, v[0].(string))
		})
		rowid, ok := RowIDName(cols)
		if !ok {
			rowid = "NULL" // no name reaches its rowid; such a table must be empty (its writes are refused)
		}
		q := "SELECT " + rowid + ", * FROM " + quoteIdent(t.name) + " ORDER BY " + rowid
		if strings.Contains(strings.ToUpper(t.sql), "WITHOUT ROWID") {
			q = "SELECT * FROM " + quoteIdent(t.name)
		}
		query(tb, c, q, func(v []any) {
			fmt.Fprintf(&b, "%s:", t.name)
			for _, x := range v {
				fmt.Fprintf(&b, " %s", render(x))
			}
			b.WriteByte('\n')
		})
	}
	return b.String()
}

func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return fmt.Sprintf("int(%d)", x)
	case float64:
		return fmt.Sprintf("real(%v)", x)
	case string:
		return fmt.Sprintf("text(%q)", x)
	case []byte:
		return fmt.Sprintf("blob(%x)", x)
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

// query runs sql on c and calls fn for every row.
func query(tb testing.TB, c *sqlite3.Conn, sql string, fn func([]any)) {
	tb.Helper()
	s, _, err := c.Prepare(sql)
	if err != nil {
		tb.Fatalf("prepare %q: %v", sql, err)
	}
	defer s.Close()
	for {
		row, err := s.Step()
		if err != nil {
			tb.Fatalf("query %q: %v", sql, err)
		}
		if !row {
			return
		}
		v := make([]any, s.ColumnCount())
		for i := range v {
			v[i] = s.Column(i)
		}
		fn(v)
	}
}

// queryRows returns every row of sql as rendered strings.
func queryRows(tb testing.TB, c *sqlite3.Conn, sql string) []string {
	tb.Helper()
	var out []string
	query(tb, c, sql, func(v []any) {
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = render(x)
		}
		out = append(out, strings.Join(parts, " "))
	})
	return out
}

func diff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&out, "line %d:\n  leader:  %s\n  replica: %s\n", i+1, x, y)
			if out.Len() > 4000 {
				break
			}
		}
	}
	return out.String()
}
