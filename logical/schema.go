package logical

import (
	"fmt"
	"strings"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// table is what capture and apply need to know about a table of the main database.
type table struct {
	name         string
	ncols        int      // every column, generated ones included: the pre-update hook's Count()
	stored       []int    // positions of the stored (non-generated) columns, in table order
	storedNames  []string // their names, quoted
	pk           []int    // WITHOUT ROWID: positions of the primary-key columns, in key order
	pkNames      []string // their names, quoted, each with the key's COLLATE clause: what a key lookup compares by
	withoutRowID bool
	// rowid is the name that reaches the rowid of a rowid table: "rowid", unless a column of the table has that
	// name, then "_rowid_" or "oid"; empty when columns shadow all three (see RowIDName).
	rowid string
}

// errNoRowIDName refuses changes to a rowid table whose columns shadow every name of its rowid.
var errNoRowIDName = fmt.Errorf("%w: the table's columns are named rowid, _rowid_ and oid, which hides its rowid from SQL, and rowboat replicates rows by rowid: rename one of them", ErrRefused)

// replicable reports why changes to t cannot be replicated, if they cannot.
func (t *table) replicable() error {
	if !t.withoutRowID && t.rowid == "" {
		return fmt.Errorf("table %s: %w", t.name, errNoRowIDName)
	}
	if t.withoutRowID && len(t.pk) > maxKeyColumns {
		// A key lookup is a chain of k1 = ? AND k2 = ? ..., and SQLite bounds an expression's depth (1000).
		return fmt.Errorf("table %s: %w: its primary key has %d columns; rowboat replicates rows of a WITHOUT ROWID table by key, with at most %d",
			t.name, ErrRefused, len(t.pk), maxKeyColumns)
	}
	return nil
}

// maxKeyColumns bounds the primary key of a WITHOUT ROWID table whose rows replicate: the longest key whose
// lookup stays within SQLite's expression depth (so apply refuses nothing SQLite would have run).
const maxKeyColumns = 998

// maxSetColumns is SQLite's bound on the columns an UPDATE sets (SQLITE_MAX_COLUMN as this build has it).
const maxSetColumns = 2000

// RowIDName returns the name that reaches the rowid of a table with the given columns (every column, generated
// and hidden ones included): SQLite's three names for it, rowid, _rowid_ and oid, mean the column instead when
// a column has that name (case-insensitively). ok is false when columns shadow all three.
func RowIDName(columns []string) (name string, ok bool) {
	for _, alias := range []string{"rowid", "_rowid_", "oid"} {
		shadowed := false
		for _, c := range columns {
			shadowed = shadowed || strings.EqualFold(c, alias)
		}
		if !shadowed {
			return alias, true
		}
	}
	return "", false
}

// schema caches table descriptions for one connection. It is invalidated whenever the schema may have
// changed: after DDL on the connection, and when PRAGMA schema_version moves.
type schema struct {
	conn    *sqlite3.Conn
	tables  map[string]*table
	version int64
	cols    *sqlite3.Stmt // SELECT name, pk, hidden FROM pragma_table_xinfo(?1, 'main')
	wr      *sqlite3.Stmt // SELECT wr FROM pragma_table_list(?1, 'main')
	ver     *sqlite3.Stmt // PRAGMA main.schema_version
	virt    *sqlite3.Stmt // whether the main schema has a virtual table
	virtual int8          // cached answer of virt: -1 unknown, 0 no, 1 yes
}

func newSchema(conn *sqlite3.Conn) (*schema, error) {
	s := &schema{conn: conn, tables: make(map[string]*table), version: -1, virtual: -1}
	var err error
	if s.cols, err = prepareOne(conn, "SELECT name, pk, hidden FROM pragma_table_xinfo(?1, 'main') ORDER BY cid"); err != nil {
		return nil, err
	}
	if s.wr, err = prepareOne(conn, "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1"); err != nil {
		s.close()
		return nil, err
	}
	if s.ver, err = prepareOne(conn, "PRAGMA main.schema_version"); err != nil {
		s.close()
		return nil, err
	}
	if s.virt, err = prepareOne(conn, "SELECT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%')"); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *schema) close() {
	for _, st := range []*sqlite3.Stmt{s.cols, s.wr, s.ver, s.virt} {
		st.Close()
	}
}

// invalidate forgets every table.
func (s *schema) invalidate() {
	clear(s.tables)
	s.version = -1
	s.virtual = -1
}

// hasVirtual reports whether the main schema holds a virtual table (FTS keeps state in memory that only a
// savepoint flushes to its shadow tables).
func (s *schema) hasVirtual() (bool, error) {
	if s.virtual < 0 {
		defer s.virt.Reset()
		if _, err := s.virt.Step(); err != nil {
			return true, err
		}
		s.virtual = int8(s.virt.ColumnInt64(0))
	}
	return s.virtual == 1, nil
}

// check invalidates the cache if the schema changed since it was filled. It reports whether it did.
func (s *schema) check() (bool, error) {
	defer s.ver.Reset()
	row, err := s.ver.Step()
	if err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	if !row {
		return false, fmt.Errorf("read schema version: no row")
	}
	v := s.ver.ColumnInt64(0)
	if v == s.version {
		return false, nil
	}
	clear(s.tables)
	s.version = v
	s.virtual = -1
	return true, nil
}

// lookup returns the description of the named table, or nil (and no error) when the main database has no
// such table.
func (s *schema) lookup(name string) (*table, error) {
	if t, ok := s.tables[name]; ok {
		return t, nil
	}
	t, err := s.load(name)
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", name, err)
	}
	if t != nil {
		s.tables[name] = t
	}
	return t, nil
}

func (s *schema) load(name string) (*table, error) {
	t := &table{name: name}
	var (
		names []string
		pkPos []int // the 1-based position of each column in the primary key, 0 when not in it
	)
	if err := s.cols.Bind(1, name); err != nil {
		return nil, err
	}
	for {
		row, err := s.cols.Step()
		if err != nil {
			s.cols.Reset()
			return nil, err
		}
		if !row {
			break
		}
		col, _ := s.cols.Column(0).(string)
		pk := int(s.cols.ColumnInt64(1))
		hidden := s.cols.ColumnInt64(2)
		i := t.ncols
		t.ncols++
		names = append(names, col)
		pkPos = append(pkPos, pk)
		// hidden: 0 ordinary, 1 hidden column of a virtual table, 2 VIRTUAL generated, 3 STORED generated.
		if hidden == 2 || hidden == 3 {
			continue
		}
		t.stored = append(t.stored, i)
		t.storedNames = append(t.storedNames, quoteIdent(col))
	}
	s.cols.Reset()
	if t.ncols == 0 {
		return nil, nil
	}
	if err := s.wr.Bind(1, name); err != nil {
		return nil, err
	}
	row, err := s.wr.Step()
	if err != nil {
		s.wr.Reset()
		return nil, err
	}
	if row {
		t.withoutRowID = s.wr.ColumnInt64(0) != 0
	}
	s.wr.Reset()
	if !t.withoutRowID {
		t.rowid, _ = RowIDName(names)
	}
	if t.withoutRowID {
		// Key columns in key order: pkPos holds each column's 1-based position in the key.
		nkey := 0
		for _, p := range pkPos {
			nkey = max(nkey, p)
		}
		t.pk = make([]int, nkey)
		for i, p := range pkPos {
			if p > 0 {
				t.pk[p-1] = i
			}
		}
		for _, i := range t.pk {
			t.pkNames = append(t.pkNames, quoteIdent(names[i]))
		}
		colls, err := s.keyCollations(name)
		if err != nil {
			return nil, err
		}
		if len(colls) == len(t.pk) {
			for k := range t.pkNames {
				t.pkNames[k] += " COLLATE " + quoteIdent(colls[k])
			}
		}
	}
	return t, nil
}

// keyCollations returns the collation of each column of a WITHOUT ROWID table's primary key, in key order.
// A key column compares by the key's collation, which may differ from the column's own (PRIMARY KEY(k COLLATE
// BINARY) on k TEXT COLLATE NOCASE): "k = ?" alone would use the column's and could match several rows.
func (s *schema) keyCollations(table string) ([]string, error) {
	st, _, err := s.conn.Prepare(`SELECT x.coll FROM pragma_index_list(?1, 'main') l, pragma_index_xinfo(l.name, 'main') x
		WHERE l.origin = 'pk' AND x.key = 1 ORDER BY x.seqno`)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.Bind(1, table); err != nil {
		return nil, err
	}
	var out []string
	for {
		row, err := st.Step()
		if err != nil {
			return nil, err
		}
		if !row {
			return out, nil
		}
		c, _ := st.Column(0).(string)
		out = append(out, c)
	}
}

// prepareOne prepares sql, which must hold exactly one statement.
func prepareOne(conn *sqlite3.Conn, sql string) (*sqlite3.Stmt, error) {
	st, tail, err := conn.PreparePersistent(sql)
	if err != nil {
		return nil, err
	}
	if st == nil || strings.TrimSpace(tail) != "" {
		st.Close()
		return nil, fmt.Errorf("prepare %q: not exactly one statement", sql)
	}
	return st, nil
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
