// Package logical is rowboat's row-based replication log: the entry format and its versioned binary codec,
// capture of row changes on the leader, and apply on every node.
//
// rowboat replicates what SQL did, not the SQL text. The leader runs a batch of client statements on its
// writer connection (Capturer), recording every row the statements insert, update or delete through SQLite's
// pre-update hook (triggers and foreign-key actions included, at every depth), then rolls the batch back.
// The recorded Entry is replicated through Raft, and every node, the leader too, applies it with an Applier:
// row by row, by rowid (by primary key for WITHOUT ROWID tables), with triggers and foreign-key actions off.
// Non-deterministic SQL (random(), datetime('now'), ORDER BY random() LIMIT 1) therefore yields identical rows
// everywhere. Schema statements, which the hook does not see, are replicated as their SQL text; CREATE TABLE
// ... AS SELECT is replicated as the resulting CREATE TABLE plus the rows it inserted. A schema may call
// non-deterministic functions where they run only when a row is written (DEFAULT CURRENT_TIMESTAMP, DEFAULT
// (random()), a CHECK constraint, a trigger): the leader writes the row, and the row is what replicates (apply
// does not evaluate CHECK constraints either). Where SQLite evaluates an expression on its own (index
// expressions, partial indexes, generated columns) it refuses non-deterministic functions itself.
//
// # What is refused, and why
//
// A refused statement gets an error wrapping ErrRefused, reported like an SQL error, and changes nothing:
//
//   - ATTACH and DETACH: a node holds exactly one database; another file would not be replicated.
//   - VACUUM (and VACUUM INTO): it may renumber the rowids of tables without an INTEGER PRIMARY KEY, so
//     nodes running it at different times would diverge; VACUUM INTO writes a file on the leader.
//   - load_extension(): every node must run the same code.
//   - BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE: each request already runs in its own savepoint; a
//     request made all-or-nothing with the transaction parameter is rowboat's transaction.
//   - PRAGMAs that set connection, durability or schema behaviour (journal_mode, synchronous, foreign_keys,
//     writable_schema, recursive_triggers, schema_version, locking_mode, ...). Reading any setting is allowed,
//     as are the introspection PRAGMAs (table_info, index_list, integrity_check, ...). user_version and
//     application_id may be set: they are replicated as SQL text. wal_checkpoint, optimize, shrink_memory and
//     incremental_vacuum are refused in every form: they are per-node maintenance.
//   - Schema statements with bound parameters: they are replicated as text, where a parameter means nothing.
//   - CREATE VIRTUAL TABLE with a module other than fts5, rtree and rtree_i32: only modules that
//     keep every bit of state in ordinary shadow tables replicate.
//   - Writes to tables whose names begin with ReservedPrefix, and schema changes to them: rowboat's own
//     bookkeeping lives there.
//   - Writes to sqlite_dbpage: they change pages underneath SQLite, which no row change can describe.
//
// TEMP tables, indexes, views and triggers work within a batch and are never replicated.
//
// # Capture rules worth knowing
//
//   - A failing statement has no effect: it runs in its own savepoint, rolled back on error. (SQLite's ON
//     CONFLICT FAIL would keep a failing statement's earlier rows; rowboat does not.)
//   - A statement that ends the whole transaction (ON CONFLICT ROLLBACK, RAISE(ROLLBACK)) fails alone: the
//     batch is run again without it.
//   - FTS5 keeps new terms in memory until a savepoint opens; capture opens one after every statement so the
//     terms reach the shadow tables, where the hook records them.
//
// This package imports nothing of rowboat's but its SQLite binding, internal/sqlite3.
package logical
