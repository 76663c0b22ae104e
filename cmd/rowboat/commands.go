package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

const helpText = `SQL statements end with ';' and may span lines. Reads (SELECT, WITH, VALUES, EXPLAIN, PRAGMA) go to
/db/request at the read level with the session bookmark as min_index; everything else to /db/execute.

.help                  this text
.status                the node's role, term, leader, commit and applied index, members (and their lag)
.nodes                 every member: id, HTTP and Raft address, voter, reachable, leader
.leader                who leads
.leader <id>           planned failover: hand leadership to node <id>
.leader transfer       planned failover to the voter the leader picks
.level [L]             show or set the read level: none, weak, linearizable, strong, auto
.timer on|off          print how long each statement took, and which node served it at which index
.tables                list the tables
.schema [table]        show the CREATE statements (of one table and its indexes and triggers)
.host [host:port]      show the node in use and the others known, or switch to a node
.session               show the session bookmark: the highest Raft index seen, sent as min_index on reads
.session reset         forget the bookmark
.backup FILE [sql]     download the database as a SQLite file (or, with sql, a SQL dump)
.load FILE             load a SQLite file (it replaces the database) or run a SQL dump in one transaction
.load --replace FILE   load a SQL dump in place of the whole database (every table is dropped first)
.indexes [table]       list the indexes (of one table)
.ready                 whether the node is ready (GET /readyz), and if not, why
.quit, .exit           leave (so does end of input)

rqlite's shell names work too: .consistency (.level), .dump FILE (.backup FILE sql), .restore FILE (.load),
.boot FILE (.load --replace), .stepdown [id] (.leader transfer, or .leader id), .remove ID [force]
(DELETE /remove).
`

// shell runs statements and dot commands and prints their results. Results go to out; errors, warnings and
// failover notes to errw.
type shell struct {
	c      *Client
	out    io.Writer
	errw   io.Writer
	timer  bool
	failed bool // some statement or command failed
	quit   bool
	// tx holds the statements of the open transaction (BEGIN was typed); inTx tells whether one is open. They
	// are sent together at COMMIT, as one all-or-nothing request, because the HTTP API has no sessions.
	tx   []string
	inTx bool
	// onTerminal: an interactive session, which gets notes a script does not need.
	onTerminal bool
}

// statement runs one SQL statement, or, between BEGIN and COMMIT or ROLLBACK, collects it into the open
// transaction.
func (s *shell) statement(ctx context.Context, stmt string) {
	switch txControl(stmt) {
	case "BEGIN":
		if s.inTx {
			s.failed = true
			fmt.Fprintln(s.errw, "Error: a transaction is already open: COMMIT or ROLLBACK it first")
			return
		}
		s.inTx, s.tx = true, nil
		if s.onTerminal {
			fmt.Fprintln(s.errw, "(transaction: the statements are sent together at COMMIT, all or nothing; ROLLBACK sends nothing)")
		}
	case "COMMIT":
		if !s.inTx {
			s.failed = true
			fmt.Fprintln(s.errw, "Error: no transaction is open")
			return
		}
		stmts := s.tx
		s.inTx, s.tx = false, nil
		if len(stmts) > 0 {
			s.sqlTx(ctx, stmts)
		}
	case "ROLLBACK":
		if !s.inTx {
			s.failed = true
			fmt.Fprintln(s.errw, "Error: no transaction is open")
			return
		}
		s.inTx, s.tx = false, nil
	default:
		if s.inTx {
			s.tx = append(s.tx, stmt)
			return
		}
		s.sql(ctx, stmt)
	}
}

// txControl names the transaction a statement controls: "BEGIN", "COMMIT" (COMMIT or END), "ROLLBACK" (but
// not ROLLBACK TO a savepoint), or "" for any other statement.
func txControl(stmt string) string {
	switch kw := firstKeyword(stmt); kw {
	case "BEGIN", "ROLLBACK":
		if f := strings.Fields(strings.ToUpper(trimStatement(stmt))); kw == "ROLLBACK" && len(f) > 1 && f[1] != "TRANSACTION" {
			return "" // ROLLBACK TO a savepoint: the server says what it thinks of it
		}
		return kw
	case "COMMIT", "END":
		return "COMMIT"
	}
	return ""
}

// endInput warns about a transaction left open when the input ends: its statements were never sent.
func (s *shell) endInput() {
	if s.inTx {
		s.failed = true
		what := fmt.Sprintf("its %d statements were", len(s.tx))
		if len(s.tx) == 1 {
			what = "its statement was"
		}
		fmt.Fprintf(s.errw, "Warning: the transaction was not committed: %s not sent\n", what)
		s.inTx, s.tx = false, nil
	}
}

// sqlTx runs the statements of a transaction as one request and prints their results.
func (s *shell) sqlTx(ctx context.Context, stmts []string) {
	start := time.Now()
	results, applied, err := s.c.ExecTx(ctx, stmts)
	if err != nil {
		s.fail(err)
		return
	}
	for i, r := range results {
		if r.Error != "" {
			s.failed = true
			fmt.Fprintf(s.errw, "Error: %s\n", r.Error)
			continue
		}
		writeResult(s.out, stmts[i], r, true)
	}
	if !applied {
		fmt.Fprintln(s.errw, "The transaction was rolled back: nothing was applied.")
	}
	if s.timer {
		fmt.Fprintf(s.out, "Time: %s\n", time.Since(start).Round(time.Microsecond))
	}
}

// fail prints a request-level error.
func (s *shell) fail(err error) {
	s.failed = true
	var ae *APIError
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(s.errw, "Cancelled.")
	case errors.Is(err, errUnknownOutcome):
		fmt.Fprintf(s.errw, "Warning: %v\nRead the data to find out before running it again.\n", err)
	case errors.As(err, &ae) && ae.Code == "stale" && s.c.Bookmark() > 0:
		fmt.Fprintf(s.errw, "Error: %v\n(the session bookmark is %d; .session reset forgets it)\n", err, s.c.Bookmark())
	default:
		fmt.Fprintf(s.errw, "Error: %v\n", err)
	}
}

// sql runs one statement and prints its result.
func (s *shell) sql(ctx context.Context, stmt string) {
	start := time.Now()
	a, err := s.c.Exec(ctx, stmt)
	elapsed := time.Since(start)
	switch {
	case err != nil:
		s.fail(err)
	case a.Result.Error != "":
		s.failed = true
		fmt.Fprintf(s.errw, "Error: %s\n", a.Result.Error)
	default:
		writeResult(s.out, stmt, a.Result, a.Write)
	}
	if s.timer {
		served := ""
		if a != nil {
			served = fmt.Sprintf(" (served by %s at index %d)", a.ServedBy, a.Index)
		}
		fmt.Fprintf(s.out, "Time: %s%s\n", elapsed.Round(time.Microsecond), served)
	}
}

// command runs one dot command.
func (s *shell) command(ctx context.Context, line string) {
	f := strings.Fields(line)
	name, args := f[0], f[1:]
	// rqlite's shell names for the same things.
	switch name {
	case ".consistency":
		name = ".level"
	case ".restore":
		name = ".load"
	case ".boot":
		name, args = ".load", append([]string{"--replace"}, args...)
	case ".dump":
		name = ".backup"
		if len(args) == 1 {
			args = append(args, "sql")
		}
	case ".stepdown":
		name = ".leader"
		if len(args) == 0 {
			args = []string{"transfer"}
		}
	}
	var err error
	switch name {
	case ".help":
		fmt.Fprint(s.out, helpText)
	case ".quit", ".exit":
		s.quit = true
	case ".status":
		err = s.status(ctx)
	case ".nodes":
		err = s.nodes(ctx)
	case ".leader":
		err = s.leader(ctx, args)
	case ".level":
		if len(args) > 0 {
			err = s.c.SetLevel(args[0])
		}
		if err == nil {
			fmt.Fprintf(s.out, "level: %s\n", s.c.Level())
		}
	case ".timer":
		switch strings.Join(args, " ") {
		case "on":
			s.timer = true
		case "off":
			s.timer = false
		default:
			err = errors.New("usage: .timer on|off")
		}
	case ".tables":
		err = s.tables(ctx)
	case ".indexes", ".indices":
		err = s.indexes(ctx, args)
	case ".ready":
		err = s.ready(ctx)
	case ".remove":
		if len(args) < 1 || len(args) > 2 || (len(args) == 2 && args[1] != "force") {
			err = errors.New("usage: .remove ID [force]")
		} else if err = s.c.Remove(ctx, args[0], len(args) == 2); err == nil {
			fmt.Fprintf(s.out, "removed %s\n", args[0])
		}
	case ".schema":
		err = s.schema(ctx, args)
	case ".host":
		if len(args) > 0 {
			err = s.c.SetHost(ctx, args[0])
		}
		if err == nil {
			fmt.Fprintf(s.out, "host: %s (known: %s)\n", s.c.Host(), strings.Join(s.c.Hosts(), ", "))
		}
	case ".backup":
		err = s.backup(ctx, args)
	case ".load":
		err = s.load(ctx, args)
	case ".session":
		switch strings.Join(args, " ") {
		case "":
		case "reset":
			s.c.ResetBookmark()
		default:
			err = errors.New("usage: .session [reset]")
		}
		if err == nil {
			fmt.Fprintf(s.out, "session bookmark: min_index=%d\n", s.c.Bookmark())
		}
	default:
		err = fmt.Errorf("unknown command %s: .help lists them", name)
	}
	if err != nil {
		s.fail(err)
	}
}

func (s *shell) status(ctx context.Context) error {
	st, err := s.c.Status(ctx)
	if err != nil {
		return err
	}
	kv := [][2]string{
		{"id", st.ID},
		{"role", st.Role},
		{"term", strconv.FormatUint(st.Term, 10)},
		{"leader", leaderText(st)},
		{"commit index", strconv.FormatUint(st.CommitIndex, 10)},
		{"applied index", strconv.FormatUint(st.AppliedIndex, 10)},
	}
	if !st.LastContact.IsZero() {
		kv = append(kv, [2]string{"last contact", time.Since(st.LastContact).Round(time.Millisecond).String() + " ago"})
	}
	ready := "yes"
	if !st.Ready {
		ready = "no: " + st.NotReady
	}
	kv = append(kv, [2]string{"ready", ready})
	for _, p := range kv {
		fmt.Fprintf(s.out, "%-14s %s\n", p[0]+":", p[1])
	}
	if len(st.Members) == 0 {
		return nil
	}
	fmt.Fprintln(s.out, "members:")
	header := []string{"id", "http_addr", "raft_addr", "voter", "leader"}
	if len(st.MemberLag) > 0 {
		header = append(header, "reachable", "applied", "lag")
	}
	var rows [][]string
	for _, m := range st.Members {
		row := []string{m.ID, m.HTTPAddr, m.RaftAddr, yesNo(m.Voter), yesNo(m.Leader)}
		if len(st.MemberLag) > 0 {
			row = append(row, "?", "", "")
			for _, l := range st.MemberLag {
				if l.ID == m.ID {
					row[5], row[6], row[7] = yesNo(l.Reachable), "-", "-" // an unreachable member's position is unknown
					if l.Reachable {
						row[6], row[7] = strconv.FormatUint(l.AppliedIndex, 10), strconv.FormatUint(l.Lag, 10)
					}
				}
			}
		}
		rows = append(rows, row)
	}
	writeTable(s.out, header, rows, nil)
	return nil
}

func leaderText(st *Status) string {
	if st.LeaderID == "" {
		return "none known"
	}
	if st.LeaderHTTPAddr == "" {
		return st.LeaderID
	}
	return st.LeaderID + " at " + st.LeaderHTTPAddr
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (s *shell) nodes(ctx context.Context) error {
	ns, err := s.c.Nodes(ctx)
	if err != nil {
		return err
	}
	header := []string{"id", "api_addr", "raft_addr", "voter", "reachable", "leader"}
	withErr := false
	for _, n := range ns {
		withErr = withErr || n.Error != ""
	}
	if withErr {
		header = append(header, "error")
	}
	rows := make([][]string, len(ns))
	for i, n := range ns {
		rows[i] = []string{n.ID, n.APIAddr, n.Addr, yesNo(n.Voter), yesNo(n.Reachable), yesNo(n.Leader)}
		if withErr {
			rows[i] = append(rows[i], n.Error)
		}
	}
	writeTable(s.out, header, rows, nil)
	return nil
}

// leader shows the leader or, with an argument, asks for a planned failover and waits until the node in use
// sees the new leader.
func (s *shell) leader(ctx context.Context, args []string) error {
	st, err := s.c.Status(ctx)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		fmt.Fprintf(s.out, "leader: %s (term %d)\n", leaderText(st), st.Term)
		return nil
	}
	if len(args) > 1 {
		return errors.New("usage: .leader [<id>|transfer]")
	}
	target := args[0]
	if target == "transfer" {
		target = ""
	}
	old := st.LeaderID
	if err := s.c.TransferLeader(ctx, target); err != nil {
		return err
	}
	// The answer comes from the old leader once it has handed over; wait until the node in use knows.
	deadline := time.Now().Add(s.c.timeout)
	for {
		st, err = s.c.Status(ctx)
		if err == nil && st.LeaderID != "" && (st.LeaderID == target || target == "" && st.LeaderID != old) {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("asked to transfer leadership, but the leader is still %s after %s", leaderText(st), s.c.timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Fprintf(s.out, "leader: %s (term %d)\n", leaderText(st), st.Term)
	return nil
}

// column runs a read whose first column is text and returns it.
func (s *shell) column(ctx context.Context, sql string, args ...any) ([]string, error) {
	a, err := s.c.Exec(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	if a.Result.Error != "" {
		return nil, errors.New(a.Result.Error)
	}
	var out []string
	for _, row := range a.Result.Values {
		if len(row) > 0 {
			if v, ok := row[0].(string); ok {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

const userObjects = `name NOT LIKE 'sqlite_%' AND name NOT LIKE '\_rowboat\_%' ESCAPE '\'`

func (s *shell) tables(ctx context.Context) error {
	names, err := s.column(ctx, `SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND `+userObjects+` ORDER BY name`)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(s.out, n)
	}
	return nil
}

// ofTable narrows a query of sqlite_schema to the objects of the table args names, if it names one.
func ofTable(q string, args []string, usage string) (string, []any, error) {
	switch len(args) {
	case 0:
		return q, nil, nil
	case 1:
		return q + ` AND tbl_name = ? COLLATE NOCASE`, []any{args[0]}, nil
	default:
		return "", nil, errors.New(usage)
	}
}

func (s *shell) indexes(ctx context.Context, args []string) error {
	q, qargs, err := ofTable(`SELECT name FROM sqlite_schema WHERE type = 'index' AND `+userObjects, args, "usage: .indexes [table]")
	if err != nil {
		return err
	}
	names, err := s.column(ctx, q+` ORDER BY name`, qargs...)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(s.out, n)
	}
	return nil
}

func (s *shell) ready(ctx context.Context) error {
	ok, why, err := s.c.Ready(ctx)
	if err != nil {
		return err
	}
	if ok {
		fmt.Fprintln(s.out, "ready")
	} else {
		fmt.Fprintf(s.out, "not ready: %s\n", why)
	}
	return nil
}

func (s *shell) schema(ctx context.Context, args []string) error {
	q, qargs, err := ofTable(`SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND `+userObjects, args, "usage: .schema [table]")
	if err != nil {
		return err
	}
	sqls, err := s.column(ctx, q+` ORDER BY rowid`, qargs...)
	if err != nil {
		return err
	}
	for _, sql := range sqls {
		fmt.Fprintln(s.out, sql+";")
	}
	return nil
}
