package sqlite3

import (
	"errors"

	"modernc.org/libc"
	lib "modernc.org/sqlite/lib"
)

// Backup copies a database from one connection to another with SQLite's online backup API.
//
// When the source connection holds an open read transaction, every Step reads that transaction's snapshot, so
// in WAL mode a copy taken in several steps is consistent while other connections keep writing.
type Backup struct {
	dst *Conn
	p   uintptr
}

// NewBackup starts copying database srcName ("main") of src into database dstName of dst. The caller must not
// use dst for anything else until Close.
func NewBackup(dst *Conn, dstName string, src *Conn, srcName string) (*Backup, error) {
	zDst, err := libc.CString(dstName)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(dst.tls, zDst)
	zSrc, err := libc.CString(srcName)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(dst.tls, zSrc)
	p := lib.Xsqlite3_backup_init(dst.tls, dst.db, zDst, src.db, zSrc)
	if p == 0 {
		return nil, dst.lastError(lib.Xsqlite3_errcode(dst.tls, dst.db))
	}
	return &Backup{dst: dst, p: p}, nil
}

// Step copies up to pages pages (all of them when pages < 0). done reports that the copy is complete.
func (b *Backup) Step(pages int) (done bool, err error) {
	if b.p == 0 {
		return false, errors.New("sqlite3: backup is closed")
	}
	rc := lib.Xsqlite3_backup_step(b.dst.tls, b.p, int32(pages))
	switch rc {
	case lib.SQLITE_DONE:
		return true, nil
	case lib.SQLITE_OK:
		return false, nil
	default:
		return false, &Error{Code: int(rc) & 0xff, ExtendedCode: int(rc), Msg: b.dst.errstr(rc)}
	}
}

// Remaining and PageCount report progress as of the last Step.
func (b *Backup) Remaining() int { return int(lib.Xsqlite3_backup_remaining(b.dst.tls, b.p)) }

// PageCount is the number of pages in the source database as of the last Step.
func (b *Backup) PageCount() int { return int(lib.Xsqlite3_backup_pagecount(b.dst.tls, b.p)) }

// Close releases the backup. It returns the error of a failed Step, if any.
func (b *Backup) Close() error {
	if b.p == 0 {
		return nil
	}
	rc := lib.Xsqlite3_backup_finish(b.dst.tls, b.p)
	b.p = 0
	if rc != lib.SQLITE_OK {
		return b.dst.lastError(rc)
	}
	return nil
}
