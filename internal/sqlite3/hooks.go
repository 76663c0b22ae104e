package sqlite3

import (
	"sync"
	"unsafe"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"
)

// Pre-update operations (PreUpdate.Op).
const (
	OpInsert = lib.SQLITE_INSERT
	OpUpdate = lib.SQLITE_UPDATE
	OpDelete = lib.SQLITE_DELETE
)

// PreUpdate describes one row about to change, as reported by sqlite3_preupdate_hook. It is valid only during
// the callback it is passed to.
type PreUpdate struct {
	c        *Conn
	Op       int    // OpInsert, OpUpdate or OpDelete
	Database string // "main", "temp", or an attached schema
	Table    string
	OldRowID int64 // the rowid before the change (UPDATE, DELETE); meaningless for WITHOUT ROWID tables
	NewRowID int64 // the rowid after the change (INSERT, UPDATE); meaningless for WITHOUT ROWID tables
}

// Depth is 0 for a change made directly by the statement, 1 for one made by a trigger it fired, and so on.
func (p *PreUpdate) Depth() int { return int(lib.Xsqlite3_preupdate_depth(p.c.tls, p.c.db)) }

// Count is the number of columns in the row.
func (p *PreUpdate) Count() int { return int(lib.Xsqlite3_preupdate_count(p.c.tls, p.c.db)) }

// Old is column i of the row before the change (UPDATE, DELETE), NUL bytes and empty BLOBs preserved.
func (p *PreUpdate) Old(i int) any {
	c := p.c
	*(*uintptr)(cptr(c.ppVal)) = 0
	if lib.Xsqlite3_preupdate_old(c.tls, c.db, int32(i), c.ppVal) != lib.SQLITE_OK {
		return nil
	}
	return valueOf(c.tls, *(*uintptr)(cptr(c.ppVal)))
}

// New is column i of the row after the change (INSERT, UPDATE), NUL bytes and empty BLOBs preserved.
func (p *PreUpdate) New(i int) any {
	c := p.c
	*(*uintptr)(cptr(c.ppVal)) = 0
	if lib.Xsqlite3_preupdate_new(c.tls, c.db, int32(i), c.ppVal) != lib.SQLITE_OK {
		return nil
	}
	return valueOf(c.tls, *(*uintptr)(cptr(c.ppVal)))
}

// SetPreUpdateHook installs fn as the connection's pre-update hook (nil removes it). fn must not use the
// connection and must not retain p.
func (c *Conn) SetPreUpdateHook(fn func(p *PreUpdate)) {
	c.preUpdate = fn
	if fn == nil {
		lib.Xsqlite3_preupdate_hook(c.tls, c.db, 0, 0)
		return
	}
	lib.Xsqlite3_preupdate_hook(c.tls, c.db, cFuncPointer(preUpdateTrampoline), c.db)
}

// Authorizer decides whether SQLite may compile an operation; see sqlite3_set_authorizer. Arguments SQLite
// passes as NULL arrive as "". The value of a PRAGMA set to an empty string (PRAGMA x = "") arrives as
// EmptyPragmaValue instead, so that it is not taken for a read of the setting. It must not use the connection.
type Authorizer func(action int, arg1, arg2, database, trigger string) int

// EmptyPragmaValue is the Authorizer's arg2 for ActionPragma when the statement sets the pragma to an empty
// string.
const EmptyPragmaValue = "''"

// Authorizer actions and results.
const (
	AuthOK     = lib.SQLITE_OK
	AuthDeny   = lib.SQLITE_DENY
	AuthIgnore = lib.SQLITE_IGNORE

	ActionCreateIndex       = lib.SQLITE_CREATE_INDEX
	ActionCreateTable       = lib.SQLITE_CREATE_TABLE
	ActionCreateTempIndex   = lib.SQLITE_CREATE_TEMP_INDEX
	ActionCreateTempTable   = lib.SQLITE_CREATE_TEMP_TABLE
	ActionCreateTempTrigger = lib.SQLITE_CREATE_TEMP_TRIGGER
	ActionCreateTempView    = lib.SQLITE_CREATE_TEMP_VIEW
	ActionCreateTrigger     = lib.SQLITE_CREATE_TRIGGER
	ActionCreateView        = lib.SQLITE_CREATE_VIEW
	ActionDelete            = lib.SQLITE_DELETE
	ActionDropIndex         = lib.SQLITE_DROP_INDEX
	ActionDropTable         = lib.SQLITE_DROP_TABLE
	ActionDropTempIndex     = lib.SQLITE_DROP_TEMP_INDEX
	ActionDropTempTable     = lib.SQLITE_DROP_TEMP_TABLE
	ActionDropTempTrigger   = lib.SQLITE_DROP_TEMP_TRIGGER
	ActionDropTempView      = lib.SQLITE_DROP_TEMP_VIEW
	ActionDropTrigger       = lib.SQLITE_DROP_TRIGGER
	ActionDropView          = lib.SQLITE_DROP_VIEW
	ActionInsert            = lib.SQLITE_INSERT
	ActionPragma            = lib.SQLITE_PRAGMA
	ActionRead              = lib.SQLITE_READ
	ActionSelect            = lib.SQLITE_SELECT
	ActionTransaction       = lib.SQLITE_TRANSACTION
	ActionUpdate            = lib.SQLITE_UPDATE
	ActionAttach            = lib.SQLITE_ATTACH
	ActionDetach            = lib.SQLITE_DETACH
	ActionAlterTable        = lib.SQLITE_ALTER_TABLE
	ActionReindex           = lib.SQLITE_REINDEX
	ActionAnalyze           = lib.SQLITE_ANALYZE
	ActionCreateVTable      = lib.SQLITE_CREATE_VTABLE
	ActionDropVTable        = lib.SQLITE_DROP_VTABLE
	ActionFunction          = lib.SQLITE_FUNCTION
	ActionSavepoint         = lib.SQLITE_SAVEPOINT
	ActionRecursive         = lib.SQLITE_RECURSIVE
)

// SetAuthorizer installs fn as the connection's authorizer (nil removes it).
func (c *Conn) SetAuthorizer(fn Authorizer) {
	c.authorizer = fn
	if fn == nil {
		lib.Xsqlite3_set_authorizer(c.tls, c.db, 0, 0)
		return
	}
	lib.Xsqlite3_set_authorizer(c.tls, c.db, cFuncPointer(authorizerTrampoline), c.db)
}

// registry maps a connection's sqlite3* (passed to SQLite as the callbacks' user pointer) to its Conn.
var registry = struct {
	sync.RWMutex
	m map[uintptr]*Conn
}{m: make(map[uintptr]*Conn)}

func register(c *Conn) {
	registry.Lock()
	registry.m[c.db] = c
	registry.Unlock()
}

func unregister(c *Conn) {
	registry.Lock()
	delete(registry.m, c.db)
	registry.Unlock()
}

func lookup(db uintptr) *Conn {
	registry.RLock()
	c := registry.m[db]
	registry.RUnlock()
	return c
}

// takePanic returns (and clears) a panic recovered in a callback during the last C call.
func (c *Conn) takePanic() any {
	p := c.cbPanic
	c.cbPanic = nil
	return p
}

func preUpdateTrampoline(tls *libc.TLS, pArg, db uintptr, op int32, zDb, zName uintptr, iKey1, iKey2 int64) {
	c := lookup(pArg)
	if c == nil || c.preUpdate == nil || c.cbPanic != nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.cbPanic = r
		}
	}()
	p := &c.pu
	p.c = c
	p.Op = int(op)
	p.Database = internString(p.Database, zDb)
	p.Table = internString(p.Table, zName)
	p.OldRowID, p.NewRowID = iKey1, iKey2
	c.preUpdate(p)
}

func authorizerTrampoline(tls *libc.TLS, pArg uintptr, action int32, z1, z2, z3, z4 uintptr) int32 {
	c := lookup(pArg)
	if c == nil || c.authorizer == nil {
		return lib.SQLITE_DENY
	}
	if c.cbPanic != nil {
		return lib.SQLITE_DENY
	}
	rc := int32(lib.SQLITE_DENY)
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.cbPanic = r
			}
		}()
		arg2 := goString(z2)
		if action == lib.SQLITE_PRAGMA && z2 != 0 && arg2 == "" {
			arg2 = EmptyPragmaValue
		}
		rc = int32(c.authorizer(int(action), goString(z1), arg2, goString(z3), goString(z4)))
	}()
	return rc
}

// internString returns prev when the NUL-terminated C string at p spells it, and a new string otherwise, so
// that the common case (the same table again) does not allocate.
func internString(prev string, p uintptr) string {
	if p == 0 {
		return ""
	}
	n := int(libc.Xstrlen(nil, p))
	b := unsafe.Slice((*byte)(cptr(p)), n)
	if string(b) == prev {
		return prev
	}
	return string(b)
}

// cFuncPointer converts a top-level Go function into the pointer ccgo-generated code calls through, the same
// way modernc.org/sqlite registers its own callbacks (see https://golang.org/s/go11func). Never use it on a
// closure.
func cFuncPointer[T any](f T) uintptr {
	return *(*uintptr)(unsafe.Pointer(&struct{ f T }{f}))
}

// BlobWrite is the column an incremental-blob write is changing, or -1 when the change is not a blob write.
// SQLite reports a blob write as a DELETE of the row, before the bytes change.
func (p *PreUpdate) BlobWrite() int { return int(lib.Xsqlite3_preupdate_blobwrite(p.c.tls, p.c.db)) }
