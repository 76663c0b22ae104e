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
	Statements int    `json:"statements"`
	Index      uint64 `json:"raft_index"`
	Term       uint64 `json:"-"` // the term of the entry at Index
}

// Load replaces the whole database with data, a SQLite database file or SQL text (a dump), as one write:
// every existing table, view and trigger is dropped and the content created, in one transaction replicated
// like any other write. It is all or nothing: a statement that fails (or a file SQLite cannot read) returns an
// error wrapping ErrBadRequest and changes nothing. Leader only.
func (n *Node) Load(ctx context.Context, data []byte) (LoadResult, error) {
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
	for i, r := range res.Results {
		if r.Error != "" {
			sql := req.Statements[i].SQL
			if len(sql) > 120 {
				sql = sql[:120] + "..."
			}
			return LoadResult{}, fmt.Errorf("%w: load refused, nothing was changed: statement %d (%s): %s", ErrBadRequest, i+1-len(drops), sql, r.Error)
		}
	}
	n.log.Info("database loaded", "statements", len(stmts), "index", res.Index)
	return LoadResult{Statements: len(stmts), Index: res.Index, Term: res.Term}, nil
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
