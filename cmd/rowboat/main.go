// Command rowboat is rowboat's shell, in the manner of psql and the rqlite shell: it runs SQL statements and
// dot commands against a rowboat cluster over the HTTP API.
//
// It carries a session bookmark: the highest Raft index it has seen (from every answer's X-Rowboat-Index and
// every write's raft_index), sent as min_index with every read, so that a session always reads its own
// writes, whichever node answers. Given several nodes, it moves to the next one when a node cannot serve,
// and resends a write only when the failure proves that nothing was applied.
//
// It imports nothing of rowboat's: it talks to the HTTP API only.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rowboatdb/rowboat/internal/version"
)

const usage = `Usage: rowboat [-H host:port[,host:port...]] [-p port] [-level L] [-timeout D] [SQL or .command ...]

With arguments, rowboat runs each SQL statement (an argument may hold several, separated by ';') or dot
command in turn and exits, with status 1 if any failed. Without, it reads statements ending in ';' from
standard input: an interactive shell on a terminal (.help lists the dot commands), a script from a pipe
(exit status 1 if any statement failed).

Every read carries the session bookmark, the highest Raft index the shell has seen, as min_index: the
session reads its own writes whichever node answers. Given several nodes, the shell moves on to the next
when one cannot serve, and resends a write only when the failure proves that nothing was applied.

  -H host:port[,...]  the nodes to talk to; the first is used until it fails (default 127.0.0.1:4001);
                      the cluster's other members, as the first node lists them, are added after them
  -p port             the port of every -H host given without one (default 4001), as in rqlite's shell
  -level L            read level: none, weak, linearizable, strong or auto (default linearizable)
  -timeout D          how long the server may take over one request, and how long the shell keeps
                      retrying through a leader change (default 10s)
  -version            print the version and exit

Examples:
  rowboat -H 127.0.0.1:4001,127.0.0.1:4011 "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"
  rowboat -H 127.0.0.1:4011 "INSERT INTO t(v) VALUES('x'); SELECT * FROM t"
  echo "SELECT count(*) FROM t;" | rowboat -level none
  rowboat -H 127.0.0.1:4001 .status .nodes
`

// withPort gives each comma-separated host that names no port the given one.
func withPort(hosts string, port int) string {
	list := strings.Split(hosts, ",")
	for i, h := range list {
		h = strings.TrimSpace(h)
		scheme := ""
		if j := strings.Index(h, "://"); j >= 0 {
			scheme, h = h[:j+3], h[j+3:]
		}
		h = strings.TrimSuffix(h, "/")
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, strconv.Itoa(port))
		}
		list[i] = scheme + h
	}
	return strings.Join(list, ",")
}

func main() {
	terminal := false
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		terminal = true
	}
	os.Exit(run(os.Args[1:], os.Stdin, terminal, os.Stdout, os.Stderr))
}

// run runs the command and returns its exit status: 0 success, 1 a failed statement or command (in one-shot
// and script mode), 2 bad usage.
func run(args []string, stdin io.Reader, terminal bool, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rowboat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	hosts := fs.String("H", "127.0.0.1:4001", "")
	level := fs.String("level", "linearizable", "")
	timeout := fs.Duration("timeout", 10*time.Second, "")
	port := fs.Int("p", 0, "")
	showVersion := fs.Bool("version", false, "")
	rest, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "rowboat", version.String())
		return 0
	}
	if *port != 0 {
		if *port < 1 || *port > 65535 {
			fmt.Fprintf(stderr, "rowboat: -p %d: want a port, 1 to 65535\n", *port)
			return 2
		}
		*hosts = withPort(*hosts, *port)
	}
	c, err := NewClient(*hosts, *level, *timeout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "rowboat: %v\n", err)
		return 2
	}
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	c.Discover(dctx)
	cancel()
	sh := &shell{c: c, out: stdout, errw: stderr, onTerminal: terminal && len(rest) == 0}
	if terminal && len(rest) == 0 {
		sh.interactive(stdin)
		return 0
	}
	// The first Ctrl-C cancels the statement running (a write then gets its "may or may not have been
	// applied" warning) and ends the run; a second one kills the process, as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)
	if len(rest) > 0 {
		sh.oneShot(ctx, rest)
	} else {
		sh.script(ctx, stdin)
	}
	if sh.failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

// parseArgs parses the flags wherever they stand among the arguments (Go's flag package stops at the first
// argument that is not a flag, so "rowboat 'SELECT 1' -level none" would run "-level" as SQL), and returns
// the other arguments in order. An argument is a flag when it starts with '-' or "--" and a letter; after "--"
// everything is an argument, and "-- comment" is SQL.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		a := args[0]
		switch {
		case a == "--":
			return append(pos, args[1:]...), nil
		case flagLike(a):
			if err := fs.Parse(args); err != nil {
				return nil, err
			}
			rest := fs.Args()
			if n := len(args) - len(rest); args[n-1] == "--" {
				return append(pos, rest...), nil
			}
			args = rest
		default:
			pos = append(pos, a)
			args = args[1:]
		}
	}
	return pos, nil
}

// flagLike reports whether a command-line argument is a flag: '-' or "--", then a letter.
func flagLike(a string) bool {
	if !strings.HasPrefix(a, "-") {
		return false
	}
	a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	return len(a) > 0 && (a[0] >= 'a' && a[0] <= 'z' || a[0] >= 'A' && a[0] <= 'Z')
}

// oneShot runs each argument: a dot command, or SQL holding one or more statements.
func (s *shell) oneShot(ctx context.Context, args []string) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if strings.HasPrefix(strings.TrimSpace(arg), ".") {
			// A dot command given unquoted (rowboat .level none) arrives as several arguments: the single words
			// after it that are not dot commands themselves are its arguments.
			if !strings.ContainsAny(strings.TrimSpace(arg), " \t") {
				for i+1 < len(args) && args[i+1] != "" && !strings.ContainsAny(args[i+1], " \t\n;") && !isDotCommand(args[i+1]) {
					i++
					arg += " " + args[i]
				}
			}
			s.command(ctx, strings.TrimSpace(arg))
		} else {
			stmts, rest := splitStatements(arg)
			if rest != "" {
				stmts = append(stmts, trimStatement(rest)) // the last statement needs no ';'
			}
			for _, st := range stmts {
				if ctx.Err() != nil {
					break
				}
				s.statement(ctx, st)
			}
		}
		if s.quit || ctx.Err() != nil {
			return
		}
	}
	s.endInput()
}

// isDotCommand reports whether a one-shot argument starts a dot command: a '.' and a letter (./out.db and
// ../dump.sql are arguments of the command before them).
func isDotCommand(arg string) bool {
	return len(arg) > 1 && arg[0] == '.' && (arg[1] >= 'a' && arg[1] <= 'z' || arg[1] >= 'A' && arg[1] <= 'Z')
}

// script runs what a pipe or file brings, without prompts, until its end, .quit or an interrupt.
func (s *shell) script(ctx context.Context, in io.Reader) { s.read(ctx, in, nil) }

// interactive runs a terminal session with prompts. Ctrl-C cancels the statement running or, between
// statements, drops the lines of an unfinished one, instead of leaving; .quit or Ctrl-D leaves.
func (s *shell) interactive(in io.Reader) {
	t := &terminal{out: s.out}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	go func() {
		for range sig {
			t.interrupt()
		}
	}()
	s.read(context.Background(), in, t)
	if !s.quit {
		fmt.Fprintln(s.out) // Ctrl-D left the cursor after the prompt
	}
}

// terminal is the state an interactive session shares with its Ctrl-C handler.
type terminal struct {
	out     io.Writer
	mu      sync.Mutex
	cancel  context.CancelFunc // of the running statement; nil between statements
	cleared bool               // Ctrl-C between statements: drop the lines typed so far
	primary string             // the prompt of a new statement
}

func (t *terminal) prompt(p, primary string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.primary = primary
	fmt.Fprint(t.out, p)
}

func (t *terminal) interrupt() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cancel != nil {
		t.cancel()
		return
	}
	t.cleared = true
	fmt.Fprint(t.out, "\n"+t.primary)
}

// takeCleared reports (once) whether Ctrl-C was pressed between statements.
func (t *terminal) takeCleared() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cleared
	t.cleared = false
	return c
}

// begin gives a statement a context that Ctrl-C cancels; done must be called when it ends.
func (t *terminal) begin(parent context.Context) (ctx context.Context, done func()) {
	ctx, cancel := context.WithCancel(parent)
	t.mu.Lock()
	t.cancel = cancel
	t.mu.Unlock()
	return ctx, func() {
		t.mu.Lock()
		t.cancel = nil
		t.mu.Unlock()
		cancel()
	}
}

// read is the input loop: a line that starts with '.' outside a statement is a dot command; other lines
// accumulate until a ';' ends a statement. t is nil when the input is not a terminal: no prompts.
func (s *shell) read(ctx context.Context, in io.Reader, t *terminal) {
	r := bufio.NewReader(in)
	buf := ""
	exec := func(f func(ctx context.Context)) {
		if t == nil {
			f(ctx)
			return
		}
		sctx, done := t.begin(ctx)
		defer done()
		f(sctx)
	}
	for !s.quit && ctx.Err() == nil {
		if t != nil {
			host := s.c.Host()
			mark := "> "
			if s.inTx {
				mark = "*> " // in a transaction, as psql shows it
			}
			p := host + mark
			if buf != "" {
				p = strings.Repeat(" ", max(0, len(host)-3)) + "...> "
			}
			t.prompt(p, host+mark)
		}
		line, err := r.ReadString('\n')
		if t != nil && t.takeCleared() {
			buf = ""
		}
		if ctx.Err() != nil {
			return
		}
		if buf == "" && strings.HasPrefix(strings.TrimSpace(line), ".") {
			exec(func(ctx context.Context) { s.command(ctx, strings.TrimSpace(line)) })
		} else if w := strings.TrimSuffix(strings.TrimSpace(line), ";"); buf == "" && (w == "exit" || w == "quit" || w == `\q`) {
			s.quit = true // what psql and sqlite3 users type to leave
		} else if line != "" {
			var stmts []string
			stmts, buf = splitStatements(buf + line)
			for _, st := range stmts {
				if s.quit || ctx.Err() != nil {
					return
				}
				exec(func(ctx context.Context) { s.statement(ctx, st) })
			}
		}
		if err != nil {
			break
		}
	}
	if buf != "" && !s.quit && ctx.Err() == nil {
		if _, open := splitStatements(buf + "\n;"); open != "" && t == nil {
			// The ';' added lands inside a quote or a comment that never ends: nothing complete to run.
			s.failed = true
			fmt.Fprintln(s.errw, "Error: incomplete input at the end: a quote or /* comment is not closed; nothing of it was run")
		} else if t == nil { // the last statement of a script needs no ';'
			exec(func(ctx context.Context) { s.statement(ctx, trimStatement(buf)) })
		} else { // Ctrl-D on a half-typed statement leaves without running it, as psql does
			fmt.Fprint(s.out, "\n(the unfinished statement was not run)")
		}
	}
	if !s.quit && ctx.Err() == nil {
		s.endInput()
	}
}
