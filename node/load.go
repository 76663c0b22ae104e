package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/rowboatdb/rowboat/fsm"
	"github.com/rowboatdb/rowboat/logical"
)

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// skipOnLoad matches statements of a dump that rowboat manages itself: the transaction around the load and
// foreign-key enforcement.
var skipOnLoad = regexp.MustCompile(`(?is)^\s*(BEGIN(\s+(DEFERRED|IMMEDIATE|EXCLUSIVE))?(\s+TRANSACTION)?|COMMIT(\s+TRANSACTION)?|END(\s+TRANSACTION)?|ROLLBACK(\s+TRANSACTION)?|PRAGMA\s+foreign_keys\s*=\s*\w+)\s*;?\s*$`)

// LoadResult is the outcome of a load.
type LoadResult struct {
	Statements int              // the statements run, after those the load manages itself were left out
	Results    []logical.Result // SQL text's own statements' results (none for a database file)
	Index      uint64           // the entry that holds the load
	Term       uint64           // the term of the entry at Index
}

// Load loads data, a SQLite database file or SQL text, as one write, all or nothing: a statement that fails
// (or a file SQLite cannot read) returns an error wrapping ErrBadRequest and changes nothing. Leader only.
//
// A database file replaces the whole database: every existing table, view and trigger is dropped and the
// file's content created, in one transaction replicated like any other write. SQL text runs against the
// database as it is, as rqlite runs it, in one transaction; with replace it too replaces the database (a dump
// loaded over the database it came from). The transaction statements and foreign-key pragmas of a dump are
// left out: the load is its own transaction.
func (n *Node) Load(ctx context.Context, data []byte, replace bool) (LoadResult, error) {
	if !n.IsLeader() {
		return LoadResult{}, n.notLeaderErr()
	}
	text := string(data)
	file := bytes.HasPrefix(data, sqliteHeader)
	if file {
		var err error
		if text, err = n.dumpUpload(data); err != nil {
			return LoadResult{}, err
		}
		replace = true
	}
	var stmts []logical.Statement
	for _, s := range fsm.SplitSQL(text) {
		if !skipOnLoad.MatchString(s) {
			stmts = append(stmts, logical.Statement{SQL: s})
		}
	}
	if len(stmts) == 0 && !file { // an empty database file is a valid load: it empties the database
		return LoadResult{}, fmt.Errorf("%w: nothing to load: the body holds no SQL statement and is not a SQLite database", ErrBadRequest)
	}
	if !replace {
		res, err := n.execute(ctx, logical.Request{Statements: stmts, Transaction: true})
		if err != nil {
			return LoadResult{}, err
		}
		if err := loadFailed(res.Results, stmts, 0); err != nil {
			return LoadResult{}, err
		}
		n.log.Info("SQL loaded", "statements", len(stmts), "index", res.Index)
		return LoadResult{Statements: len(stmts), Results: res.Results, Index: res.Index, Term: res.Term}, nil
	}
	// No other write may run between reading the schema to drop and the load's own write: a table created
	// meanwhile would survive the load.
	if err := n.exclusive.Lock(ctx); err != nil {
		return LoadResult{}, fmt.Errorf("%w: writes under way did not finish in time; nothing was loaded", ErrTimeout)
	}
	defer n.exclusive.Unlock()
	drops, err := n.fsm.DropAllSQL(ctx)
	if err != nil {
		return LoadResult{}, err
	}
	req := logical.Request{Transaction: true}
	for _, d := range drops {
		req.Statements = append(req.Statements, logical.Statement{SQL: d})
	}
	req.Statements = append(req.Statements, stmts...)
	res, err := n.execute(ctx, req)
	if err != nil {
		return LoadResult{}, err
	}
	if err := loadFailed(res.Results, req.Statements, len(drops)); err != nil {
		return LoadResult{}, err
	}
	n.log.Info("database replaced by a load", "statements", len(stmts), "index", res.Index)
	var results []logical.Result
	if !file {
		results = res.Results[len(drops):]
	}
	return LoadResult{Statements: len(stmts), Results: results, Index: res.Index, Term: res.Term}, nil
}

// loadFailed returns the error of a load whose transaction a statement failed (and rolled back), numbering
// the statements after the first skip, which the load added itself.
func loadFailed(results []logical.Result, stmts []logical.Statement, skip int) error {
	for i, r := range results {
		if r.Error != "" {
			sql := stmts[i].SQL
			if len(sql) > 120 {
				sql = sql[:120] + "..."
			}
			return fmt.Errorf("%w: load refused, nothing was changed: statement %d (%s): %s", ErrBadRequest, i+1-skip, sql, r.Error)
		}
	}
	return nil
}

// dumpUpload turns an uploaded SQLite file into SQL text. A file in WAL mode is refused: its newest content
// may be in its -wal file, which an upload does not carry, and loading the rest would silently replace the
// database with an older (or empty) one.
func (n *Node) dumpUpload(data []byte) (string, error) {
	// The file format's read and write version bytes are 2 in WAL mode.
	if len(data) >= 20 && (data[18] == 2 || data[19] == 2) {
		return "", fmt.Errorf("%w: the uploaded SQLite file is in WAL mode, so part of its content may be in its -wal file, "+
			"which was not sent; convert it first (sqlite3 FILE 'PRAGMA journal_mode=DELETE') and load that", ErrBadRequest)
	}
	f, err := os.CreateTemp(filepath.Join(n.cfg.DataDir), "upload-*.sqlite")
	if err != nil {
		return "", err
	}
	defer func() {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			os.Remove(f.Name() + suffix)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	var sb strings.Builder
	if err := fsm.DumpFile(f.Name(), &sb); err != nil {
		return "", fmt.Errorf("%w: the uploaded file is not a readable SQLite database: %v", ErrBadRequest, err)
	}
	return sb.String(), nil
}

// DumpSQL writes the database as SQL text.
func (n *Node) DumpSQL(w interface{ Write([]byte) (int, error) }) (Position, error) {
	return n.fsm.DumpSQL(w)
}
