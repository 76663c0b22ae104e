package system

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
	"github.com/rowboatdb/rowboat/internal/faultproxy"
)

// Small snapshot settings so that a few hundred writes compact the log.
var snapshotArgs = []string{"--snapshot-threshold=200", "--trailing-logs=20", "--snapshot-interval=200ms"}

// A follower cut off until the leader compacts its log past the follower's index catches up by snapshot.
func TestSnapshot_FollowerCatchesUpBySnapshot(t *testing.T) {
	// Every node must have joined before a link is cut: cut off from the leader, a node still joining (a slow
	// machine: its retries back off) never would, and two voters with a cut link have no quorum.
	c := cluster.StartWithFaults(t, 3, snapshotArgs...)
	leader := c.Leader(t, wait)
	f := c.Followers(leader)[0]
	leader.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
	c.Link(leader, f).SetMode(faultproxy.Mode{BlackHole: true})
	c.Link(f, leader).SetMode(faultproxy.Mode{BlackHole: true})
	var idx uint64
	for i := range 600 {
		idx = writeRetry(t, c, []any{"INSERT INTO t(v) VALUES(randomblob(?))", 100 + i%50})
	}
	leader = c.Leader(t, wait)
	cluster.Eventually(t, wait, "the leader to snapshot and compact", func() bool {
		return strings.Contains(leader.Log(), "snapshot complete") || strings.Contains(leader.Log(), "compacting logs")
	})
	// While the follower installs the snapshot, readers at level none must only ever see a whole state: a
	// prefix of the log (ids are 1..n, so count = max), at an index that never goes back.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var anomalies []string
	reads := 0
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, r, err := tryQuery(f, "SELECT count(*), coalesce(max(id), 0) FROM t", "level=none")
				if err != nil || r.Status != http.StatusOK || len(d.Results) != 1 || d.Results[0].Error != "" {
					continue // refusing while it restores is fine; a torn answer is not
				}
				at := r.Index()
				v := d.Results[0].Values[0]
				mu.Lock()
				reads++
				if v[0] != v[1] || at < last {
					anomalies = append(anomalies, fmt.Sprintf("count %v, max id %v at index %d (after %d)", v[0], v[1], at, last))
				}
				mu.Unlock()
				last = at
			}
		}()
	}
	c.Net.HealAll()
	rows(t, f, "SELECT 1", idx)
	cluster.Eventually(t, wait, "the follower to install a snapshot", func() bool {
		return strings.Contains(f.Log(), "database restored from snapshot")
	})
	close(stop)
	wg.Wait()
	if len(anomalies) > 0 {
		t.Fatalf("%d of %d reads during the install saw a torn state; first: %s", len(anomalies), reads, anomalies[0])
	}
	t.Logf("%d reads on the follower while it caught up by snapshot, all whole", reads)
	want := tableHash(t, leader, idx)
	for _, n := range c.Nodes {
		if got := tableHash(t, n, idx); got != want {
			t.Fatalf("%s's tables differ from the leader's", n.ID)
		}
	}
}

// A node joining under write load converges.
func TestSnapshot_JoinUnderLoad(t *testing.T) {
	c := cluster.Start(t, 3, snapshotArgs...)
	l := startLoad(t, c, 3)
	l.waitOKs(t, 400, wait)
	n4 := c.Add(true)
	n4.WaitReady(t, wait)
	l.waitOKs(t, 100, wait)
	_, idx := l.finish(t)
	checkAcked(t, c, l, idx)
}

// A node killed while installing a snapshot restarts and converges.
func TestSnapshot_CrashDuringInstall(t *testing.T) {
	c := cluster.Start(t, 3, snapshotArgs...) // all three joined: the one killed must be a member
	leader := c.Leader(t, wait)
	f := c.Followers(leader)[0]
	leader.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
	f.Kill()
	var idx uint64
	for range 15 {
		// Big rows make a snapshot (~15 MB) that takes a moment to send and install.
		idx = leader.Execute(t, "", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100) INSERT INTO t(v) SELECT randomblob(10000) FROM n").RaftIndex
	}
	for range 300 {
		idx = leader.Execute(t, "", "INSERT INTO t(v) VALUES(1)").RaftIndex
	}
	// Start the follower and kill it as soon as a snapshot is being received or installed.
	installing := func() bool {
		for _, pattern := range []string{"raft/snapshots/*.tmp", "db/restore-*.tmp"} {
			if m, _ := filepath.Glob(filepath.Join(f.DataDir, pattern)); len(m) > 0 {
				return true
			}
		}
		return false
	}
	caught := false
	for attempt := 0; attempt < 5 && !caught; attempt++ {
		f.Start()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) && !caught {
			caught = installing()
			if strings.Contains(f.Log(), "database restored from snapshot") {
				break
			}
			time.Sleep(time.Millisecond)
		}
		f.Kill()
		if !caught {
			// It finished before we could kill it: start over from an empty node.
			os.RemoveAll(f.DataDir)
		}
	}
	if !caught {
		t.Fatal("never caught the node while it was installing a snapshot")
	}
	t.Log("killed the node while it was receiving or installing a snapshot")
	f.Start()
	f.WaitReady(t, wait)
	want := tableHash(t, leader, idx)
	if got := tableHash(t, f, idx); got != want {
		t.Fatalf("%s's tables differ from the leader's after a crash during install", f.ID)
	}
}

// A backup loaded back gives identical data on every node; a corrupt upload is refused and changes nothing.
func TestBackupAndLoad(t *testing.T) {
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	leader.Execute(t, "",
		"CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB)",
		"INSERT INTO a(v, r, b) VALUES('x', 1.5, x'00'), ('it''s', 2.0, NULL), ('nul'||char(0), NULL, x'')",
		"CREATE TABLE k(a, b, PRIMARY KEY(a, b)) WITHOUT ROWID",
		"INSERT INTO k VALUES(1, 2), ('x', 'y')",
		"CREATE VIEW av AS SELECT count(*) FROM a",
	)
	idx := leader.Execute(t, "", "SELECT 1").RaftIndex
	before := tableHash(t, leader, idx)

	for _, format := range []string{"binary", "sql"} {
		t.Run(format, func(t *testing.T) {
			// A follower's backup is of what it has applied: min_index makes it include the writes above.
			r, err := c.Nodes[1].Do(http.MethodGet, fmt.Sprintf("/db/backup?min_index=%d&fmt=%s", idx, format), nil)
			if err != nil || r.Status != http.StatusOK || len(r.Body) == 0 {
				t.Fatalf("backup: %v %d", err, r.Status)
			}
			backup := r.Body
			// Change the data, then load the backup through a follower: the change is undone everywhere. (A
			// database file replaces the database; SQL text does with ?replace.)
			leader.Execute(t, "", "DELETE FROM a", "CREATE TABLE extra(x)")
			path := "/db/load"
			if format == "sql" {
				path += "?replace"
			}
			r, err = c.Nodes[2].Do(http.MethodPost, path, backup)
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("load: %v %d %s", err, r.Status, r.Body)
			}
			idx := r.Index()
			for _, n := range c.Nodes {
				if got := tableHash(t, n, idx); got != before {
					t.Fatalf("%s after load differs from before the backup", n.ID)
				}
			}
		})
	}

	t.Run("corrupt uploads", func(t *testing.T) {
		r, err := leader.Do(http.MethodGet, "/db/backup", nil)
		if err != nil {
			t.Fatal(err)
		}
		good := r.Body
		corrupt := append([]byte(nil), good...)
		for i := 100; i < len(corrupt); i += 7 {
			corrupt[i] ^= 0x5a
		}
		for name, body := range map[string][]byte{
			"corrupt sqlite file":   corrupt,
			"truncated sqlite file": good[:len(good)/3],
			"bad sql":               []byte("CREATE TABLE z(x); INSERT INTO nosuch VALUES(1);"),
			"empty":                 nil,
		} {
			r, err := leader.Do(http.MethodPost, "/db/load", body)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", name, r.Status, r.Body)
			}
		}
		idx := leader.Execute(t, "", "SELECT 1").RaftIndex
		for _, n := range c.Nodes {
			if got := tableHash(t, n, idx); got != before {
				t.Fatalf("%s changed after refused loads", n.ID)
			}
		}
	})
}

// A corrupt snapshot on disk is detected and never loaded.
func TestSnapshot_CorruptSnapshotRefused(t *testing.T) {
	c := cluster.Start(t, 1, snapshotArgs...)
	n := c.Nodes[0]
	n.Execute(t, "", "CREATE TABLE t(x)")
	for range 300 {
		n.Execute(t, "", "INSERT INTO t VALUES(1)")
	}
	var snapDir string
	cluster.Eventually(t, wait, "a snapshot on disk", func() bool {
		m, _ := filepath.Glob(filepath.Join(n.DataDir, "raft", "snapshots", "*", "meta.json"))
		for _, p := range m {
			if !strings.HasSuffix(filepath.Dir(p), ".tmp") {
				snapDir = filepath.Dir(p)
			}
		}
		return snapDir != ""
	})
	n.Stop()
	// Corrupt the snapshot and make the database look older than it, so the node would need it.
	state := filepath.Join(snapDir, "state.bin")
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(state, b, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(n.DataDir, "db", "db.sqlite"))
	os.Remove(filepath.Join(n.DataDir, "db", "db.sqlite-wal"))
	os.Remove(filepath.Join(n.DataDir, "db", "db.sqlite-shm"))
	n.ExpectExit()
	n.Start()
	cluster.Eventually(t, wait, "the node to refuse the corrupt snapshot and stop", func() bool { return !n.Running() })
	if log := n.Log(); !bytes.Contains([]byte(log), []byte("snapshot")) || !strings.Contains(strings.ToLower(log), "corrupt") && !strings.Contains(log, "checksum") && !strings.Contains(log, "CRC") {
		t.Fatalf("the node stopped without saying the snapshot is corrupt:\n%s", n.LogTail(10))
	}
	fmt.Fprintln(os.Stderr)
}
