// Package sqlite3 is a thin, allocation-conscious binding to the SQLite C API as transpiled to Go by
// modernc.org/sqlite/lib. It exists because rowboat needs things database/sql and the modernc driver do not
// expose: NUL-safe values in the pre-update hook, the tail of a multi-statement string, sqlite3_stmt_readonly,
// sqlite3_changes64 and sqlite3_get_autocommit after each statement, turning triggers off on the apply
// connection (SQLITE_DBCONFIG_ENABLE_TRIGGER), and the online backup API on connections rowboat owns.
//
// It imports nothing of rowboat's. It calls only the exported C API of modernc.org/sqlite/lib (the same
// functions the C library exports), never the driver's internals, so a driver upgrade cannot silently change
// what it does; the callback trampolines (hooks.go) rely on the ccgo calling convention that
// modernc.org/sqlite itself relies on, and are pinned by this package's tests.
//
// Concurrency: a Conn and its Stmts must be used by one goroutine at a time. Interrupt is the exception: it may
// be called from any goroutine.
package sqlite3

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unsafe"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"
)

// Fundamental datatypes, as reported by Stmt.ColumnType and PreUpdate.
const (
	Integer = lib.SQLITE_INTEGER
	Float   = lib.SQLITE_FLOAT
	Text    = lib.SQLITE_TEXT
	Blob    = lib.SQLITE_BLOB
	Null    = lib.SQLITE_NULL
)

// Result codes callers branch on.
const (
	OK         = lib.SQLITE_OK
	Busy       = lib.SQLITE_BUSY
	Locked     = lib.SQLITE_LOCKED
	Interrupt  = lib.SQLITE_INTERRUPT
	Constraint = lib.SQLITE_CONSTRAINT
	Auth       = lib.SQLITE_AUTH
	Corrupt    = lib.SQLITE_CORRUPT
	NotADB     = lib.SQLITE_NOTADB
	ReadOnly   = lib.SQLITE_READONLY
	Full       = lib.SQLITE_FULL
	IOErr      = lib.SQLITE_IOERR
	NoMem      = lib.SQLITE_NOMEM
	CantOpen   = lib.SQLITE_CANTOPEN
)

// transient tells SQLite to copy bound text and blobs before the bind call returns (SQLITE_TRANSIENT).
const transient = ^uintptr(0)

// Error is an error reported by SQLite. Msg is SQLite's own message (sqlite3_errmsg), which is what users of
// rqlite-compatible APIs expect to see, for example "no such table: t".
type Error struct {
	Code         int // primary result code (Code & 0xff of ExtendedCode)
	ExtendedCode int
	Msg          string
}

func (e *Error) Error() string { return e.Msg }

// IsCode reports whether err is an *Error with the given primary result code.
func IsCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// OpenFlags choose how a database is opened.
type OpenFlags int

// Open flags.
const (
	OpenReadWrite OpenFlags = lib.SQLITE_OPEN_READWRITE
	OpenReadOnly  OpenFlags = lib.SQLITE_OPEN_READONLY
	OpenCreate    OpenFlags = lib.SQLITE_OPEN_CREATE
	OpenURI       OpenFlags = lib.SQLITE_OPEN_URI
	OpenMemory    OpenFlags = lib.SQLITE_OPEN_MEMORY
)

// Conn is one SQLite database connection.
type Conn struct {
	tls *libc.TLS
	db  uintptr

	imu sync.Mutex // guards idb, the handle Interrupt may use from another goroutine
	idb uintptr

	scratch    uintptr // malloc'd buffer used to pass strings into SQLite
	scratchLen int
	ppVal      uintptr // 8 bytes for out-parameters (sqlite3_value**, sqlite3_stmt**, tails)

	preUpdate  func(*PreUpdate)
	authorizer Authorizer
	pu         PreUpdate // reused for every pre-update callback: no allocation per row
	cbPanic    any       // a panic recovered inside a callback, re-raised after the C call returns
}

// Open opens the database at path with the default VFS. flags of 0 mean OpenReadWrite|OpenCreate.
func Open(path string, flags OpenFlags) (*Conn, error) { return OpenVFS(path, flags, "") }

// ProcessExclusive names SQLite's "unix-excl" VFS: the database file is locked exclusively by this process
// (other processes cannot open it), and in WAL mode the connections of this process share the wal-index in
// heap memory instead of locking a shared-memory file with fcntl on every transaction. Measured here it
// halves the cost of a one-row transaction; every connection to one file must use it.
const ProcessExclusive = "unix-excl"

// OpenVFS is Open with a named VFS ("" for the default).
func OpenVFS(path string, flags OpenFlags, vfs string) (*Conn, error) {
	if flags == 0 {
		flags = OpenReadWrite | OpenCreate
	}
	if strings.IndexByte(path, 0) >= 0 {
		// SQLite would silently open the file named by the text before the NUL.
		return nil, fmt.Errorf("open %q: %w", path, &Error{Code: lib.SQLITE_MISUSE, ExtendedCode: lib.SQLITE_MISUSE, Msg: "path contains a NUL byte"})
	}
	c := &Conn{tls: libc.NewTLS()}
	c.ppVal = libc.Xmalloc(c.tls, 8)
	if c.ppVal == 0 {
		c.tls.Close()
		return nil, errors.New("sqlite3: out of memory")
	}
	zPath, err := c.cstring(path)
	if err != nil {
		c.free()
		return nil, err
	}
	*(*uintptr)(cptr(c.ppVal)) = 0
	var zVfs uintptr
	if vfs != "" {
		if zVfs, err = libc.CString(vfs); err != nil {
			c.free()
			return nil, err
		}
		defer libc.Xfree(c.tls, zVfs)
	}
	rc := lib.Xsqlite3_open_v2(c.tls, zPath, c.ppVal, int32(flags)|lib.SQLITE_OPEN_NOMUTEX, zVfs)
	c.db = *(*uintptr)(cptr(c.ppVal))
	if rc != lib.SQLITE_OK {
		var err error = &Error{Code: int(rc) & 0xff, ExtendedCode: int(rc), Msg: c.errstr(rc)}
		if c.db != 0 {
			err = c.lastError(rc)
			lib.Xsqlite3_close_v2(c.tls, c.db)
			c.db = 0
		}
		c.free()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	lib.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	c.idb = c.db
	register(c)
	return c, nil
}

// Close closes the connection, finalizing nothing on the caller's behalf: close every Stmt first.
func (c *Conn) Close() error {
	if c == nil || c.db == 0 {
		return nil
	}
	unregister(c)
	c.imu.Lock()
	c.idb = 0
	c.imu.Unlock()
	lib.Xsqlite3_preupdate_hook(c.tls, c.db, 0, 0)
	lib.Xsqlite3_set_authorizer(c.tls, c.db, 0, 0)
	rc := lib.Xsqlite3_close_v2(c.tls, c.db)
	c.db = 0
	c.free()
	if rc != lib.SQLITE_OK {
		return &Error{Code: int(rc) & 0xff, ExtendedCode: int(rc), Msg: c.errstr(rc)}
	}
	return nil
}

func (c *Conn) free() {
	if c.scratch != 0 {
		libc.Xfree(c.tls, c.scratch)
		c.scratch, c.scratchLen = 0, 0
	}
	if c.ppVal != 0 {
		libc.Xfree(c.tls, c.ppVal)
		c.ppVal = 0
	}
	c.tls.Close()
}

// cstring copies s, NUL-terminated, into the connection's scratch buffer. The pointer is valid until the next
// call that uses the scratch buffer.
func (c *Conn) cstring(s string) (uintptr, error) {
	p, err := c.scratchFor(len(s) + 1)
	if err != nil {
		return 0, err
	}
	if len(s) > 0 {
		copy(unsafe.Slice((*byte)(cptr(p)), len(s)), s)
	}
	*(*byte)(cptr(p + uintptr(len(s)))) = 0
	return p, nil
}

func (c *Conn) scratchFor(n int) (uintptr, error) {
	if n <= c.scratchLen {
		return c.scratch, nil
	}
	size := max(n, 2*c.scratchLen, 256)
	p := libc.Xrealloc(c.tls, c.scratch, libc.Tsize_t(size))
	if p == 0 {
		return 0, errors.New("sqlite3: out of memory")
	}
	c.scratch, c.scratchLen = p, size
	return p, nil
}

func (c *Conn) errstr(rc int32) string {
	return goString(lib.Xsqlite3_errstr(c.tls, rc))
}

// lastError builds an *Error from the connection's most recent failure.
func (c *Conn) lastError(rc int32) error {
	ext := int(lib.Xsqlite3_extended_errcode(c.tls, c.db))
	if ext&0xff != int(rc)&0xff {
		ext = int(rc)
	}
	msg := goString(lib.Xsqlite3_errmsg(c.tls, c.db))
	if msg == "" || msg == "not an error" {
		msg = c.errstr(rc)
	}
	return &Error{Code: int(rc) & 0xff, ExtendedCode: ext, Msg: msg}
}

// Exec runs every statement in sql, discarding rows. It takes no parameters; it is for rowboat's own SQL.
func (c *Conn) Exec(sql string) error {
	for sql != "" {
		s, tail, err := c.Prepare(sql)
		if err != nil {
			return err
		}
		sql = tail
		if s == nil {
			continue
		}
		if err := runToEnd(s); err != nil {
			return err
		}
	}
	return nil
}

// runToEnd steps s until it is done and finalizes it, also when a callback's panic is re-raised by Step.
func runToEnd(s *Stmt) error {
	defer s.Close()
	for {
		row, err := s.Step()
		if err != nil || !row {
			return err
		}
	}
}

// Prepare compiles the first statement in sql and returns it with the text that follows it. A nil Stmt with
// a nil error means sql held only whitespace or comments up to tail.
func (c *Conn) Prepare(sql string) (*Stmt, string, error) {
	return c.prepare(sql, 0)
}

// PreparePersistent is Prepare with SQLITE_PREPARE_PERSISTENT, for statements kept in a cache.
func (c *Conn) PreparePersistent(sql string) (*Stmt, string, error) {
	return c.prepare(sql, lib.SQLITE_PREPARE_PERSISTENT)
}

func (c *Conn) prepare(sql string, flags uint32) (*Stmt, string, error) {
	if len(sql) > math.MaxInt32-1 {
		return nil, "", &Error{Code: lib.SQLITE_TOOBIG, ExtendedCode: lib.SQLITE_TOOBIG, Msg: "string or blob too big"}
	}
	if strings.IndexByte(sql, 0) >= 0 {
		return nil, "", &Error{Code: lib.SQLITE_MISUSE, ExtendedCode: lib.SQLITE_MISUSE, Msg: "SQL text contains a NUL byte"}
	}
	zSQL, err := c.cstring(sql)
	if err != nil {
		return nil, "", err
	}
	pp := libc.Xmalloc(c.tls, 16)
	if pp == 0 {
		return nil, "", errors.New("sqlite3: out of memory")
	}
	defer libc.Xfree(c.tls, pp)
	*(*uintptr)(cptr(pp)) = 0
	*(*uintptr)(cptr(pp + 8)) = 0
	rc := lib.Xsqlite3_prepare_v3(c.tls, c.db, zSQL, int32(len(sql)+1), flags, pp, pp+8)
	if p := c.takePanic(); p != nil {
		panic(p)
	}
	pStmt := *(*uintptr)(cptr(pp))
	tailPtr := *(*uintptr)(cptr(pp + 8))
	tail := ""
	if tailPtr != 0 {
		if off := int(tailPtr - zSQL); off >= 0 && off < len(sql) {
			tail = sql[off:]
		}
	}
	if rc != lib.SQLITE_OK {
		if pStmt != 0 {
			lib.Xsqlite3_finalize(c.tls, pStmt)
		}
		return nil, tail, c.lastError(rc)
	}
	if pStmt == 0 {
		return nil, tail, nil
	}
	return &Stmt{c: c, p: pStmt}, tail, nil
}

// Changes is sqlite3_changes64: rows changed by the most recent INSERT, UPDATE or DELETE.
func (c *Conn) Changes() int64 { return int64(lib.Xsqlite3_changes64(c.tls, c.db)) }

// TotalChanges is sqlite3_total_changes64.
func (c *Conn) TotalChanges() int64 { return int64(lib.Xsqlite3_total_changes64(c.tls, c.db)) }

// DeferredForeignKeyViolations reports whether the open transaction has deferred foreign-key violations that
// COMMIT would refuse (sqlite3_db_status with SQLITE_DBSTATUS_DEFERRED_FKS). Rolling back to a savepoint
// restores the count as it was there.
func (c *Conn) DeferredForeignKeyViolations() (bool, error) {
	p, err := c.scratchFor(8)
	if err != nil {
		return false, err
	}
	*(*int32)(cptr(p)) = 0
	*(*int32)(cptr(p + 4)) = 0
	if rc := lib.Xsqlite3_db_status(c.tls, c.db, lib.SQLITE_DBSTATUS_DEFERRED_FKS, p, p+4, 0); rc != lib.SQLITE_OK {
		return false, c.lastError(rc)
	}
	return *(*int32)(cptr(p)) > 0, nil
}

// LastInsertRowID is sqlite3_last_insert_rowid.
func (c *Conn) LastInsertRowID() int64 { return int64(lib.Xsqlite3_last_insert_rowid(c.tls, c.db)) }

// Autocommit reports whether the connection is outside an explicit transaction (sqlite3_get_autocommit).
func (c *Conn) Autocommit() bool { return lib.Xsqlite3_get_autocommit(c.tls, c.db) != 0 }

// Interrupt makes the statement running on c (if any) stop with SQLITE_INTERRUPT. Safe from any goroutine.
func (c *Conn) Interrupt() {
	c.imu.Lock()
	defer c.imu.Unlock()
	if c.idb != 0 {
		lib.Xsqlite3_interrupt(nil, c.idb)
	}
}

// SetBusyTimeout sets how long a statement waits for a lock held by another connection.
func (c *Conn) SetBusyTimeout(ms int) {
	lib.Xsqlite3_busy_timeout(c.tls, c.db, int32(ms))
}

// SetMaxLength sets the largest string or BLOB, in bytes, the connection creates or reads
// (SQLITE_LIMIT_LENGTH): a larger one fails with "string or blob too big" before it is materialized. It
// returns the previous limit.
func (c *Conn) SetMaxLength(n int) int {
	return int(lib.Xsqlite3_limit(c.tls, c.db, 0 /* SQLITE_LIMIT_LENGTH */, int32(min(n, math.MaxInt32))))
}

// SetTriggers turns the firing of triggers on or off (SQLITE_DBCONFIG_ENABLE_TRIGGER). Creating and dropping
// triggers is unaffected.
func (c *Conn) SetTriggers(on bool) error {
	return c.dbConfigBool(lib.SQLITE_DBCONFIG_ENABLE_TRIGGER, on)
}

// SetDefensive turns SQLITE_DBCONFIG_DEFENSIVE on or off.
func (c *Conn) SetDefensive(on bool) error {
	return c.dbConfigBool(lib.SQLITE_DBCONFIG_DEFENSIVE, on)
}

// dbConfigBool calls sqlite3_db_config(db, op, int onoff, int *pResult) and verifies the setting took.
func (c *Conn) dbConfigBool(op int32, on bool) error {
	v := int32(0)
	if on {
		v = 1
	}
	// The varargs are an int and an int*; ccgo passes every vararg in an 8-byte slot.
	va := libc.Xmalloc(c.tls, 16+8)
	if va == 0 {
		return errors.New("sqlite3: out of memory")
	}
	defer libc.Xfree(c.tls, va)
	res := va + 16
	*(*int32)(cptr(res)) = -1
	libc.VaList(va, v, res)
	if rc := lib.Xsqlite3_db_config(c.tls, c.db, op, va); rc != lib.SQLITE_OK {
		return c.lastError(rc)
	}
	if got := *(*int32)(cptr(res)); got != v {
		return fmt.Errorf("sqlite3: db_config(%d, %d) left the setting at %d", op, v, got)
	}
	return nil
}

// Stmt is a prepared statement.
type Stmt struct {
	c *Conn
	p uintptr
}

// Close finalizes the statement.
func (s *Stmt) Close() error {
	if s == nil || s.p == 0 {
		return nil
	}
	lib.Xsqlite3_finalize(s.c.tls, s.p)
	s.p = 0
	return nil
}

// SQL is the text of the statement (sqlite3_sql).
func (s *Stmt) SQL() string { return goString(lib.Xsqlite3_sql(s.c.tls, s.p)) }

// ReadOnly reports whether the statement makes no direct change to the database file (sqlite3_stmt_readonly).
func (s *Stmt) ReadOnly() bool { return lib.Xsqlite3_stmt_readonly(s.c.tls, s.p) != 0 }

// ParamCount is the largest parameter index (sqlite3_bind_parameter_count).
func (s *Stmt) ParamCount() int { return int(lib.Xsqlite3_bind_parameter_count(s.c.tls, s.p)) }

// ParamName is the name of parameter i (1-based), with its prefix (":a", "@a", "$a", "?3"), or "" for a
// plain "?".
func (s *Stmt) ParamName(i int) string {
	return goString(lib.Xsqlite3_bind_parameter_name(s.c.tls, s.p, int32(i)))
}

// Bind binds v to parameter i (1-based). v must be nil, int64, int, float64, bool, string or []byte. A nil
// []byte binds NULL; a non-nil empty []byte binds an empty BLOB; strings may contain NUL bytes.
func (s *Stmt) Bind(i int, v any) error {
	tls, p, idx := s.c.tls, s.p, int32(i)
	var rc int32
	switch x := v.(type) {
	case nil:
		rc = lib.Xsqlite3_bind_null(tls, p, idx)
	case int64:
		rc = lib.Xsqlite3_bind_int64(tls, p, idx, x)
	case int:
		rc = lib.Xsqlite3_bind_int64(tls, p, idx, int64(x))
	case bool:
		b := int64(0)
		if x {
			b = 1
		}
		rc = lib.Xsqlite3_bind_int64(tls, p, idx, b)
	case float64:
		rc = lib.Xsqlite3_bind_double(tls, p, idx, x)
	case string:
		if len(x) > math.MaxInt32 {
			return &Error{Code: lib.SQLITE_TOOBIG, ExtendedCode: lib.SQLITE_TOOBIG, Msg: "string or blob too big"}
		}
		buf, err := s.c.scratchFor(len(x) + 1)
		if err != nil {
			return err
		}
		if len(x) > 0 {
			copy(unsafe.Slice((*byte)(cptr(buf)), len(x)), x)
		}
		rc = lib.Xsqlite3_bind_text(tls, p, idx, buf, int32(len(x)), transient)
	case []byte:
		switch {
		case x == nil:
			rc = lib.Xsqlite3_bind_null(tls, p, idx)
		case len(x) == 0:
			rc = lib.Xsqlite3_bind_zeroblob(tls, p, idx, 0)
		default:
			if len(x) > math.MaxInt32 {
				return &Error{Code: lib.SQLITE_TOOBIG, ExtendedCode: lib.SQLITE_TOOBIG, Msg: "string or blob too big"}
			}
			buf, err := s.c.scratchFor(len(x))
			if err != nil {
				return err
			}
			copy(unsafe.Slice((*byte)(cptr(buf)), len(x)), x)
			rc = lib.Xsqlite3_bind_blob(tls, p, idx, buf, int32(len(x)), transient)
		}
	default:
		return fmt.Errorf("sqlite3: cannot bind a value of type %T", v)
	}
	if rc != lib.SQLITE_OK {
		return s.c.lastError(rc)
	}
	return nil
}

// Step advances the statement: row is true when a result row is available.
func (s *Stmt) Step() (row bool, err error) {
	rc := lib.Xsqlite3_step(s.c.tls, s.p)
	if p := s.c.takePanic(); p != nil {
		panic(p)
	}
	switch rc {
	case lib.SQLITE_ROW:
		return true, nil
	case lib.SQLITE_DONE:
		return false, nil
	default:
		return false, s.c.lastError(rc)
	}
}

// Reset makes the statement ready to run again, keeping its bindings.
func (s *Stmt) Reset() error {
	if rc := lib.Xsqlite3_reset(s.c.tls, s.p); rc != lib.SQLITE_OK {
		return s.c.lastError(rc)
	}
	return nil
}

// ClearBindings sets every parameter to NULL.
func (s *Stmt) ClearBindings() { lib.Xsqlite3_clear_bindings(s.c.tls, s.p) }

// ColumnCount is the number of result columns.
func (s *Stmt) ColumnCount() int { return int(lib.Xsqlite3_column_count(s.c.tls, s.p)) }

// ColumnName is the name of result column i (0-based).
func (s *Stmt) ColumnName(i int) string {
	return goString(lib.Xsqlite3_column_name(s.c.tls, s.p, int32(i)))
}

// ColumnDeclType is the declared type of result column i, or "" for an expression.
func (s *Stmt) ColumnDeclType(i int) string {
	return goString(lib.Xsqlite3_column_decltype(s.c.tls, s.p, int32(i)))
}

// ColumnType is the datatype of column i of the current row.
func (s *Stmt) ColumnType(i int) int { return int(lib.Xsqlite3_column_type(s.c.tls, s.p, int32(i))) }

// ColumnBytes is the size in bytes of column i of the current row, a TEXT or BLOB, without copying it (a
// zeroblob is not expanded). Call it only for those types: for a number it would convert the value to text.
func (s *Stmt) ColumnBytes(i int) int { return int(lib.Xsqlite3_column_bytes(s.c.tls, s.p, int32(i))) }

// ColumnInt64 is column i of the current row as an integer.
func (s *Stmt) ColumnInt64(i int) int64 { return lib.Xsqlite3_column_int64(s.c.tls, s.p, int32(i)) }

// Column returns column i of the current row as nil, int64, float64, string or []byte (never nil for a
// BLOB, even an empty one). TEXT is returned in full, NUL bytes included.
func (s *Stmt) Column(i int) any {
	tls, p, idx := s.c.tls, s.p, int32(i)
	switch lib.Xsqlite3_column_type(tls, p, idx) {
	case lib.SQLITE_INTEGER:
		return lib.Xsqlite3_column_int64(tls, p, idx)
	case lib.SQLITE_FLOAT:
		return lib.Xsqlite3_column_double(tls, p, idx)
	case lib.SQLITE_TEXT:
		ptr := lib.Xsqlite3_column_text(tls, p, idx)
		n := lib.Xsqlite3_column_bytes(tls, p, idx)
		return goStringN(ptr, int(n))
	case lib.SQLITE_BLOB:
		ptr := lib.Xsqlite3_column_blob(tls, p, idx)
		n := lib.Xsqlite3_column_bytes(tls, p, idx)
		return goBytes(ptr, int(n))
	default:
		return nil
	}
}

// valueOf converts a protected sqlite3_value* into a Go value, like Stmt.Column.
func valueOf(tls *libc.TLS, v uintptr) any {
	if v == 0 {
		return nil
	}
	switch lib.Xsqlite3_value_type(tls, v) {
	case lib.SQLITE_INTEGER:
		return lib.Xsqlite3_value_int64(tls, v)
	case lib.SQLITE_FLOAT:
		return lib.Xsqlite3_value_double(tls, v)
	case lib.SQLITE_TEXT:
		ptr := lib.Xsqlite3_value_text(tls, v)
		n := lib.Xsqlite3_value_bytes(tls, v)
		return goStringN(ptr, int(n))
	case lib.SQLITE_BLOB:
		ptr := lib.Xsqlite3_value_blob(tls, v)
		n := lib.Xsqlite3_value_bytes(tls, v)
		return goBytes(ptr, int(n))
	default:
		return nil
	}
}

func goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	return libc.GoString(p)
}

func goStringN(p uintptr, n int) string {
	if p == 0 || n <= 0 {
		return ""
	}
	return string(unsafe.Slice((*byte)(cptr(p)), n))
}

func goBytes(p uintptr, n int) []byte {
	b := make([]byte, max(n, 0))
	if p != 0 && n > 0 {
		copy(b, unsafe.Slice((*byte)(cptr(p)), n))
	}
	return b
}

// cptr turns an address in C memory (allocated by libc or SQLite, never moved by the Go garbage collector)
// into a pointer.
func cptr(p uintptr) unsafe.Pointer { return unsafe.Add(nil, p) }

// Complete reports whether sql ends with a complete SQL statement (sqlite3_complete): a semicolon outside
// quotes, comments and trigger bodies.
func Complete(sql string) bool {
	completeMu.Lock()
	defer completeMu.Unlock()
	if completeTLS == nil {
		completeTLS = libc.NewTLS()
	}
	z, err := libc.CString(sql)
	if err != nil {
		return false
	}
	defer libc.Xfree(completeTLS, z)
	return lib.Xsqlite3_complete(completeTLS, z) != 0
}

var (
	completeMu  sync.Mutex
	completeTLS *libc.TLS
)
