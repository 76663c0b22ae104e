package logical

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// Statement is one SQL statement (or several, separated by semicolons) with its parameters.
type Statement struct {
	SQL string
	// Args are the values of positional parameters (?, ?NNN), in order.
	Args []any
	// Named are the values of named parameters (:name, @name, $name), keyed by name without the prefix.
	Named map[string]any
}

// Request is a group of statements from one client request. Each request runs in its own savepoint, so one
// request's failure never undoes another's.
type Request struct {
	Statements []Statement
	// Transaction makes the request all-or-nothing: the first failing statement undoes the request's earlier
	// statements, and the statements after it do not run.
	Transaction bool
}

// Result is the outcome of one Statement.
type Result struct {
	LastInsertID int64
	RowsAffected int64
	// Columns, Types (declared types, lower-cased) and Rows are set for statements that return rows.
	Columns []string
	Types   []string
	Rows    [][]Value
	// Error is the SQL error, or the reason the statement was refused; "" when it succeeded.
	Error string
	// Time is how long the statement took to run (rqlite's ?timings).
	Time time.Duration
}

// Capturer executes statements on a leader's writer connection and captures the row changes they make. It
// never leaves a change in the database: every batch is rolled back, and the captured Entry is what the
// batch did. A Capturer is not safe for concurrent use.
type Capturer struct {
	conn   *sqlite3.Conn
	schema *schema

	internal bool  // running rowboat's own SQL: the authorizer allows everything
	overflow error // why the running statement is being interrupted: the batch captured too much
	// batchBytes is what the batch's statements that succeeded captured, stmtBytes what the running one has
	// (values' sizes, roughly), bounded together by MaxChangeBytes.
	batchBytes, stmtBytes int
	vtabConfig            bool // the batch changed a table named *_config (see forgetVirtualState)
	tempUsed              bool // the request being executed changed the temp schema (see dropTemp)
	// unreplicable is why the running statement changed a table whose changes cannot be replicated (see
	// table.replicable): the statement fails with it.
	unreplicable error
	info         stmtInfo // what the authorizer learned about the user statement being prepared

	items  []Item
	budget int         // bytes the batch's statements may still return as rows (see MaxResultBytes)
	raw    []rawChange // rows of tables not yet described, resolved after the statement (items hold their index)

	begin, rollback, commit           *sqlite3.Stmt
	spReq, releaseReq, rollbackReq    *sqlite3.Stmt
	spStmt, releaseStmt, rollbackStmt *sqlite3.Stmt
	spFlush, releaseFlush             *sqlite3.Stmt
	exists                            *sqlite3.Stmt // SELECT sql FROM main.sqlite_schema WHERE type='table' AND name=?
	reload                            *sqlite3.Stmt // reads the schema table: makes SQLite reload a schema changed elsewhere

	keep bool // tests: COMMIT the batch instead of rolling it back
}

// MaxChanges bounds the row changes one batch of writes may capture, and MaxChangeBytes the size of their
// values (they are held in memory and replicated as one log entry). A statement that goes past either fails,
// and its changes are undone.
var (
	MaxChanges     = 5_000_000
	MaxChangeBytes = 512 << 20
)

var errChangesTooLarge = errors.New("the row changes of one write are too large to replicate as one log entry: split it into smaller statements or requests")

// errDeferredForeignKey fails a statement or transaction request that leaves a deferred foreign-key
// constraint violated at its end, where SQLite's COMMIT would fail.
var errDeferredForeignKey = errors.New("FOREIGN KEY constraint failed")

var errTooManyChanges = errors.New("too many row changes in one write: split it into smaller statements or requests")

// rawChange is a change to a table the schema cache did not describe yet: every column of the old and new
// row, trimmed to what the Change needs once the table is described.
type rawChange struct {
	reread   bool // a blob write: emit an UPDATE with the row as it is after the statement
	change   Change
	old, new []Value
}

// NewCapturer takes over conn, which must be a read-write connection to the database and used by nothing
// else. It turns foreign-key enforcement on (the leader enforces them; apply does not), installs the
// pre-update hook and the authorizer, and prepares the statements it needs.
func NewCapturer(conn *sqlite3.Conn) (*Capturer, error) {
	conn.SetMaxLength(MaxRowBytes)
	c := &Capturer{conn: conn}
	if err := conn.Exec("PRAGMA foreign_keys = ON"); err != nil {
		return nil, fmt.Errorf("enable foreign keys: %w", err)
	}
	var err error
	if c.schema, err = newSchema(conn); err != nil {
		return nil, err
	}
	stmts := []struct {
		dst **sqlite3.Stmt
		sql string
	}{
		{&c.begin, "BEGIN IMMEDIATE"}, {&c.rollback, "ROLLBACK"}, {&c.commit, "COMMIT"},
		{&c.spReq, "SAVEPOINT rowboat_request"}, {&c.releaseReq, "RELEASE rowboat_request"},
		{&c.rollbackReq, "ROLLBACK TO rowboat_request"},
		{&c.spStmt, "SAVEPOINT rowboat_statement"}, {&c.releaseStmt, "RELEASE rowboat_statement"},
		{&c.rollbackStmt, "ROLLBACK TO rowboat_statement"},
		{&c.spFlush, "SAVEPOINT rowboat_flush"}, {&c.releaseFlush, "RELEASE rowboat_flush"},
		{&c.exists, "SELECT sql FROM main.sqlite_schema WHERE type = 'table' AND name = ?1"},
		{&c.reload, "SELECT 1 FROM main.sqlite_schema LIMIT 1"},
	}
	for _, s := range stmts {
		if *s.dst, err = prepareOne(conn, s.sql); err != nil {
			c.Close()
			return nil, err
		}
	}
	conn.SetAuthorizer(c.authorize)
	conn.SetPreUpdateHook(c.onPreUpdate)
	return c, nil
}

// SetForeignKeys turns enforcement of foreign-key constraints on (the default) or off for the statements
// the Capturer executes. (Replicas never enforce them: they apply what the leader allowed.)
func (c *Capturer) SetForeignKeys(on bool) error {
	c.internal = true
	defer func() { c.internal = false }()
	if on {
		return c.conn.Exec("PRAGMA foreign_keys = ON")
	}
	return c.conn.Exec("PRAGMA foreign_keys = OFF")
}

// Close releases the prepared statements and removes the hooks. It does not close the connection.
func (c *Capturer) Close() error {
	c.conn.SetPreUpdateHook(nil)
	c.conn.SetAuthorizer(nil)
	for _, s := range []*sqlite3.Stmt{c.begin, c.rollback, c.commit, c.spReq, c.releaseReq, c.rollbackReq,
		c.spStmt, c.releaseStmt, c.rollbackStmt, c.spFlush, c.releaseFlush, c.exists, c.reload} {
		s.Close()
	}
	if c.schema != nil {
		c.schema.close()
	}
	return nil
}

func (c *Capturer) authorize(action int, arg1, arg2, database, trigger string) int {
	if c.internal {
		return sqlite3.AuthOK
	}
	return c.info.authorize(action, arg1, arg2, database, trigger)
}

// onPreUpdate records one row change. It runs inside sqlite3_step and must not use the connection.
func (c *Capturer) onPreUpdate(p *sqlite3.PreUpdate) {
	if p.Database != "main" {
		return // TEMP tables are never replicated
	}
	if c.overflow != nil {
		return
	}
	if len(c.items)+len(c.raw) >= MaxChanges {
		c.overflow = errTooManyChanges
		c.conn.Interrupt() // the statement stops at its next check and fails
		return
	}
	ch := Change{Table: p.Table}
	if strings.HasSuffix(p.Table, "_config") {
		c.vtabConfig = true // perhaps a virtual table's settings, which it also keeps in memory (see forgetVirtualState)
	}
	if p.Op == sqlite3.OpDelete && p.BlobWrite() >= 0 {
		ch.Op, ch.OldRowID, ch.NewRowID = OpUpdate, p.OldRowID, p.OldRowID
		c.items = append(c.items, Item{Kind: kindRaw, Change: Change{OldRowID: int64(len(c.raw))}})
		c.raw = append(c.raw, rawChange{change: ch, reread: true})
		return
	}
	switch p.Op {
	case sqlite3.OpInsert:
		ch.Op, ch.NewRowID = OpInsert, p.NewRowID
	case sqlite3.OpUpdate:
		ch.Op, ch.OldRowID, ch.NewRowID = OpUpdate, p.OldRowID, p.NewRowID
	case sqlite3.OpDelete:
		ch.Op, ch.OldRowID = OpDelete, p.OldRowID
	default:
		return
	}
	t := c.schema.tables[p.Table]
	if t == nil {
		// Not described yet, and SQL cannot run inside the hook: keep every column, trim later.
		r := rawChange{change: ch}
		n := p.Count()
		if ch.Op != OpDelete {
			r.new = make([]Value, n)
			for i := range n {
				r.new[i] = p.New(i)
			}
		}
		if ch.Op != OpInsert {
			r.old = make([]Value, n)
			for i := range n {
				r.old[i] = p.Old(i)
			}
		}
		c.items = append(c.items, Item{Kind: kindRaw, Change: Change{OldRowID: int64(len(c.raw))}})
		c.raw = append(c.raw, r)
		c.count(r.new, r.old)
		return
	}
	if err := t.replicable(); err != nil && c.unreplicable == nil {
		c.unreplicable = err
	}
	if ch.Op != OpDelete {
		ch.Row = make([]Value, len(t.stored))
		for k, i := range t.stored {
			ch.Row[k] = p.New(i)
		}
	}
	if t.withoutRowID {
		ch.OldRowID, ch.NewRowID = 0, 0
		if ch.Op != OpInsert {
			ch.Key = make([]Value, len(t.pk))
			for k, i := range t.pk {
				ch.Key[k] = p.Old(i)
			}
		}
	}
	c.items = append(c.items, RowChange(ch))
	c.count(ch.Row, ch.Key)
}

// count adds the size of captured values to the running statement's, and interrupts the statement when the
// batch's changes pass MaxChangeBytes.
func (c *Capturer) count(rows ...[]Value) {
	for _, row := range rows {
		for _, v := range row {
			c.stmtBytes += 8
			switch v := v.(type) {
			case string:
				c.stmtBytes += len(v)
			case []byte:
				c.stmtBytes += len(v)
			}
		}
	}
	if c.internal {
		// Rows a savepoint flushed (FTS): part of the batch, not of a statement that could fail for them.
		c.batchBytes += c.stmtBytes
		c.stmtBytes = 0
		return
	}
	if c.batchBytes+c.stmtBytes > MaxChangeBytes && c.overflow == nil {
		c.overflow = errChangesTooLarge
		c.conn.Interrupt()
	}
}

// kindRaw marks an item whose change is in Capturer.raw, at the index held in Change.OldRowID.
const kindRaw Kind = 0xff

// resolve describes the tables of the raw changes captured so far and turns them into Changes. A change to
// a table that no longer exists is dropped when drop is true and an error otherwise. It must run before any
// statement that could change the schema the raw rows were captured under.
func (c *Capturer) resolve(drop bool) error {
	if len(c.raw) == 0 {
		return nil
	}
	out := c.items[:0]
	for _, it := range c.items {
		if it.Kind != kindRaw {
			out = append(out, it)
			continue
		}
		r := c.raw[it.Change.OldRowID]
		t, err := c.describe(r.change.Table)
		if err != nil {
			return err
		}
		if t == nil {
			if drop {
				continue
			}
			return fmt.Errorf("captured a change to table %s, which does not exist", r.change.Table)
		}
		if err := t.replicable(); err != nil && c.unreplicable == nil {
			c.unreplicable = err
		}
		ch := r.change
		if r.reread {
			if err := c.reread(t, &ch); err != nil {
				return err
			}
			out = append(out, RowChange(ch))
			continue
		}
		if ch.Op != OpDelete {
			ch.Row = make([]Value, len(t.stored))
			for k, i := range t.stored {
				ch.Row[k] = r.new[i]
			}
		}
		if t.withoutRowID {
			ch.OldRowID, ch.NewRowID = 0, 0
			if ch.Op != OpInsert {
				ch.Key = make([]Value, len(t.pk))
				for k, i := range t.pk {
					ch.Key[k] = r.old[i]
				}
			}
		}
		out = append(out, RowChange(ch))
	}
	c.items = out
	c.raw = c.raw[:0]
	return nil
}

// describe looks a table up in the schema cache, running rowboat's own SQL if needed.
func (c *Capturer) describe(name string) (*table, error) {
	c.internal = true
	defer func() { c.internal = false }()
	return c.schema.lookup(name)
}

// run steps one of the Capturer's own statements to completion.
func (c *Capturer) run(s *sqlite3.Stmt) error {
	c.internal = true
	err := step(s)
	c.internal = false
	if err != nil {
		return err
	}
	// Opening a savepoint can flush FTS terms, captured as changes: describe their tables now, before a
	// statement changes the schema.
	return c.resolve(false)
}

// ErrTransactionLost is returned when the batch's transaction ended under it in a way Execute cannot recover
// from; nothing was captured.
var ErrTransactionLost = errors.New("capture transaction ended unexpectedly")

// Execute runs the requests in order, in one transaction with a savepoint per request and per statement, and
// rolls it all back. It returns each statement's result and the entry that reproduces the batch's effect.
//
// SQL errors and refused statements are results, not errors: a failing statement has no effect (its
// savepoint is rolled back) and the statements after it still run, unless its request asked for a
// transaction. The error is non-nil only when the batch as a whole could not run (ctx done, I/O error, lock
// timeout); then no result or entry is returned and the database is unchanged.
func (c *Capturer) Execute(ctx context.Context, reqs []Request) ([][]Result, *Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	// If ctx ends just as the batch finishes, the interrupt must not land on the next batch's statements:
	// wait for it before returning. (SQLite forgets an interrupt that arrives while no statement is running.)
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		c.conn.Interrupt()
	})
	defer func() {
		if !stop() {
			<-interrupted
		}
	}()
	// A statement that ends the whole transaction (ON CONFLICT ROLLBACK, RAISE(ROLLBACK), a full disk)
	// takes every earlier request's work with it. Run the batch again with that statement failed up front;
	// each pass fails at least one more statement, so this ends.
	failed := make(map[[2]int]string)
	for {
		results, lost, err := c.executeOnce(ctx, reqs, failed)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, nil, err
		}
		if lost == nil {
			items := c.items
			c.items = nil
			return results, &Entry{Items: items}, nil
		}
		if _, again := failed[lost.at]; again {
			return nil, nil, fmt.Errorf("%w: %s", ErrTransactionLost, lost.msg)
		}
		failed[lost.at] = lost.msg
	}
}

type lostTx struct {
	at  [2]int // request, statement
	msg string
}

func (c *Capturer) executeOnce(ctx context.Context, reqs []Request, failed map[[2]int]string) (results [][]Result, lost *lostTx, err error) {
	c.items = make([]Item, 0, 2*len(reqs))
	c.budget = MaxResultBytes
	c.batchBytes, c.stmtBytes, c.overflow = 0, 0, nil
	c.raw = c.raw[:0]
	c.tempUsed = false
	if err := c.run(c.begin); err != nil {
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	ddl := false
	defer func() {
		end := c.rollback
		if c.keep && err == nil && lost == nil {
			end = c.commit
		}
		if !c.conn.Autocommit() {
			if end == c.rollback {
				c.forgetVirtualState()
			}
			if endErr := c.run(end); endErr != nil && err == nil {
				err = fmt.Errorf("end capture transaction: %w", endErr)
			}
		}
		c.vtabConfig = false
		if ddl || err != nil || lost != nil {
			c.schema.invalidate()
		}
	}()
	c.internal = true
	err = c.reloadSchema()
	c.internal = false
	if err != nil {
		return nil, nil, err
	}

	results = make([][]Result, len(reqs))
	for ri, req := range reqs {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		// Every statement has a savepoint of its own; a request needs one only to be undone as a whole.
		if req.Transaction {
			if err := c.run(c.spReq); err != nil {
				return nil, nil, fmt.Errorf("savepoint: %w", err)
			}
		}
		mark := len(c.items)
		c.budget = MaxResultBytes // per request, as documented
		res := make([]Result, 0, len(req.Statements))
		undo := false
		for si, st := range req.Statements {
			var r Result
			if msg, ok := failed[[2]int{ri, si}]; ok {
				r.Error = msg
			} else {
				var stmtDDL bool
				r, stmtDDL, err = c.statement(st, !req.Transaction)
				if err != nil {
					return nil, nil, err
				}
				ddl = ddl || stmtDDL
				if r.Error != "" && c.conn.Autocommit() {
					if ctx.Err() != nil {
						return nil, nil, ctx.Err()
					}
					return nil, &lostTx{at: [2]int{ri, si}, msg: r.Error + " (the statement ended the transaction)"}, nil
				}
			}
			res = append(res, r)
			if r.Error != "" && req.Transaction {
				undo = true
				break
			}
		}
		if req.Transaction && !undo && len(res) > 0 {
			// The end of a transaction request is its COMMIT: deferred foreign keys are checked there.
			if violated, err := c.conn.DeferredForeignKeyViolations(); err != nil {
				return nil, nil, err
			} else if violated {
				res[len(res)-1] = Result{Error: errDeferredForeignKey.Error()}
				undo = true
			}
		}
		if undo {
			c.schema.invalidate()
			c.forgetVirtualState()
			if err := c.run(c.rollbackReq); err != nil {
				return nil, nil, fmt.Errorf("roll back request: %w", err)
			}
			c.items = c.items[:mark]
		}
		if req.Transaction {
			if err := c.run(c.releaseReq); err != nil {
				return nil, nil, fmt.Errorf("release request: %w", err)
			}
		}
		if c.tempUsed {
			if err := c.dropTemp(); err != nil {
				return nil, nil, err
			}
		}
		results[ri] = res
	}
	// Opening a savepoint makes FTS5 (and FTS3/4) write the terms they hold in memory to their shadow tables,
	// where the hook sees them. (Each statement's savepoint flushed the statements before it.)
	c.internal = true
	virtual, err := c.schema.hasVirtual()
	c.internal = false
	if err != nil {
		return nil, nil, fmt.Errorf("flush: %w", err)
	}
	if !virtual && !ddl {
		return results, nil, nil
	}
	if err := c.run(c.spFlush); err != nil {
		return nil, nil, fmt.Errorf("flush: %w", err)
	}
	if err := c.run(c.releaseFlush); err != nil {
		return nil, nil, fmt.Errorf("flush: %w", err)
	}
	return results, nil, nil
}

// dropTemp drops every temp table, view and trigger at the end of the request that made them. Requests of one
// batch share the connection: a temp table one request made hid the main table of the same name from the
// next (whose insert went into it, acknowledged and never replicated), and a temp trigger ran on another
// request's writes. Alone, a request's temp objects would not outlive the batch's transaction either.
func (c *Capturer) dropTemp() error {
	c.tempUsed = false
	c.internal = true
	defer func() { c.internal = false }()
	list, _, err := c.conn.Prepare("SELECT type, name FROM temp.sqlite_schema WHERE type IN ('trigger', 'view', 'table') ORDER BY type = 'table', type = 'view'")
	if err != nil {
		return fmt.Errorf("list temp objects: %w", err)
	}
	var drops []string
	for {
		ok, err := list.Step()
		if err != nil {
			list.Close()
			return fmt.Errorf("list temp objects: %w", err)
		}
		if !ok {
			break
		}
		kind, _ := list.Column(0).(string)
		name, _ := list.Column(1).(string)
		drops = append(drops, "DROP "+strings.ToUpper(kind)+" IF EXISTS temp."+quoteIdent(name))
	}
	list.Close()
	for _, d := range drops {
		if err := c.conn.Exec(d); err != nil {
			return fmt.Errorf("drop temp objects: %s: %w", d, err)
		}
	}
	return nil
}

// forgetVirtualState is called before a rollback. When the changes being rolled back may have set a virtual
// table's configuration (FTS5's secure-delete, rank, ...: rows of its _config table, which it also keeps in
// memory), it makes the rollback reset the connection's schema, by changing the schema inside what is rolled
// back: SQLite then disconnects the virtual tables, and they read their configuration again from the
// database. FTS5's own reload after a rollback forgets some settings (secure-delete stayed on), and a setting
// that was never committed would shape the rows later statements capture.
func (c *Capturer) forgetVirtualState() {
	if !c.vtabConfig || c.conn.Autocommit() {
		return
	}
	c.internal = true
	defer func() { c.internal = false }()
	if virtual, err := c.schema.hasVirtual(); err == nil && !virtual {
		return // an ordinary table that happens to be named *_config
	}
	const name = "main." + ReservedPrefix + "vtab_reset"
	if err := c.conn.Exec("CREATE TABLE " + name + "(x); DROP TABLE " + name); err != nil {
		return // the rollback goes ahead: at worst the setting lingers, as it did before
	}
	c.schema.invalidate()
}

// reloadSchema brings SQLite's own copy of the schema up to date when another connection (the apply
// connection, as this node applied entries as a follower) changed it since this connection last read it.
// SQLite notices a changed schema only when a statement that reads a table runs; a statement compiled
// against an outdated copy that reads none runs as compiled: DROP TABLE IF EXISTS of a table created since
// did nothing and changed nothing, so it was not replicated, and a CREATE of the same name after it then
// failed on every node. Reading the schema table makes SQLite reload the schema (and the statement is
// compiled again against it), so every statement of the batch, prepared after this, sees the schema it runs
// against: the write lock, taken by BEGIN IMMEDIATE, keeps it from changing until the batch ends.
func (c *Capturer) reloadSchema() error {
	changed, err := c.schema.check()
	if err != nil || !changed {
		return err
	}
	defer c.reload.Reset()
	if _, err := c.reload.Step(); err != nil {
		return fmt.Errorf("reload schema: %w", err)
	}
	return nil
}

// statement runs one Statement inside its own savepoint. SQL errors are returned in the Result; err is for
// failures of the capture itself. ddl reports whether the statement changed the main schema. commits tells
// that the statement is a transaction of its own (not part of a transaction request), so deferred foreign
// keys are checked at its end.
func (c *Capturer) statement(st Statement, commits bool) (r Result, ddl bool, err error) {
	start := time.Now()
	defer func() { r.Time = time.Since(start) }()
	// Opening the savepoint also flushes FTS pending terms of the previous statement, so mark after it.
	if err := c.run(c.spStmt); err != nil {
		return r, false, fmt.Errorf("savepoint: %w", err)
	}
	mark := len(c.items)
	c.stmtBytes = 0
	ddl, sqlErr := c.statementBody(st, &r)
	if c.overflow != nil {
		sqlErr = c.overflow
		c.overflow = nil
	}
	if c.unreplicable != nil {
		if sqlErr == nil {
			sqlErr = c.unreplicable
		}
		c.unreplicable = nil
	}
	if sqlErr == nil && commits {
		// Outside a transaction request a statement is its own transaction: its end is a COMMIT, where
		// deferred foreign keys are checked. The batch's transaction never commits here, so check now.
		if violated, err := c.conn.DeferredForeignKeyViolations(); err != nil {
			return r, ddl, err
		} else if violated {
			sqlErr = errDeferredForeignKey
		}
	}
	if sqlErr != nil {
		r = Result{Error: sqlErr.Error()}
		c.items = c.items[:mark]
		c.raw = c.raw[:0] // raw changes never outlive the statement that captured them
		if c.conn.Autocommit() {
			return r, ddl, nil // the transaction is gone; Execute starts over
		}
		c.schema.invalidate() // the rolled-back statement may have changed the schema the cache describes
		c.forgetVirtualState()
		if err := c.run(c.rollbackStmt); err != nil {
			return r, ddl, fmt.Errorf("roll back statement: %w", err)
		}
	}
	if err := c.run(c.releaseStmt); err != nil {
		return r, ddl, fmt.Errorf("release statement: %w", err)
	}
	if sqlErr == nil {
		c.batchBytes += c.stmtBytes
	}
	c.stmtBytes = 0
	return r, ddl, nil
}

// statementBody runs every SQL statement in st.SQL, filling r. It returns the error that fails the statement.
func (c *Capturer) statementBody(st Statement, r *Result) (ddl bool, err error) {
	sql := st.SQL
	if strings.TrimSpace(sql) == "" {
		return false, errors.New("empty statement")
	}
	args := st.Args
	ran := false
	for sql != "" {
		c.info = stmtInfo{}
		s, tail, err := c.conn.Prepare(sql)
		if err != nil {
			if c.info.refused != nil {
				return ddl, c.info.refused
			}
			return ddl, err
		}
		if s == nil {
			if tail == sql {
				break
			}
			sql = tail
			continue
		}
		ran = true
		info := c.info
		stmtDDL, err := c.runOne(s, info, &args, st.Named, r)
		s.Close()
		ddl = ddl || stmtDDL
		if err != nil {
			return ddl, err
		}
		sql = tail
	}
	if !ran {
		return false, errors.New("empty statement")
	}
	if len(args) > 0 {
		return ddl, fmt.Errorf("%d more arguments than the statement has parameters", len(args))
	}
	return ddl, nil
}

// runOne binds, steps and post-processes one prepared statement.
func (c *Capturer) runOne(s *sqlite3.Stmt, info stmtInfo, args *[]any, named map[string]any, r *Result) (ddl bool, err error) {
	text := s.SQL()
	kw := firstKeyword(text)
	if kw == "VACUUM" {
		return false, fmt.Errorf("%w: VACUUM is not allowed: it may renumber rowids, so nodes running it independently would diverge", ErrRefused)
	}
	if info.tempDDL {
		c.tempUsed = true
	}
	replicate := info.ddl && kw != "EXPLAIN" && !s.ReadOnly()
	ctas := replicate && info.create != "" && info.selects
	if err := bindAll(s, args, named); err != nil {
		return false, err
	}
	if replicate && !ctas {
		if s.ParamCount() > 0 {
			return false, fmt.Errorf("%w: schema statements cannot take parameters, because they are replicated as SQL text", ErrRefused)
		}
	}
	existed := false
	if ctas {
		if existed, err = c.tableExists(info.create); err != nil {
			return false, err
		}
	}

	reservedBefore := 0
	if info.alter {
		if reservedBefore, err = c.countReserved(); err != nil {
			return false, err
		}
	}
	if replicate {
		// FTS5 holds the terms that earlier parts of this SQL string wrote in memory until a savepoint opens.
		// This schema statement would flush them while it runs, and the rows it writes are dropped below (its
		// text is replicated instead): flush them first, so they are captured as rows.
		if err := c.run(c.spFlush); err != nil {
			return false, fmt.Errorf("flush: %w", err)
		}
		if err := c.run(c.releaseFlush); err != nil {
			return false, fmt.Errorf("flush: %w", err)
		}
	}
	mark := len(c.items)
	before := c.conn.TotalChanges()
	if err := collectRows(s, r, &c.budget); err != nil {
		return false, err
	}
	r.LastInsertID = c.conn.LastInsertRowID()
	if info.alter {
		if n, err := c.countReserved(); err != nil {
			return false, err
		} else if n > reservedBefore {
			return false, fmt.Errorf("%w: names beginning with %s are reserved for rowboat's own bookkeeping", ErrRefused, ReservedPrefix)
		}
	}
	// sqlite3_changes keeps the count of the last INSERT, UPDATE or DELETE, so a statement that changed
	// nothing (DROP TABLE IF EXISTS of a missing table) would report an earlier statement's count.
	if !s.ReadOnly() && !info.ddl && !info.tempDDL && c.conn.TotalChanges() != before {
		r.RowsAffected += c.conn.Changes()
	}
	if !replicate {
		return false, c.resolve(false)
	}

	// A schema statement: replicate its text, not the rows SQLite wrote while running it.
	c.schema.invalidate()
	switch {
	case ctas:
		c.items = c.items[:mark]
		if existed {
			return true, nil // CREATE TABLE IF NOT EXISTS ... AS SELECT found the table: a no-op
		}
		if err := c.captureCreateAs(info.create); err != nil {
			return true, err
		}
		return true, nil
	case info.drop != "":
		// DROP TABLE with foreign keys on deletes the table's rows first, and the foreign-key actions that fires
		// change other tables. Keep those changes (apply runs with foreign keys off); drop the dropped
		// table's own rows, and rows of tables the statement removed with it (virtual table shadows).
		out := c.items[:mark]
		for _, it := range c.items[mark:] {
			if it.Kind == KindChange && it.Change.Table == info.drop {
				continue
			}
			out = append(out, it)
		}
		c.items = out
		if err := c.resolve(true); err != nil {
			return true, err
		}
		kept := c.items[:mark]
		for _, it := range c.items[mark:] {
			if t, err := c.describe(it.Change.Table); err != nil {
				return true, err
			} else if t != nil {
				kept = append(kept, it)
			}
		}
		c.items = kept
	default:
		// CREATE VIRTUAL TABLE initialises its shadow tables and ANALYZE fills sqlite_stat*: every node does
		// the same when it runs the statement.
		c.items = c.items[:mark]
		c.raw = c.raw[:0]
	}
	c.items = append(c.items, DDL(text))
	return true, nil
}

// countReserved counts the main schema's objects whose names begin with ReservedPrefix.
func (c *Capturer) countReserved() (int, error) {
	c.internal = true
	defer func() { c.internal = false }()
	s, _, err := c.conn.Prepare(`SELECT count(*) FROM main.sqlite_schema WHERE name LIKE '\_rowboat\_%' ESCAPE '\'`)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if _, err := s.Step(); err != nil {
		return 0, err
	}
	return int(s.ColumnInt64(0)), nil
}

func (c *Capturer) tableExists(name string) (bool, error) {
	c.internal = true
	defer func() { c.internal = false }()
	defer c.exists.Reset()
	if err := c.exists.Bind(1, name); err != nil {
		return false, err
	}
	return c.exists.Step()
}

// captureCreateAs replicates CREATE TABLE ... AS SELECT as the CREATE TABLE statement SQLite recorded for the
// new table followed by an insert of every row it holds, so a non-deterministic SELECT yields the same rows
// everywhere. (The pre-update hook does not report the rows CREATE TABLE AS inserts.)
func (c *Capturer) captureCreateAs(name string) error {
	c.internal = true
	defer func() { c.internal = false }()
	if err := c.exists.Bind(1, name); err != nil {
		return err
	}
	row, err := c.exists.Step()
	var create string
	if row {
		create, _ = c.exists.Column(0).(string)
	}
	c.exists.Reset()
	if err != nil {
		return err
	}
	if !row || create == "" {
		return fmt.Errorf("CREATE TABLE AS: table %s not found after creating it", name)
	}
	c.items = append(c.items, DDL(create))
	t, err := c.schema.lookup(name)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("CREATE TABLE AS: table %s not found after creating it", name)
	}
	rowid := t.rowid
	if rowid == "" {
		rowid = "rowid" // a column then: if the table has a row, it is refused below
	}
	sel, _, err := c.conn.Prepare("SELECT " + rowid + ", * FROM main." + quoteIdent(name) + " ORDER BY " + rowid)
	if err != nil {
		return err
	}
	defer sel.Close()
	for {
		row, err := sel.Step()
		if err != nil {
			return err
		}
		if !row {
			return nil
		}
		if err := t.replicable(); err != nil {
			return err
		}
		ch := Change{Table: name, Op: OpInsert, NewRowID: sel.ColumnInt64(0), Row: make([]Value, len(t.stored))}
		for k, i := range t.stored {
			ch.Row[k] = sel.Column(i + 1)
		}
		c.items = append(c.items, RowChange(ch))
	}
}

// bindAll binds the statement's parameters: unnamed ones from the front of *args (consuming them), named ones
// from named.
func bindAll(s *sqlite3.Stmt, args *[]any, named map[string]any) error {
	n := s.ParamCount()
	positional := 0
	for i := 1; i <= n; i++ {
		name := s.ParamName(i)
		if name == "" || name[0] == '?' {
			positional = i
		}
	}
	if positional > len(*args) {
		return fmt.Errorf("statement has %d positional parameters but %d arguments were given", positional, len(*args))
	}
	for i := 1; i <= n; i++ {
		name := s.ParamName(i)
		var v any
		if name == "" || name[0] == '?' {
			v = (*args)[i-1]
		} else {
			var ok bool
			if v, ok = named[name[1:]]; !ok {
				if v, ok = named[name]; !ok {
					return fmt.Errorf("no value given for parameter %s", name)
				}
			}
		}
		bv, err := bindable(v)
		if err != nil {
			return fmt.Errorf("parameter %d: %w", i, err)
		}
		if err := s.Bind(i, bv); err != nil {
			return fmt.Errorf("parameter %d: %w", i, err)
		}
	}
	*args = (*args)[positional:]
	return nil
}

// bindable converts a JSON-ish Go value to one SQLite can bind.
func bindable(v any) (any, error) {
	switch x := v.(type) {
	case nil, int64, float64, string, []byte, bool:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return float64(x), nil
		}
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return float64(x), nil
		}
		return int64(x), nil
	case float32:
		return float64(x), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("invalid number %q", string(x))
		}
		return f, nil
	default:
		return nil, fmt.Errorf("unsupported parameter type %T", v)
	}
}

// reread fills ch.Row with the current content of the row a blob write changed.
func (c *Capturer) reread(t *table, ch *Change) error {
	c.internal = true
	defer func() { c.internal = false }()
	sel, _, err := c.conn.Prepare("SELECT * FROM main." + quoteIdent(t.name) + " WHERE " + t.rowid + " = ?1")
	if err != nil {
		return err
	}
	defer sel.Close()
	if err := sel.Bind(1, ch.OldRowID); err != nil {
		return err
	}
	row, err := sel.Step()
	if err != nil {
		return err
	}
	if !row {
		return fmt.Errorf("blob write to %s rowid %d: row not found", t.name, ch.OldRowID)
	}
	ch.Row = make([]Value, len(t.stored))
	for k, i := range t.stored {
		ch.Row[k] = sel.Column(i)
	}
	return nil
}
