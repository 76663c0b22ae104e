// Command rowboat-bench is a load generator for rowboat and any other rqlite-compatible server.
//
// It finds the leader and a follower through GET /status (rowboat's {"role":"leader"} or rqlite's
// {"store":{"raft":{"state":"Leader"}}}; failing both, the first URL is the leader), empties a table, and
// measures, each for -duration:
//
//   - insert: single-row parameterized INSERTs through the leader at concurrency 1, 16 and 64;
//   - batch:  requests of 100 INSERTs through the leader at concurrency 16;
//   - read:   point SELECTs by primary key at levels none, weak, linearizable and strong, on the leader and on
//     a follower, at concurrency 16;
//   - spread: linearizable point SELECTs spread over every node in -urls but the leader (followers and read
//     replicas), 16 clients' worth per node: the cluster's total follower read throughput.
//
// A request counts as a success only if it got HTTP 200 and no result carries an "error". After the writes it
// counts the table's rows at level strong on the leader (and linearizable on the follower) and exits 1 unless
// the count is exactly the number of rows the server acknowledged. Results are printed as a markdown table;
// -json also writes them to a file. With -pids (the servers' process ids, on the same Linux machine) each run
// also reports the CPU the servers and the benchmark spent per request, from /proc: on a shared machine that
// moves far less from run to run than throughput does, so it compares servers more fairly.
//
// Requests to http:// URLs go through a lean keep-alive HTTP/1.1 client (internal/rawhttp): on a small
// machine that the cluster shares with the load generator, net/http's client spends about as much CPU per
// request as the server does, and that CPU is taken from the server under test. -net-http uses net/http
// instead; https:// URLs always do.
//
// Usage:
//
//	rowboat-bench -urls 127.0.0.1:4001,127.0.0.1:4011,127.0.0.1:4021 [-duration 5s] [-scenarios insert,read]
//
// It imports nothing of rowboat's: it talks to the HTTP API only.
package main

import (
	"github.com/rowboatdb/rowboat/internal/nodeurl"

	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the command and returns its exit code: 0 success, 1 a failed run or check, 2 bad usage.
func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, jsonPath, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "rowboat-bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep, err := run(ctx, cfg)
	if rep != nil && len(rep.Results) > 0 {
		fmt.Fprintf(stdout, "\nleader %s, follower %s, %s per run, %s client\n\n", rep.Leader, orDash(rep.Follower), rep.Duration, rep.Client)
		if werr := writeTable(stdout, rep.Results, len(cfg.PIDs) > 0); werr != nil {
			fmt.Fprintf(stderr, "rowboat-bench: %v\n", werr)
			return 1
		}
		sep := "\n"
		for _, r := range rep.Results {
			if r.FirstError != "" {
				fmt.Fprintf(stdout, "%sfirst error of %s %s %s conc=%d: %s\n", sep, r.Scenario, r.Node, orDash(r.Level), r.Concurrency, r.FirstError)
				sep = ""
			}
		}
	}
	if rep != nil && rep.Check != nil {
		fmt.Fprintf(stdout, "\nrow count check: %s\n", rep.Check.Message)
	}
	if jsonPath != "" && rep != nil {
		if werr := writeJSON(jsonPath, rep); werr != nil {
			fmt.Fprintf(stderr, "rowboat-bench: %v\n", werr)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "rowboat-bench: %v\n", err)
		return 1
	}
	return 0
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func parseFlags(args []string, stderr io.Writer) (config, string, error) {
	fs := flag.NewFlagSet("rowboat-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("urls", "http://127.0.0.1:4001,http://127.0.0.1:4011,http://127.0.0.1:4021",
		"comma-separated node base URLs (`host:port` is accepted)")
	duration := fs.Duration("duration", 5*time.Second, "how long each measured run lasts")
	scenarios := fs.String("scenarios", "all", "comma-separated scenarios to run: "+strings.Join(allScenarios, ", ")+", or all")
	table := fs.String("table", "bench", "table to create, empty and fill (its rows are deleted first!)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	batchSize := fs.Int("batch-size", 100, "statements per request in the batch scenario")
	jsonPath := fs.String("json", "", "also write the results as JSON to this `file`")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	insertConc := fs.String("insert-conc", "1,16,64", "comma-separated concurrencies of the insert scenario")
	netHTTP := fs.Bool("net-http", false, "send requests with Go's net/http client instead of the lean built-in one (more client CPU on a shared machine, so lower figures)")
	readLevels := fs.String("read-levels", "none,weak,linearizable,strong", "comma-separated read levels of the read scenario")
	pids := fs.String("pids", "", "comma-separated `PIDs` of the server processes on this machine (Linux): each run then also reports their CPU, and the benchmark's own, per request")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: rowboat-bench [flags]\n\nLoad generator for rowboat and other rqlite-compatible servers.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, "", err
	}
	if fs.NArg() > 0 {
		return config{}, "", fmt.Errorf("unexpected arguments %q (node URLs go in -urls)", fs.Args())
	}
	cfg := defaultConfig()
	var err error
	if cfg.URLs, err = nodeurl.ParseList(*urls); err != nil {
		return config{}, "", fmt.Errorf("-urls: %w", err)
	}
	if *duration <= 0 {
		return config{}, "", errors.New("-duration must be positive")
	}
	cfg.Duration = *duration
	if cfg.Scenarios, err = parseScenarios(*scenarios); err != nil {
		return config{}, "", fmt.Errorf("-scenarios: %w", err)
	}
	if !tableName.MatchString(*table) {
		return config{}, "", fmt.Errorf("-table: %q is not a plain SQL identifier", *table)
	}
	cfg.Table = *table
	if *timeout <= 0 {
		return config{}, "", errors.New("-timeout must be positive")
	}
	cfg.Timeout = *timeout
	if *batchSize < 1 {
		return config{}, "", errors.New("-batch-size must be at least 1")
	}
	cfg.BatchSize = *batchSize
	if cfg.InsertConc, err = parseConcurrencies(*insertConc); err != nil {
		return config{}, "", fmt.Errorf("-insert-conc: %w", err)
	}
	if cfg.ReadLevels, err = parseLevels(*readLevels); err != nil {
		return config{}, "", fmt.Errorf("-read-levels: %w", err)
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	cfg.NetHTTP = *netHTTP
	if cfg.PIDs, err = parsePIDs(*pids); err != nil {
		return config{}, "", fmt.Errorf("-pids: %w", err)
	}
	return cfg, *jsonPath, nil
}

// defaultConfig is the run the flags describe when none is given.
func defaultConfig() config {
	return config{
		URLs:       []string{"http://127.0.0.1:4001"},
		Duration:   5 * time.Second,
		Scenarios:  map[string]bool{scenarioInsert: true, scenarioBatch: true, scenarioRead: true, scenarioSpread: true},
		Table:      "bench",
		Timeout:    10 * time.Second,
		InsertConc: []int{1, 16, 64},
		BatchConc:  16,
		BatchSize:  100,
		ReadConc:   16,
		ReadLevels: []string{"none", "weak", "linearizable", "strong"},
		SeedRows:   1000,
		ErrBackoff: 10 * time.Millisecond,
	}
}

func parseScenarios(list string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		switch {
		case s == "":
		case s == "all":
			for _, name := range allScenarios {
				set[name] = true
			}
		case slices.Contains(allScenarios, s):
			set[s] = true
		default:
			return nil, fmt.Errorf("unknown scenario %q (want %s or all)", s, strings.Join(allScenarios, ", "))
		}
	}
	if len(set) == 0 {
		return nil, errors.New("no scenario")
	}
	return set, nil
}

func writeJSON(path string, rep *report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

func parseConcurrencies(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, c)
	}
	return out, nil
}

// parsePIDs parses -pids and checks that each process can be measured now.
func parsePIDs(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid < 1 {
			return nil, fmt.Errorf("%q is not a process id", f)
		}
		if _, err := procCPU(pid); err != nil {
			return nil, fmt.Errorf("cannot read the CPU time of process %d: %w", pid, err)
		}
		out = append(out, pid)
	}
	return out, nil
}

func parseLevels(list string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(list, ",") {
		switch l := strings.ToLower(strings.TrimSpace(f)); l {
		case "none", "weak", "linearizable", "strong", "auto":
			out = append(out, l)
		default:
			return nil, fmt.Errorf("unknown level %q (none, weak, linearizable, strong, auto)", f)
		}
	}
	return out, nil
}
