package main

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// utime 250 and stime 50 ticks: 3 s. The command name holds a space and a ')'.
	line := "1234 (rowboat d) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 300 1000 50\n"
	got, err := parseProcStat([]byte(line))
	if err != nil || got != 3*time.Second {
		t.Fatalf("parseProcStat = %v, %v; want 3s", got, err)
	}
	for _, bad := range []string{
		"1234 rowboatd S 1 2 3",
		"1234 (rowboatd) S 1 2 3",
		"1234 (rowboatd) S 1 1234 1234 0 -1 4194560 100 0 0 0 x 50 0",
	} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
}

func TestProcCPU_CountsThisProcess(t *testing.T) {
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x ^= i
		}
		now, err := procCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v after 10 s of busy work (%d)", now, x)
		}
	}
}

func TestParsePIDs(t *testing.T) {
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	self := strconv.Itoa(os.Getpid())
	if pids, err := parsePIDs(" " + self + ", "); err != nil || len(pids) != 1 || pids[0] != os.Getpid() {
		t.Fatalf("parsePIDs(self) = %v, %v", pids, err)
	}
	if pids, err := parsePIDs(""); err != nil || pids != nil {
		t.Fatalf("parsePIDs(\"\") = %v, %v", pids, err)
	}
	for _, bad := range []string{"x", "0", "-3", self + ",999999999"} {
		if _, err := parsePIDs(bad); err == nil {
			t.Errorf("parsePIDs(%q): no error", bad)
		}
	}
}

func TestWriteTable_CPU(t *testing.T) {
	results := []Result{
		{Scenario: "read", Node: "n1", Level: "none", Concurrency: 16, OpsPerSec: 20000, P50Ms: 0.5, P99Ms: 2, Ops: 10, ServerCPUus: 41.4, ClientCPUus: 30.6},
		{Scenario: "read", Node: "n2", Level: "none", Concurrency: 16, OpsPerSec: 100, P50Ms: 0.5, P99Ms: 2, Ops: 10, ClientCPUus: 12},
	}
	var b bytes.Buffer
	if err := writeTable(&b, results, true); err != nil {
		t.Fatal(err)
	}
	want := `| scenario | node | level | conc | ops/s | rows/s | p50 ms | p99 ms | errors | server CPU µs/op | bench CPU µs/op |
| -------- | ---- | ----- | ---: | ----: | -----: | -----: | -----: | -----: | ---------------: | --------------: |
| read     | n1   | none  |   16 | 20000 |      - |   0.50 |   2.00 |      0 |               41 |              31 |
| read     | n2   | none  |   16 |   100 |      - |   0.50 |   2.00 |      0 |                - |              12 |
`
	if got := b.String(); got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestRun_ReportsCPU(t *testing.T) {
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	// The fake servers run in this process, so "the servers' CPU" is this process's: every run that served
	// requests spent some, though a 30 ms run may round to none at /proc's 10 ms ticks.
	db := newFakeDB()
	urls := startFake(t, db, `{"id":"n1","role":"leader","term":2,"leader_id":"n1"}`, `{"id":"n2","role":"follower","term":2,"leader_id":"n1"}`)
	cfg := testConfig(t, urls)
	cfg.PIDs = []int{os.Getpid()}
	rep, err := run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var server, client float64
	for _, r := range rep.Results {
		if r.ServerCPUus < 0 || r.ClientCPUus < 0 {
			t.Errorf("%s %s: negative CPU %v / %v", r.Scenario, r.Level, r.ServerCPUus, r.ClientCPUus)
		}
		server += r.ServerCPUus
		client += r.ClientCPUus
	}
	if server <= 0 || client <= 0 {
		t.Fatalf("no CPU accounted over %d runs: server %v, bench %v µs/op in all", len(rep.Results), server, client)
	}
	var b bytes.Buffer
	if err := writeTable(&b, rep.Results, true); err != nil || !bytes.Contains(b.Bytes(), []byte("server CPU µs/op")) {
		t.Fatalf("table without the CPU columns (%v):\n%s", err, b.String())
	}
}
