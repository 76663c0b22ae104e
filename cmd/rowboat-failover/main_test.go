package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-urls", "h:1,h:2", "-clients", "8", "-before", "1s", "-kill", " true ", "-json", "-"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.clients != 8 || cfg.before != time.Second || cfg.after != 5*time.Second || cfg.kill != "true" || cfg.jsonPath != "-" ||
		!reflect.DeepEqual(cfg.urls, []string{"http://h:1", "http://h:2"}) {
		t.Fatalf("config = %+v", cfg)
	}
	for _, args := range [][]string{
		{"-urls", "h:1"},                    // one node cannot fail over
		{"-clients", "0"},                   //
		{"-after", "-1s"},                   //
		{"-pid-dir", ""},                    // no way to kill
		{"extra"},                           //
		{"-urls", "ftp://h:1,h:2"},          //
		{"-before", "soon"},                 //
		{"-urls", "h:1,h:2", "-nosuchflag"}, //
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): want an error", args)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: got %v, want flag.ErrHelp", err)
	}
}

func collectSSE(t *testing.T, stream string) []sseEvent {
	t.Helper()
	var got []sseEvent
	if err := readSSE(strings.NewReader(stream), func(e sseEvent) { got = append(got, e) }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReadSSE(t *testing.T) {
	stream := ": connected to n2\n\n" +
		"id: 7\nevent: leader_changed\ndata: {\"seq\":7}\n\n" +
		": keepalive\n\n" +
		"id: 8\r\nevent: state_changed\r\ndata:{\"a\":1}\r\ndata: {\"b\":2}\r\n\r\n" +
		"event: no_data\n\n" + // no data: not dispatched
		"retry: 1000\nunknown-field\ndata\n\n" + // "data" alone is an empty data line
		"id: 9\nevent: cut_off\ndata: {}\n" // the stream ends before the blank line: not dispatched
	want := []sseEvent{
		{ID: "7", Event: "leader_changed", Data: `{"seq":7}`},
		{ID: "8", Event: "state_changed", Data: "{\"a\":1}\n{\"b\":2}"},
		{ID: "8", Event: "", Data: ""},
	}
	if got := collectSSE(t, stream); !reflect.DeepEqual(got, want) {
		t.Fatalf("readSSE:\n got %q\nwant %q", got, want)
	}
}

func TestReadSSEError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("id: 1\ndata: {}\n\n"), errReader{boom})
	n := 0
	if err := readSSE(r, func(sseEvent) { n++ }); !errors.Is(err, boom) || n != 1 {
		t.Fatalf("readSSE = %v after %d events; want boom after 1", err, n)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// The exact bytes httpapi.handleEvents writes.
const sampleStream = ": connected to n2\n\n" +
	"id: 12\nevent: leader_changed\ndata: {\"seq\":12,\"time\":\"2026-01-02T03:04:05.5Z\",\"type\":\"leader_changed\",\"node\":\"n2\",\"term\":3,\"index\":40,\"leader\":\"n2\"}\n\n" +
	"id: 13\nevent: heartbeat_failed\ndata: {\"seq\":13,\"time\":\"2026-01-02T03:04:06Z\",\"type\":\"heartbeat_failed\",\"node\":\"n2\",\"term\":3,\"index\":41,\"peer\":\"n1\",\"detail\":\"last contact 2026-01-02T03:04:04.75Z\"}\n\n"

func TestParseAndFormatEvents(t *testing.T) {
	evs := collectSSE(t, sampleStream)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	e, err := parseEvent(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := event{Seq: 12, Time: time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC), Type: "leader_changed", Node: "n2", Term: 3, Index: 40, Leader: "n2"}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("parseEvent = %+v, want %+v", e, want)
	}
	kill := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := relTime(e.Time.Sub(kill)) + " " + formatEvent(e, kill); got != "+0.500s n2 leader_changed term=3 leader=n2" {
		t.Errorf("line = %q", got)
	}
	hb, err := parseEvent(evs[1])
	if err != nil {
		t.Fatal(err)
	}
	if got := formatEvent(hb, kill); got != "n2 heartbeat_failed term=3 peer=n1 (last contact -0.250s)" {
		t.Errorf("heartbeat line = %q", got)
	}
	if got := formatEvent(hb, time.Time{}); !strings.HasSuffix(got, "(last contact 2026-01-02T03:04:04.75Z)") {
		t.Errorf("heartbeat line without a reference = %q", got)
	}

	for _, c := range []struct {
		e    event
		want string
	}{
		{event{Type: "leader_changed", Node: "n3", Term: 2}, "n3 leader_changed term=2 leader=none"},
		{event{Type: "state_changed", Node: "n3", Term: 2, State: "candidate", Index: 9}, "n3 state_changed term=2 state=candidate index=9"},
		{event{Type: "leader_ready", Node: "n3", Term: 3, Index: 11}, "n3 leader_ready term=3 index=11"},
		{event{Type: "member_added", Node: "n3", Term: 3, Peer: "n4"}, "n3 member_added term=3 peer=n4"},
		{event{Type: "snapshot_taken", Term: 3, Detail: "at 100"}, "? snapshot_taken term=3 (at 100)"},
	} {
		if got := formatEvent(c.e, kill); got != c.want {
			t.Errorf("formatEvent(%+v) = %q, want %q", c.e, got, c.want)
		}
	}

	// The type falls back to the SSE event name, the seq to its id.
	e, err = parseEvent(sseEvent{ID: "5", Event: "member_removed", Data: `{"node":"n1","peer":"n3"}`})
	if err != nil || e.Type != "member_removed" || e.Seq != 5 {
		t.Errorf("parseEvent fallback = %+v, %v", e, err)
	}
	if _, err := parseEvent(sseEvent{ID: "6", Data: "not json"}); err == nil {
		t.Error("parseEvent of bad JSON: want an error")
	}
}

func TestRelTime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                          "+0.000s",
		412 * time.Millisecond:     "+0.412s",
		-1203 * time.Millisecond:   "-1.203s",
		12*time.Second + 3e6 + 4e5: "+12.003s",
	} {
		if got := relTime(d); got != want {
			t.Errorf("relTime(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestParseExecute(t *testing.T) {
	h := http.Header{}
	h.Set("X-Rowboat-Served-By", "n3")
	h.Set("X-Rowboat-Index", "77")
	cases := []struct {
		status int
		body   string
		want   outcome
	}{
		{200, `{"results":[{"last_insert_id":5,"rows_affected":1}],"raft_index":42}`, outcome{rows: 1, index: 42, servedBy: "n3"}},
		{200, `{"results":[{"rows_affected":0}]}`, outcome{rows: 0, index: 77, servedBy: "n3"}}, // index from the header
		{503, `{"error":"no leader","code":"no_leader"}`, outcome{failure: "503 no_leader"}},
		{503, `{"error":"x","code":"not_leader"}`, outcome{failure: "503 not_leader"}},
		{503, `{"error":"x","code":"unknown_outcome"}`, outcome{failure: "503 unknown_outcome", unknown: true}},
		{504, `{"error":"x","code":"timeout"}`, outcome{failure: "504 timeout", unknown: true}},
		{502, `bad gateway`, outcome{failure: "HTTP 502", unknown: true}},
		{400, `{"error":"x","code":"bad_request"}`, outcome{failure: "400 bad_request"}},
		{200, `{"results":[{"error":"no such table: failover_demo"}]}`, outcome{failure: "200 statement error", unknown: true}},
		{200, `{"results":[]}`, outcome{failure: "200 wrong result count", unknown: true}},
		{200, `{"results":[{"rows_affected":2}]}`, outcome{failure: "200 bad rows_affected", unknown: true}},
		{200, `{"error":"boom"}`, outcome{failure: "200 request error", unknown: true}},
		{200, `<html>`, outcome{failure: "200 undecodable body", unknown: true}},
	}
	for _, c := range cases {
		got := parseExecute(c.status, h, []byte(c.body))
		got.detail = ""
		if got != c.want {
			t.Errorf("parseExecute(%d, %s) = %+v, want %+v", c.status, c.body, got, c.want)
		}
	}
}

func TestNetFailure(t *testing.T) {
	for err, want := range map[error]string{
		fmt.Errorf("dial tcp: %w", syscall.ECONNREFUSED): "connection refused",
		fmt.Errorf("read tcp: %w", syscall.ECONNRESET):   "connection reset",
		fmt.Errorf("Post %q: %w", "http://x", io.EOF):    "connection closed",
		io.ErrUnexpectedEOF:                              "connection closed",
		fmt.Errorf("x: %w", os.ErrDeadlineExceeded):      "timeout",
		errors.New("something else"):                     "network error",
	} {
		if got := netFailure(err); got != want {
			t.Errorf("netFailure(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestParseRows(t *testing.T) {
	rows, err := parseRows([]byte(`{"results":[{"columns":["client","seq"],"types":["integer","integer"],"values":[[0,1],[3,12]]}]}`))
	if err != nil || !reflect.DeepEqual(rows, [][2]int64{{0, 1}, {3, 12}}) {
		t.Fatalf("parseRows = %v, %v", rows, err)
	}
	rows, err = parseRows([]byte(`{"results":[{"columns":["client","seq"],"types":["integer","integer"]}]}`))
	if err != nil || len(rows) != 0 {
		t.Fatalf("parseRows of no rows = %v, %v", rows, err)
	}
	for _, body := range []string{`{"results":[{"error":"no such table"}]}`, `{"results":[]}`, `{"results":[{"values":[[1]]}]}`, `x`} {
		if _, err := parseRows([]byte(body)); err == nil {
			t.Errorf("parseRows(%s): want an error", body)
		}
	}
}

func TestFormatFailures(t *testing.T) {
	got := formatFailures(map[string]int{"connection refused": 7, "503 no_leader": 30, "503 unknown_outcome": 7})
	if want := "503 no_leader: 30, 503 unknown_outcome: 7, connection refused: 7"; got != want {
		t.Errorf("formatFailures = %q, want %q", got, want)
	}
	if got := formatFailures(nil); got != "" {
		t.Errorf("formatFailures(nil) = %q", got)
	}
}

func TestFormatSummary(t *testing.T) {
	zero := 0
	s := &summary{
		OldLeader: "n1", OldLeaderPID: 1234,
		NewLeader: "n3", NewLeaderVia: "leader_changed event from n2", NewLeaderAfter: seconds(830 * time.Millisecond),
		FirstWriteAfter: seconds(912 * time.Millisecond), FirstWriteVia: "client 2 through n3",
		Acknowledged: 4521, FailedAttempts: 37, Failures: map[string]int{"503 no_leader": 30, "connection refused": 7},
		MaxIndex: 900, Lost: &zero,
		Checks:         []nodeCheck{{Node: "n2", Index: 901, Rows: 4521}, {Node: "n3", Index: 900, Rows: 4522}},
		Unacknowledged: 1, OK: true,
	}
	want := `killed leader n1 (pid 1234) at +0.000s
new leader: n3 after 0.83s (leader_changed event from n2)
first successful write after the kill: 0.91s (client 2 through n3)
writes acknowledged: 4521   failed attempts: 37 (503 no_leader: 30, connection refused: 7)
writes lost: 0
  checked at level=none, min_index=900: n2 (index 901, 4521 rows), n3 (index 900, 4522 rows)
  rows present but never acknowledged: 1 (their outcome was unknown when the run stopped)
`
	if got := formatSummary(s); got != want {
		t.Errorf("formatSummary:\n%s\nwant:\n%s", got, want)
	}

	three := 3
	bad := &summary{
		OldLeader: "n2", KillCommand: "scripts/cluster.sh kill-leader",
		KillT0: "when n2's /events stream broke", KillCommandStart: seconds(-1180 * time.Millisecond),
		Acknowledged: 10, Lost: &three,
		Checks: []nodeCheck{{Node: "n1", Missing: 3, Examples: []string{"(0,4)", "(1,4)", "(2,5)"}}, {Node: "n3"}},
		Notes:  []string{"something odd"}, Problems: []string{"no new leader within 30s of the kill"},
		AppliedDespiteFailure: 2, FoundWritten: 1,
	}
	want = `killed leader n2 (with "scripts/cluster.sh kill-leader") at +0.000s
  (+0.000s is when n2's /events stream broke; the command started at -1.180s)
new leader: none within 30s
first successful write after the kill: none
writes acknowledged: 10   failed attempts: 0
writes lost: 3 (n1: 3 missing, e.g. (0,4) (1,4) (2,5))
  checked at level=none, min_index=0: n1 (index 0, 0 rows), n3 (index 0, 0 rows)
  retries that found their row already written: 1 (an earlier attempt's outcome was unknown; it had applied)
  WARNING: 2 writes were found already applied although every earlier attempt had failed as "not applied"
  note: something odd
FAIL: no new leader within 30s of the kill
`
	if got := formatSummary(bad); got != want {
		t.Errorf("formatSummary:\n%s\nwant:\n%s", got, want)
	}

	unchecked := &summary{OldLeader: "n1", OldLeaderPID: 1, Checks: []nodeCheck{{Node: "n2", Error: "HTTP 503: stale"}}}
	if got := formatSummary(unchecked); !strings.Contains(got, "writes lost: unknown (n2: not checked: HTTP 503: stale)\n") {
		t.Errorf("formatSummary without a check:\n%s", got)
	}
}

func TestLeaderPID(t *testing.T) {
	dir := t.TempDir()
	if _, err := leaderPID(dir, "n1"); err == nil {
		t.Error("no pid file: want an error")
	}
	os.WriteFile(filepath.Join(dir, "n1.pid"), []byte("nonsense\n"), 0o644)
	if _, err := leaderPID(dir, "n1"); err == nil {
		t.Error("a pid file without a pid: want an error")
	}
	// This test's own process is not rowboatd --id n1: with /proc, that is caught.
	os.WriteFile(filepath.Join(dir, "n1.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if _, err := os.Stat("/proc/self/cmdline"); err == nil {
		if _, err := leaderPID(dir, "n1"); err == nil || !strings.Contains(err.Error(), "stale") {
			t.Errorf("a pid that is not rowboatd: got %v, want a stale pid file error", err)
		}
	}
	if !hasPair([]string{"rowboatd", "--id", "n1", "--data-dir", "d"}, "--id", "n1") || hasPair([]string{"--id"}, "--id", "n1") {
		t.Error("hasPair")
	}
}
