package logical

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// ErrNotReadOnly is wrapped by the per-statement error of a statement sent to a read path that would change
// the database or the connection.
var ErrNotReadOnly = errors.New("statement is not read-only")

// Reader runs read-only statements on a connection. Its authorizer admits only what reads: SELECT, read-only
// PRAGMAs and functions other than load_extension. Writes, schema changes, transactions, ATTACH and setting
// PRAGMAs are refused with an error wrapping ErrNotReadOnly, so a read path can never change a replica.
type Reader struct {
	conn    *sqlite3.Conn
	refused error
	inner   bool // running the caller's own SQL (ReadTx's meta query): no policy
}

// NewReader installs the read policy on conn. The connection should also be opened read-only.
func NewReader(conn *sqlite3.Conn) *Reader {
	r := &Reader{conn: conn}
	conn.SetAuthorizer(r.authorize)
	return r
}

func (r *Reader) authorize(action int, arg1, arg2, database, trigger string) int {
	if r.inner {
		return sqlite3.AuthOK
	}
	deny := func(format string, args ...any) int {
		if r.refused == nil {
			r.refused = fmt.Errorf("%w: %s", ErrNotReadOnly, fmt.Sprintf(format, args...))
		}
		return sqlite3.AuthDeny
	}
	switch action {
	case sqlite3.ActionRead, sqlite3.ActionSelect, sqlite3.ActionRecursive:
		return sqlite3.AuthOK
	case sqlite3.ActionFunction:
		if strings.EqualFold(arg2, "load_extension") {
			return deny("load_extension is not allowed")
		}
		return sqlite3.AuthOK
	case sqlite3.ActionPragma:
		name := strings.ToLower(arg1)
		if actionPragmas[name] {
			return deny("PRAGMA %s changes the database", name)
		}
		if arg2 != "" && !introspectionPragmas[name] {
			return deny("setting PRAGMA %s is not allowed on the read path", name)
		}
		return sqlite3.AuthOK
	default:
		return deny("send writes to /db/execute")
	}
}

// ReadTx runs stmts in one read transaction, so that all of them see the same state. meta, if not empty, is
// rowboat's own query, run first in the same transaction without the read policy; its first row is returned
// (for example the applied index of the state the statements see). SQL errors are returned per statement in
// the Results; err reports a failure of the connection or of meta. Cancelling ctx interrupts the statement
// running.
func (r *Reader) ReadTx(ctx context.Context, meta string, stmts []Statement) (results []Result, metaRow []Value, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, r.conn.Interrupt)
	defer stop()
	r.inner = true
	err = r.conn.Exec("BEGIN")
	if err == nil && meta != "" {
		metaRow, err = r.queryRow(meta)
	}
	r.inner = false
	if err != nil {
		r.end()
		return nil, nil, fmt.Errorf("begin read: %w", err)
	}
	results = make([]Result, len(stmts))
	for i, st := range stmts {
		if err := r.statement(st, &results[i]); err != nil {
			results[i] = Result{Error: err.Error()}
		}
		if ctx.Err() != nil {
			r.end()
			return nil, nil, ctx.Err()
		}
	}
	if err := r.end(); err != nil {
		return nil, nil, err
	}
	return results, metaRow, nil
}

func (r *Reader) end() error {
	if r.conn.Autocommit() {
		return nil
	}
	r.inner = true
	defer func() { r.inner = false }()
	return r.conn.Exec("ROLLBACK")
}

func (r *Reader) queryRow(sql string) ([]Value, error) {
	s, _, err := r.conn.Prepare(sql)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	row, err := s.Step()
	if err != nil || !row {
		return nil, err
	}
	vals := make([]Value, s.ColumnCount())
	for i := range vals {
		vals[i] = s.Column(i)
	}
	return vals, nil
}

// statement runs every SQL statement in st.SQL; the rows are those of the last statement that returns rows.
func (r *Reader) statement(st Statement, res *Result) error {
	sql := st.SQL
	if strings.TrimSpace(sql) == "" {
		return errors.New("empty statement")
	}
	args := st.Args
	ran := false
	for sql != "" {
		r.refused = nil
		s, tail, err := r.conn.Prepare(sql)
		if err != nil {
			if r.refused != nil {
				return r.refused
			}
			return err
		}
		if s == nil {
			if tail == sql {
				break
			}
			sql = tail
			continue
		}
		ran = true
		err = r.runOne(s, &args, st.Named, res)
		s.Close()
		if err != nil {
			return err
		}
		sql = tail
	}
	if !ran {
		return errors.New("empty statement")
	}
	if len(args) > 0 {
		return fmt.Errorf("%d more arguments than the statement has parameters", len(args))
	}
	return nil
}

func (r *Reader) runOne(s *sqlite3.Stmt, args *[]any, named map[string]any, res *Result) error {
	if !s.ReadOnly() {
		return fmt.Errorf("%w: send writes to /db/execute", ErrNotReadOnly)
	}
	if err := bindAll(s, args, named); err != nil {
		return err
	}
	n := s.ColumnCount()
	if n > 0 {
		res.Columns = make([]string, n)
		res.Types = make([]string, n)
		for i := range n {
			res.Columns[i] = s.ColumnName(i)
			res.Types[i] = strings.ToLower(s.ColumnDeclType(i))
		}
		res.Rows = nil
	}
	for {
		row, err := s.Step()
		if err != nil {
			return err
		}
		if !row {
			return nil
		}
		vals := make([]Value, n)
		for i := range vals {
			vals[i] = s.Column(i)
		}
		res.Rows = append(res.Rows, vals)
	}
}
