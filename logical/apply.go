package logical

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// ErrDiverged is wrapped by every error that means this replica no longer matches the leader: a change that
// does not apply exactly (no row to update or delete, a constraint failure, an unknown table or a row of the
// wrong width) or a DDL statement that fails. Callers must treat it as fatal and stop; skipping the entry
// would serve wrong data.
var ErrDiverged = errors.New("replica diverged")

// DivergenceError says which item of an entry failed to apply, and why.
type DivergenceError struct {
	Item   int
	Detail string
	Err    error // the SQLite error, if any
}

func (e *DivergenceError) Error() string {
	msg := fmt.Sprintf("%v: item %d: %s", ErrDiverged, e.Item, e.Detail)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *DivergenceError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrDiverged, e.Err}
	}
	return []error{ErrDiverged}
}

// Applier applies entries to a connection. Every node, the leader included, changes its database only
// through an Applier. It runs with triggers, foreign-key enforcement and CHECK constraints off: the leader
// already ran the triggers and foreign-key actions, and their effects are in the entry, and it checked the
// rows; a CHECK that calls random() or reads the clock would not decide the same way twice. An Applier is not
// safe for concurrent use.
type Applier struct {
	conn   *sqlite3.Conn
	schema *schema
	stmts  map[stmtKey]*sqlite3.Stmt
	begin  *sqlite3.Stmt
	commit *sqlite3.Stmt
	abort  *sqlite3.Stmt
	inTx   bool
}

type stmtKey struct {
	table string
	op    Op
	rowid bool // an update that changes the rowid
}

// NewApplier takes over conn, which must be a read-write connection used by nothing else. It turns triggers,
// foreign-key enforcement and CHECK constraints off on it.
func NewApplier(conn *sqlite3.Conn) (*Applier, error) {
	if err := conn.SetTriggers(false); err != nil {
		return nil, fmt.Errorf("disable triggers: %w", err)
	}
	if err := conn.Exec("PRAGMA foreign_keys = OFF; PRAGMA recursive_triggers = OFF; PRAGMA ignore_check_constraints = ON"); err != nil {
		return nil, fmt.Errorf("disable foreign keys: %w", err)
	}
	a := &Applier{conn: conn, stmts: make(map[stmtKey]*sqlite3.Stmt)}
	var err error
	if a.schema, err = newSchema(conn); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		dst **sqlite3.Stmt
		sql string
	}{{&a.begin, "BEGIN IMMEDIATE"}, {&a.commit, "COMMIT"}, {&a.abort, "ROLLBACK"}} {
		if *s.dst, err = prepareOne(conn, s.sql); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

// Close finalizes the cached statements. It does not close the connection.
func (a *Applier) Close() error {
	a.dropStatements()
	for _, s := range []*sqlite3.Stmt{a.begin, a.commit, a.abort} {
		s.Close()
	}
	if a.schema != nil {
		a.schema.close()
	}
	return nil
}

func (a *Applier) dropStatements() {
	for k, s := range a.stmts {
		s.Close()
		delete(a.stmts, k)
	}
}

// Begin opens the transaction that Apply and Exec work in.
func (a *Applier) Begin() error {
	if a.inTx {
		return errors.New("apply: transaction already open")
	}
	if err := step(a.begin); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	a.inTx = true
	changed, err := a.schema.check()
	if err != nil {
		a.Rollback()
		return err
	}
	if changed {
		a.dropStatements()
	}
	return nil
}

// Commit commits the transaction.
func (a *Applier) Commit() error {
	if !a.inTx {
		return errors.New("apply: no transaction open")
	}
	err := step(a.commit)
	if err != nil {
		a.Rollback()
		return fmt.Errorf("commit: %w", err)
	}
	a.inTx = false
	return nil
}

// Rollback abandons the transaction, if one is open.
func (a *Applier) Rollback() error {
	if !a.inTx {
		return nil
	}
	a.inTx = false
	if a.conn.Autocommit() {
		return nil
	}
	return step(a.abort)
}

// Exec runs one statement of rowboat's own bookkeeping inside the transaction, through the statement cache.
func (a *Applier) Exec(sql string, args ...Value) error {
	key := stmtKey{table: sql}
	s := a.stmts[key]
	if s == nil {
		var err error
		if s, err = prepareOne(a.conn, sql); err != nil {
			return err
		}
		a.stmts[key] = s
	}
	for i, v := range args {
		if err := s.Bind(i+1, v); err != nil {
			s.ClearBindings()
			return err
		}
	}
	err := step(s)
	s.ClearBindings()
	return err
}

// Apply applies every item of e, in order, inside the open transaction. An error wrapping ErrDiverged means the
// database no longer matches the leader's; the transaction should be rolled back and the node stopped.
func (a *Applier) Apply(e *Entry) error {
	if !a.inTx {
		return errors.New("apply: no transaction open")
	}
	for i := range e.Items {
		it := &e.Items[i]
		switch it.Kind {
		case KindDDL:
			if err := a.conn.Exec(it.SQL); err != nil {
				return &DivergenceError{Item: i, Detail: fmt.Sprintf("schema statement %q failed", it.SQL), Err: err}
			}
			a.dropStatements()
			a.schema.invalidate()
		case KindChange:
			if err := a.change(&it.Change); err != nil {
				err.Item = i
				return err
			}
		default:
			return &DivergenceError{Item: i, Detail: fmt.Sprintf("unknown item kind %d", it.Kind)}
		}
	}
	return nil
}

func (a *Applier) change(c *Change) *DivergenceError {
	t, err := a.schema.lookup(c.Table)
	if err != nil {
		return &DivergenceError{Detail: fmt.Sprintf("%s %s", c.Op, c.Table), Err: err}
	}
	if t == nil {
		return &DivergenceError{Detail: fmt.Sprintf("%s into unknown table %s", c.Op, c.Table)}
	}
	if err := t.replicable(); err != nil {
		return &DivergenceError{Detail: fmt.Sprintf("%s %s", c.Op, c.Table), Err: err}
	}
	if c.Op != OpDelete && len(c.Row) != len(t.stored) {
		return &DivergenceError{Detail: fmt.Sprintf("%s %s: row has %d values, table has %d stored columns", c.Op, c.Table, len(c.Row), len(t.stored))}
	}
	if t.withoutRowID && c.Op != OpInsert && len(c.Key) != len(t.pk) {
		return &DivergenceError{Detail: fmt.Sprintf("%s %s: key has %d values, primary key has %d columns", c.Op, c.Table, len(c.Key), len(t.pk))}
	}
	key := stmtKey{table: c.Table, op: c.Op, rowid: c.Op == OpUpdate && c.OldRowID != c.NewRowID && !t.withoutRowID}
	if key.rowid && len(t.storedNames)+1 > maxSetColumns {
		// Setting every column and the rowid would be more than an UPDATE may set. With triggers and foreign
		// keys off, deleting the old row and inserting the new one is the same change.
		del, ins := *c, *c
		del.Op, ins.Op = OpDelete, OpInsert
		if e := a.change(&del); e != nil {
			return e
		}
		return a.change(&ins)
	}
	s := a.stmts[key]
	if s == nil {
		if s, err = prepareOne(a.conn, changeSQL(t, key)); err != nil {
			return &DivergenceError{Detail: fmt.Sprintf("%s %s: prepare", c.Op, c.Table), Err: err}
		}
		a.stmts[key] = s
	}
	if err := bindChange(s, t, c, key.rowid); err != nil {
		s.ClearBindings()
		return &DivergenceError{Detail: fmt.Sprintf("%s %s: bind", c.Op, c.Table), Err: err}
	}
	err = step(s)
	s.ClearBindings()
	if err != nil {
		return &DivergenceError{Detail: fmt.Sprintf("%s %s rowid %d key %v", c.Op, c.Table, max(c.OldRowID, c.NewRowID), c.Key), Err: err}
	}
	if n := a.conn.Changes(); n != 1 {
		return &DivergenceError{Detail: fmt.Sprintf("%s %s rowid %d key %v changed %d rows, want 1", c.Op, c.Table, rowidOf(c), c.Key, n)}
	}
	return nil
}

func rowidOf(c *Change) int64 {
	if c.Op == OpInsert {
		return c.NewRowID
	}
	return c.OldRowID
}

// changeSQL builds the statement that applies one kind of change to t. OR ABORT overrides any ON CONFLICT
// clause in the schema, so a conflict is an error (a divergence) rather than a silent REPLACE or IGNORE.
func changeSQL(t *table, k stmtKey) string {
	var b strings.Builder
	name := "main." + quoteIdent(t.name)
	where := func(first int) {
		if !t.withoutRowID {
			fmt.Fprintf(&b, " WHERE %s = ?%d", t.rowid, first)
			return
		}
		b.WriteString(" WHERE ")
		for i, col := range t.pkNames {
			if i > 0 {
				b.WriteString(" AND ")
			}
			fmt.Fprintf(&b, "%s = ?%d", col, first+i)
		}
	}
	switch k.op {
	case OpInsert:
		fmt.Fprintf(&b, "INSERT OR ABORT INTO %s(", name)
		n := 0
		if !t.withoutRowID {
			b.WriteString(t.rowid)
			n++
		}
		for _, col := range t.storedNames {
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString(col)
			n++
		}
		b.WriteString(") VALUES(")
		for i := 1; i <= n; i++ {
			if i > 1 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "?%d", i)
		}
		b.WriteString(")")
	case OpUpdate:
		fmt.Fprintf(&b, "UPDATE OR ABORT %s SET ", name)
		for i, col := range t.storedNames {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s = ?%d", col, i+1)
		}
		next := len(t.storedNames) + 1
		if k.rowid {
			fmt.Fprintf(&b, ", %s = ?%d", t.rowid, next)
			next++
		}
		where(next)
	case OpDelete:
		fmt.Fprintf(&b, "DELETE FROM %s", name)
		where(1)
	}
	return b.String()
}

// bindChange binds c's values in the order changeSQL numbered them.
func bindChange(s *sqlite3.Stmt, t *table, c *Change, rowidChange bool) error {
	i := 1
	bind := func(v Value) error {
		err := s.Bind(i, v)
		i++
		return err
	}
	bindKey := func() error {
		if !t.withoutRowID {
			return bind(c.OldRowID)
		}
		for _, v := range c.Key {
			if err := bind(v); err != nil {
				return err
			}
		}
		return nil
	}
	switch c.Op {
	case OpInsert:
		if !t.withoutRowID {
			if err := bind(c.NewRowID); err != nil {
				return err
			}
		}
		for _, v := range c.Row {
			if err := bind(v); err != nil {
				return err
			}
		}
	case OpUpdate:
		for _, v := range c.Row {
			if err := bind(v); err != nil {
				return err
			}
		}
		if rowidChange {
			if err := bind(c.NewRowID); err != nil {
				return err
			}
		}
		return bindKey()
	case OpDelete:
		return bindKey()
	default:
		return fmt.Errorf("unknown op %d", c.Op)
	}
	return nil
}

// step runs s to completion and resets it.
func step(s *sqlite3.Stmt) error {
	defer s.Reset()
	for {
		row, err := s.Step()
		if err != nil || !row {
			return err
		}
	}
}
