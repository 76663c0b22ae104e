package logical

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// ErrRefused is wrapped by the error of every statement refused because it must not run in a replicated
// database. Refusals are reported per statement, like SQL errors.
var ErrRefused = errors.New("statement refused")

// ReservedPrefix starts the names of rowboat's own tables. Statements may read them, never write or alter them.
const ReservedPrefix = "_rowboat_"

// replicatedPragmas may be set: they change the database file deterministically, so the statement is
// replicated as SQL text.
var replicatedPragmas = map[string]bool{
	"user_version": true, "application_id": true,
}

// introspectionPragmas take an object name, not a setting, as their argument and only read.
var introspectionPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true, "index_info": true,
	"index_xinfo": true, "foreign_key_list": true, "foreign_key_check": true, "integrity_check": true,
	"quick_check": true, "collation_list": true, "function_list": true, "module_list": true,
	"pragma_list": true, "compile_options": true, "database_list": true, "data_version": true,
	"freelist_count": true, "page_count": true,
}

// sessionPragmas are the connection settings a client sets as it connects (pyrqlite sends every PRAGMA to
// /db/query, so SQLAlchemy's "PRAGMA foreign_keys=ON" on connect came back as an error). On the read path,
// whose connections are shared and belong to no client, setting one does nothing and answers no rows, as it
// answers on rqlite; reading one answers the read connection's value.
var sessionPragmas = map[string]bool{
	"foreign_keys": true, "defer_foreign_keys": true, "recursive_triggers": true, "busy_timeout": true,
	"read_uncommitted": true, "synchronous": true, "cache_size": true, "temp_store": true,
}

// actionPragmas do something even without an argument, so they are refused in every form.
var actionPragmas = map[string]bool{
	"wal_checkpoint": true, "optimize": true, "shrink_memory": true, "incremental_vacuum": true,
}

// virtualTableModules may be used by CREATE VIRTUAL TABLE: they keep all their state in ordinary shadow
// tables, which replicate like any other table.
var virtualTableModules = map[string]bool{
	"fts5": true, "rtree": true, "rtree_i32": true, // this SQLite build has no fts3 or fts4

}

// stmtInfo is what the authorizer learned about the statement being prepared.
type stmtInfo struct {
	refused   error  // why the statement may not run
	ddl       bool   // it changes the main schema
	tempDDL   bool   // it changes only the temp schema
	drop      string // DROP TABLE: the table dropped
	create    string // CREATE TABLE: the table created
	selects   bool   // it contains a SELECT (with create: CREATE TABLE ... AS SELECT)
	viewOrTrg bool   // CREATE VIEW or CREATE TRIGGER: stores SQL, computes nothing
	alter     bool   // ALTER TABLE: the authorizer does not see a new name (RENAME TO), so it is checked after
}

func (s *stmtInfo) refuse(format string, args ...any) int {
	if s.refused == nil {
		s.refused = fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
	}
	return sqlite3.AuthDeny
}

// authorize is the capture connection's policy for user statements; see the package documentation for the
// list of what it refuses and why.
func (s *stmtInfo) authorize(action int, arg1, arg2, database, trigger string) int {
	switch action {
	case sqlite3.ActionCreateTable, sqlite3.ActionDropTable, sqlite3.ActionCreateIndex, sqlite3.ActionDropIndex,
		sqlite3.ActionCreateTrigger, sqlite3.ActionCreateView, sqlite3.ActionDropTrigger, sqlite3.ActionDropView,
		sqlite3.ActionReindex, sqlite3.ActionAnalyze, sqlite3.ActionDropVTable:
		// (Not CREATE VIRTUAL TABLE: a temp one must pass the module check below too. A temp alias of
		// sqlite_dbpage rewrote pages under the main database, and the rows the hook then reported stopped
		// every node.)
		if strings.EqualFold(database, "temp") {
			s.tempDDL = true
			return sqlite3.AuthOK
		}
	}
	switch action {
	case sqlite3.ActionAttach, sqlite3.ActionDetach:
		return s.refuse("ATTACH and DETACH are not allowed: every node holds exactly one database")
	case sqlite3.ActionTransaction, sqlite3.ActionSavepoint:
		stmt := strings.ToUpper(arg1) // BEGIN, COMMIT or ROLLBACK; for a savepoint, BEGIN, RELEASE or ROLLBACK
		if action == sqlite3.ActionSavepoint {
			switch stmt {
			case "BEGIN":
				stmt = "SAVEPOINT"
			case "ROLLBACK":
				stmt = "ROLLBACK TO"
			}
		}
		return s.refuse("%s is not allowed inside a request: send the statements in one request with the transaction parameter to make them all-or-nothing", stmt)
	case sqlite3.ActionFunction:
		name := strings.ToLower(arg2)
		if name == "load_extension" {
			return s.refuse("load_extension is not allowed: every node must run the same code")
		}
	case sqlite3.ActionPragma:
		return s.pragma(strings.ToLower(arg1), arg2)
	case sqlite3.ActionSelect:
		s.selects = true
	case sqlite3.ActionInsert, sqlite3.ActionUpdate, sqlite3.ActionDelete:
		if strings.EqualFold(arg1, "sqlite_dbpage") {
			return s.refuse("writes to sqlite_dbpage are not allowed: they change database pages underneath SQLite, which cannot be replicated (and can corrupt the writer's view of the database)")
		}
		if reserved(arg1) {
			return s.refuse("table %s is reserved for rowboat's own bookkeeping", arg1)
		}
	case sqlite3.ActionCreateTable:
		s.ddl = true
		s.create = arg1
		return s.reservedName(arg1)
	case sqlite3.ActionDropTable:
		s.ddl = true
		s.drop = arg1
		return s.reservedName(arg1)
	case sqlite3.ActionAlterTable:
		if strings.EqualFold(arg1, "temp") {
			s.tempDDL = true
			return sqlite3.AuthOK
		}
		s.ddl = true
		s.alter = true
		return s.reservedName(arg2)
	case sqlite3.ActionCreateIndex, sqlite3.ActionDropIndex: // arg1 is the index, arg2 the table
		s.ddl = true
		if r := s.reservedName(arg1); r != sqlite3.AuthOK {
			return r
		}
		return s.reservedName(arg2)
	case sqlite3.ActionCreateTrigger: // arg1 is the trigger, arg2 the table it is on
		s.ddl = true
		s.viewOrTrg = true
		if r := s.reservedName(arg1); r != sqlite3.AuthOK {
			return r
		}
		return s.reservedName(arg2)
	case sqlite3.ActionCreateView: // arg1 is the view
		s.ddl = true
		s.viewOrTrg = true
		return s.reservedName(arg1)
	case sqlite3.ActionReindex, sqlite3.ActionAnalyze, sqlite3.ActionDropVTable:
		if strings.EqualFold(database, "temp") {
			s.tempDDL = true
		} else {
			s.ddl = true
		}
	case sqlite3.ActionDropTrigger, sqlite3.ActionDropView:
		s.ddl = true
	case sqlite3.ActionCreateVTable:
		if strings.EqualFold(database, "temp") {
			s.tempDDL = true
		} else {
			s.ddl = true
		}
		if !virtualTableModules[strings.ToLower(arg2)] {
			return s.refuse("virtual table module %q is not allowed: only modules that keep their data in shadow tables replicate (fts5, rtree)", arg2)
		}
		return s.reservedName(arg1)
	case sqlite3.ActionCreateTempTable, sqlite3.ActionCreateTempIndex, sqlite3.ActionCreateTempTrigger,
		sqlite3.ActionCreateTempView, sqlite3.ActionDropTempTable, sqlite3.ActionDropTempIndex,
		sqlite3.ActionDropTempTrigger, sqlite3.ActionDropTempView:
		s.tempDDL = true
	}
	return sqlite3.AuthOK
}

func (s *stmtInfo) reservedName(name string) int {
	if reserved(name) {
		return s.refuse("the name %s is reserved for rowboat's own bookkeeping", name)
	}
	return sqlite3.AuthOK
}

func reserved(name string) bool {
	return len(name) >= len(ReservedPrefix) && strings.EqualFold(name[:len(ReservedPrefix)], ReservedPrefix)
}

func (s *stmtInfo) pragma(name, arg string) int {
	switch {
	case introspectionPragmas[name]:
		return sqlite3.AuthOK
	case actionPragmas[name]:
		return s.refuse("PRAGMA %s is not allowed: it is per-node maintenance that rowboat manages", name)
	case arg == "":
		return sqlite3.AuthOK // reading a setting changes nothing
	case replicatedPragmas[name]:
		s.ddl = true
		return sqlite3.AuthOK
	default:
		return s.refuse("PRAGMA %s = %s is not allowed: it changes connection, durability or schema behaviour that rowboat manages", name, arg)
	}
}

// firstKeyword returns the first keyword of sql, upper-cased, skipping whitespace and comments.
func firstKeyword(sql string) string {
	i := 0
	for i < len(sql) {
		switch c := sql[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == ';':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				return ""
			}
			i += j + 1
		case strings.HasPrefix(sql[i:], "/*"):
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				return ""
			}
			i += j + 4
		default:
			j := i
			for j < len(sql) && (sql[j] == '_' || sql[j] >= 'a' && sql[j] <= 'z' || sql[j] >= 'A' && sql[j] <= 'Z') {
				j++
			}
			return strings.ToUpper(sql[i:j])
		}
	}
	return ""
}
