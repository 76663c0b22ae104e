package logical

import (
	"fmt"
	"strings"
)

// Value is one SQLite value: nil (NULL), int64 (INTEGER), float64 (REAL), string (TEXT, which may contain NUL
// bytes) or []byte (BLOB; never nil, an empty BLOB is []byte{}).
type Value = any

// Op is the kind of a row change.
type Op uint8

// Row change operations.
const (
	OpInsert Op = iota + 1
	OpUpdate
	OpDelete
)

func (op Op) String() string {
	switch op {
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	default:
		return fmt.Sprintf("op(%d)", uint8(op))
	}
}

// Change is one row inserted, updated or deleted in a table of the main database.
type Change struct {
	Table string
	Op    Op
	// OldRowID identifies the row an update or delete changes, and NewRowID the rowid an insert or update
	// leaves it with. Both are 0 for WITHOUT ROWID tables, whose rows are identified by Key instead.
	OldRowID int64
	NewRowID int64
	// Row is the full new row of an insert or update: every stored column in table order, generated columns
	// left out (every node computes those itself).
	Row []Value
	// Key is the primary key, in key order, of the row a WITHOUT ROWID update or delete changes, as it was
	// before the change. It is nil for rowid tables.
	Key []Value
}

// Kind says what an Item carries.
type Kind uint8

// Item kinds.
const (
	KindChange Kind = iota + 1 // a row change, applied by rowid or primary key
	KindDDL                    // a schema statement, executed as SQL text on every node
)

// Item is one step of an Entry: a schema statement or a row change.
type Item struct {
	Kind   Kind
	SQL    string // KindDDL
	Change Change // KindChange
}

// DDL returns an Item that executes sql.
func DDL(sql string) Item { return Item{Kind: KindDDL, SQL: sql} }

// RowChange returns an Item carrying ch.
func RowChange(ch Change) Item { return Item{Kind: KindChange, Change: ch} }

// Entry is the unit rowboat replicates: everything one batch of requests did to the database, as an ordered
// list of items. Applying the items in order, with triggers and foreign-key actions off, turns a database
// that was identical to the leader's before the batch into one identical to it after.
type Entry struct {
	Items []Item
}

// Empty reports whether the entry changes nothing.
func (e *Entry) Empty() bool { return e == nil || len(e.Items) == 0 }

// String renders the entry for logs and test failures.
func (e *Entry) String() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	for i, it := range e.Items {
		if i > 0 {
			b.WriteString("; ")
		}
		switch it.Kind {
		case KindDDL:
			fmt.Fprintf(&b, "ddl %q", it.SQL)
		case KindChange:
			c := it.Change
			fmt.Fprintf(&b, "%s %s old=%d new=%d row=%v key=%v", c.Op, c.Table, c.OldRowID, c.NewRowID, c.Row, c.Key)
		default:
			fmt.Fprintf(&b, "kind(%d)", it.Kind)
		}
	}
	return b.String()
}
