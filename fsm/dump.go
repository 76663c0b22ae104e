package fsm

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
	"github.com/rowboatdb/rowboat/logical"
)

// DumpSQL writes the database as SQL text that recreates it: every user table, index, view and trigger and
// every row (rowboat's own tables excluded), in one transaction. It reads one consistent state and returns
// its applied position.
func (f *FSM) DumpSQL(w io.Writer) (Position, error) {
	var pos Position
	err := f.withPinnedState(func(conn *sqlite3.Conn, p Position) error {
		pos = p
		return Dump(conn, w)
	})
	return pos, err
}

// DumpFile writes the SQLite database file at path as SQL text (see DumpSQL).
func DumpFile(path string, w io.Writer) error {
	conn, err := sqlite3.Open(path, sqlite3.OpenReadOnly)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Exec("BEGIN; SELECT count(*) FROM sqlite_schema"); err != nil {
		return fmt.Errorf("not a readable SQLite database: %w", err)
	}
	defer conn.Exec("ROLLBACK")
	return Dump(conn, w)
}

// shadowSuffixes are the tables virtual-table modules keep their state in; they are recreated by the
// CREATE VIRTUAL TABLE statement and refilled by inserting into the virtual table.
var shadowSuffixes = []string{"_data", "_idx", "_content", "_docsize", "_config", "_segments", "_segdir", "_stat",
	"_node", "_rowid", "_parent"}

// shadowOf reports whether name is one of the shadow tables of the virtual tables in virtual.
func shadowOf(virtual map[string]bool, name string) bool {
	for v := range virtual {
		for _, suf := range shadowSuffixes {
			if name == v+suf {
				return true
			}
		}
	}
	return false
}

type schemaObject struct{ typ, name, tbl, sql string }

// Dump writes the database conn reads as SQL text, one statement per line.
func Dump(conn *sqlite3.Conn, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	objs, err := schemaObjects(conn)
	if err != nil {
		return err
	}
	virtual := map[string]bool{}
	for _, o := range objs {
		if o.typ == "table" && strings.HasPrefix(strings.ToUpper(o.sql), "CREATE VIRTUAL TABLE") {
			virtual[o.name] = true
		}
	}
	isShadow := func(name string) bool { return shadowOf(virtual, name) }
	fmt.Fprintln(bw, "BEGIN TRANSACTION;")
	// Tables and their rows first, then indexes, views and triggers (which may refer to any table).
	for _, o := range objs {
		if o.typ != "table" || isShadow(o.name) {
			continue
		}
		fmt.Fprintf(bw, "%s;\n", o.sql)
		if err := dumpRows(conn, bw, o.name, virtual[o.name]); err != nil {
			return fmt.Errorf("dump %s: %w", o.name, err)
		}
	}
	for _, typ := range []string{"index", "view", "trigger"} {
		for _, o := range objs {
			if o.typ == typ && o.sql != "" && !isShadow(o.tbl) {
				fmt.Fprintf(bw, "%s;\n", o.sql)
			}
		}
	}
	fmt.Fprintln(bw, "COMMIT;")
	return bw.Flush()
}

func schemaObjects(conn *sqlite3.Conn) ([]schemaObject, error) {
	s, _, err := conn.Prepare(`SELECT type, name, tbl_name, coalesce(sql, '') FROM main.sqlite_schema
		WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_rowboat\_%' ESCAPE '\' ORDER BY rowid`)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out []schemaObject
	for {
		row, err := s.Step()
		if err != nil {
			return nil, err
		}
		if !row {
			return out, nil
		}
		o := schemaObject{}
		o.typ, _ = s.Column(0).(string)
		o.name, _ = s.Column(1).(string)
		o.tbl, _ = s.Column(2).(string)
		o.sql, _ = s.Column(3).(string)
		out = append(out, o)
	}
}

// dumpRows writes an INSERT for every row of table, with its rowid when it has one, so the copy keeps them.
func dumpRows(conn *sqlite3.Conn, w *bufio.Writer, table string, virtual bool) error {
	cols, rowid, err := insertableColumns(conn, table)
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		return nil
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quote(c)
	}
	sel := "SELECT " + strings.Join(quoted, ", ") + " FROM main." + quote(table)
	head := "INSERT INTO " + quote(table) + "(" + strings.Join(quoted, ", ") + ") VALUES("
	if rowid != "" {
		sel = "SELECT " + rowid + ", " + strings.Join(quoted, ", ") + " FROM main." + quote(table)
		head = "INSERT INTO " + quote(table) + "(" + rowid + ", " + strings.Join(quoted, ", ") + ") VALUES("
	}
	s, _, err := conn.Prepare(sel)
	if err != nil {
		return err
	}
	defer s.Close()
	n := s.ColumnCount()
	for {
		row, err := s.Step()
		if err != nil {
			return err
		}
		if !row {
			return nil
		}
		w.WriteString(head)
		for i := range n {
			if i > 0 {
				w.WriteString(", ")
			}
			w.WriteString(Literal(s.Column(i)))
		}
		w.WriteString(");\n")
	}
}

// insertableColumns lists the columns an INSERT may name (not generated, not hidden), and the name that reaches
// the table's rowid: empty for a WITHOUT ROWID table, and for one whose columns hide it (see
// logical.RowIDName; rowboat refuses to put rows in those).
func insertableColumns(conn *sqlite3.Conn, table string) (cols []string, rowid string, err error) {
	s, _, err := conn.Prepare("SELECT name, hidden FROM pragma_table_xinfo(?1)")
	if err != nil {
		return nil, "", err
	}
	defer s.Close()
	var all []string
	if err := s.Bind(1, table); err != nil {
		return nil, "", err
	}
	for {
		row, err := s.Step()
		if err != nil {
			return nil, "", err
		}
		if !row {
			break
		}
		name, _ := s.Column(0).(string)
		all = append(all, name)
		if s.ColumnInt64(1) == 0 {
			cols = append(cols, name)
		}
	}
	w, _, err := conn.Prepare("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1")
	if err != nil {
		return nil, "", err
	}
	defer w.Close()
	if err := w.Bind(1, table); err != nil {
		return nil, "", err
	}
	if row, err := w.Step(); err != nil {
		return nil, "", err
	} else if row && w.ColumnInt64(0) != 0 {
		return cols, "", nil
	}
	rowid, _ = logical.RowIDName(all)
	return cols, rowid, nil
}

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// Literal renders a SQLite value as an SQL literal that reads back as the same value and type.
func Literal(v logical.Value) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		switch {
		case math.IsInf(x, 1):
			return "9e999"
		case math.IsInf(x, -1):
			return "-9e999"
		case math.IsNaN(x):
			return "NULL"
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return "CAST(X'" + hex.EncodeToString([]byte(x)) + "' AS TEXT)"
		}
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case []byte:
		return "X'" + hex.EncodeToString(x) + "'"
	default:
		return fmt.Sprintf("'%v'", x)
	}
}

// SplitSQL splits SQL text into complete statements (triggers' bodies and quoted semicolons stay whole).
func SplitSQL(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		if text[i] != ';' {
			continue
		}
		if stmt := text[start : i+1]; sqlite3.Complete(stmt) {
			if s := strings.TrimSpace(stmt); s != ";" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if rest := strings.TrimSpace(text[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

// DropAllSQL returns statements that drop every user table, view and trigger (indexes go with their
// tables), tables that refer to others by foreign key before the tables they refer to.
func (f *FSM) DropAllSQL(ctx context.Context) ([]string, error) {
	res, _, err := f.Query(ctx, []logical.Statement{
		{SQL: `SELECT type, name, coalesce(sql, '') FROM sqlite_schema WHERE type IN ('table', 'view', 'trigger')
			AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_rowboat\_%' ESCAPE '\' ORDER BY rowid`},
		{SQL: `SELECT m.name, p."table" FROM sqlite_schema m, pragma_foreign_key_list(m.name) p WHERE m.type = 'table'`},
	})
	if err != nil {
		return nil, err
	}
	for _, r := range res {
		if r.Error != "" {
			return nil, fmt.Errorf("read schema: %s", r.Error)
		}
	}
	var views, triggers, tables []string
	virtual := map[string]bool{}
	for _, row := range res[0].Rows {
		typ, name, sql := row[0].(string), row[1].(string), row[2].(string)
		switch typ {
		case "view":
			views = append(views, name)
		case "trigger":
			triggers = append(triggers, name)
		default:
			tables = append(tables, name)
			if strings.HasPrefix(strings.ToUpper(sql), "CREATE VIRTUAL TABLE") {
				virtual[name] = true
			}
		}
	}
	refersTo := map[string][]string{}
	for _, row := range res[1].Rows {
		child, parent := row[0].(string), row[1].(string)
		if child != parent {
			refersTo[child] = append(refersTo[child], parent)
		}
	}
	var out []string
	for _, v := range views {
		out = append(out, "DROP VIEW IF EXISTS "+quote(v))
	}
	for _, t := range triggers {
		out = append(out, "DROP TRIGGER IF EXISTS "+quote(t))
	}
	// Children first: a table is dropped once no remaining table refers to it.
	remaining := map[string]bool{}
	for _, t := range tables {
		remaining[t] = true
	}
	isShadow := func(name string) bool { return shadowOf(virtual, name) }
	for len(remaining) > 0 {
		progress := false
		for _, t := range tables {
			if !remaining[t] {
				continue
			}
			referenced := false
			for child, parents := range refersTo {
				if remaining[child] && child != t {
					for _, p := range parents {
						referenced = referenced || p == t
					}
				}
			}
			if referenced {
				continue
			}
			delete(remaining, t)
			progress = true
			if !isShadow(t) {
				out = append(out, "DROP TABLE IF EXISTS "+quote(t))
			}
		}
		if !progress { // a cycle of references: drop the rest in any order
			for _, t := range tables {
				if remaining[t] && !isShadow(t) {
					out = append(out, "DROP TABLE IF EXISTS "+quote(t))
				}
			}
			break
		}
	}
	return out, nil
}
