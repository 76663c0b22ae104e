package logical

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// ErrNotReadOnly is wrapped by the per-statement error of a statement sent to a read path that would change
// the database or the connection.
var ErrNotReadOnly = errors.New("statement is not read-only")

// MaxResultValues bounds the values (rows × columns) one statement may return, and MaxResultBytes the size
// of the values all statements of one request (one read, or one batch of writes) return, so that a query
// returning billions of rows, or a few huge values, fails with an error instead of exhausting the node's
// memory.
var (
	MaxResultValues = 5_000_000
	MaxResultBytes  = 128 << 20
)

// MaxRowBytes bounds one string or BLOB, and one row, that statements create or read on the leader's writer
// connection and on read connections: SQLite refuses a larger one before it allocates it ("string or blob
// too big"; SQLITE_LIMIT_LENGTH also bounds the records rows are stored in). Apply is not bounded: it stores
// what the leader accepted.
var MaxRowBytes = 512 << 20

var errResultTooLarge = errors.New("result too large; add a LIMIT or narrow the query")

// Reader runs read-only statements on a connection. Its authorizer admits only what reads: SELECT, read-only
// PRAGMAs and functions other than load_extension. Writes, schema changes, transactions, ATTACH and setting
// PRAGMAs are refused with an error wrapping ErrNotReadOnly, so a read path can never change a replica.
type Reader struct {
	conn    *sqlite3.Conn
	refused error
	inner   bool // running the caller's own SQL (ReadTx's meta query): no policy

	begin, rollback *sqlite3.Stmt
	budget          int // bytes the current read may still return (MaxResultBytes at its start)
	meta            map[string]*sqlite3.Stmt
	cache           map[string]*cachedStmt // single-statement SQL texts, most recently used at the highest tick
	tick            uint64
}

type cachedStmt struct {
	s    *sqlite3.Stmt
	used uint64
}

// readCacheSize bounds the prepared statements a Reader keeps: parsing is most of the cost of a point read.
const readCacheSize = 64

// NewReader installs the read policy on conn. The connection should also be opened read-only.
func NewReader(conn *sqlite3.Conn) (*Reader, error) {
	conn.SetMaxLength(MaxRowBytes)
	r := &Reader{conn: conn, meta: make(map[string]*sqlite3.Stmt), cache: make(map[string]*cachedStmt)}
	var err error
	if r.begin, err = prepareOne(conn, "BEGIN"); err != nil {
		return nil, err
	}
	if r.rollback, err = prepareOne(conn, "ROLLBACK"); err != nil {
		r.begin.Close()
		return nil, err
	}
	conn.SetAuthorizer(r.authorize)
	return r, nil
}

// Close finalizes the cached statements. It does not close the connection.
func (r *Reader) Close() {
	r.conn.SetAuthorizer(nil)
	for _, s := range []*sqlite3.Stmt{r.begin, r.rollback} {
		s.Close()
	}
	for k, s := range r.meta {
		s.Close()
		delete(r.meta, k)
	}
	for k, c := range r.cache {
		c.s.Close()
		delete(r.cache, k)
	}
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
	case sqlite3.ActionInsert, sqlite3.ActionUpdate, sqlite3.ActionDelete:
		// R*Tree prepares the statements that write its shadow tables as soon as it connects, for a read too.
		// Preparing is not running: a user's write is still refused as not read-only before it runs, and the
		// connection is opened read-only.
		if shadowTable(arg1) {
			return sqlite3.AuthOK
		}
		return deny("send writes to /db/execute")
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
		if arg2 != "" && sessionPragmas[name] {
			return sqlite3.AuthIgnore // the statement compiles to nothing
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
// the Results; err reports a failure of the connection or of meta, or wraps ErrNotReadOnly when a statement
// would write (then no results are returned). A lone statement this Reader has already prepared once runs
// without the explicit transaction and without meta: metaRow is nil then. Cancelling ctx interrupts the statement
// running.
func (r *Reader) ReadTx(ctx context.Context, meta string, stmts []Statement) (results []Result, metaRow []Value, err error) {
	return r.readTx(ctx, meta, stmts, true)
}

// ReadInTx is ReadTx without the lone-statement fast path: meta always runs, in the statements' transaction.
func (r *Reader) ReadInTx(ctx context.Context, meta string, stmts []Statement) (results []Result, metaRow []Value, err error) {
	return r.readTx(ctx, meta, stmts, false)
}

func (r *Reader) readTx(ctx context.Context, meta string, stmts []Statement, fast bool) (results []Result, metaRow []Value, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	r.budget = MaxResultBytes
	// If ctx ends just as the read finishes, the interrupt must not land on the next read: wait for it.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		r.conn.Interrupt()
	})
	defer func() {
		if !stop() {
			<-interrupted
		}
	}()
	// One statement already known to be a single read-only statement is atomic by itself: skip the explicit
	// transaction and meta (a third of a point read's cost). metaRow is then nil.
	if fast && len(stmts) == 1 && r.cache[stmts[0].SQL] != nil {
		results = make([]Result, 1)
		if err := r.statement(stmts[0], &results[0]); err != nil {
			if errors.Is(err, ErrNotReadOnly) {
				return nil, nil, fmt.Errorf("statement 1: %w", err)
			}
			results[0] = Result{Error: err.Error()}
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return results, nil, nil
	}
	r.inner = true
	err = step(r.begin)
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
			if errors.Is(err, ErrNotReadOnly) {
				// A write sent to a read path is a bad request as a whole, not one failed statement.
				r.end()
				return nil, nil, fmt.Errorf("statement %d: %w", i+1, err)
			}
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
	return step(r.rollback)
}

func (r *Reader) queryRow(sql string) ([]Value, error) {
	s := r.meta[sql]
	if s == nil {
		var err error
		if s, err = prepareOne(r.conn, sql); err != nil {
			return nil, err
		}
		r.meta[sql] = s
	}
	defer s.Reset()
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
	start := time.Now()
	defer func() { res.Time = time.Since(start) }()
	sql := st.SQL
	if strings.TrimSpace(sql) == "" {
		return errors.New("empty statement")
	}
	args := st.Args
	if c := r.cache[sql]; c != nil {
		r.tick++
		c.used = r.tick
		err := r.runOne(c.s, &args, st.Named, res)
		c.s.Reset()
		c.s.ClearBindings()
		if err == nil && len(args) > 0 {
			return fmt.Errorf("%d more arguments than the statement has parameters", len(args))
		}
		return err
	}
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
		if sql == st.SQL && strings.TrimSpace(tail) == "" && s.ReadOnly() {
			r.remember(sql, s)
			err = r.runOne(s, &args, st.Named, res)
			s.Reset()
			s.ClearBindings()
		} else {
			err = r.runOne(s, &args, st.Named, res)
			s.Close()
		}
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
	return collectRows(s, res, &r.budget)
}

// collectRows steps s to the end, putting its columns and rows into res. With several statements in one SQL
// string, the rows are those of the last statement that returns any. A statement returning more than
// MaxResultValues values, or more bytes than *budget holds, fails with errResultTooLarge; *budget is
// reduced by what the statement returned.
func collectRows(s *sqlite3.Stmt, res *Result, budget *int) error {
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
		if (len(res.Rows)+1)*max(n, 1) > MaxResultValues {
			return errResultTooLarge
		}
		vals := make([]Value, n)
		for i := range vals {
			size := 8
			if t := s.ColumnType(i); t == sqlite3.Text || t == sqlite3.Blob {
				size += s.ColumnBytes(i) // measured before the copy: one huge value must not be copied first
			}
			if size > *budget {
				return fmt.Errorf("%w (more than %d MiB in one request)", errResultTooLarge, MaxResultBytes>>20)
			}
			*budget -= size
			vals[i] = s.Column(i)
		}
		res.Rows = append(res.Rows, vals)
	}
}

// remember caches s as the prepared form of sql, evicting the least recently used statement when full.
func (r *Reader) remember(sql string, s *sqlite3.Stmt) {
	if len(r.cache) >= readCacheSize {
		var oldest string
		var min uint64 = ^uint64(0)
		for k, c := range r.cache {
			if c.used < min {
				oldest, min = k, c.used
			}
		}
		r.cache[oldest].s.Close()
		delete(r.cache, oldest)
	}
	r.tick++
	r.cache[sql] = &cachedStmt{s: s, used: r.tick}
}

// shadowTable reports whether name could be one of an R*Tree's shadow tables (x_node, x_rowid, x_parent).
func shadowTable(name string) bool {
	for _, suffix := range []string{"_node", "_rowid", "_parent"} {
		if len(name) > len(suffix) && strings.EqualFold(name[len(name)-len(suffix):], suffix) {
			return true
		}
	}
	return false
}
