package system

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// cliRun runs the rowboat shell with args and stdin, and returns what it printed and its exit status.
func cliRun(t *testing.T, bin, stdin string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("rowboat %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("rowboat %s\n-- stdout:\n%s-- stderr:\n%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// sessionRe reads the bookmark out of ".session".
var sessionRe = regexp.MustCompile(`session bookmark: min_index=(\d+)`)

func sessionBookmarks(t *testing.T, out string) []uint64 {
	t.Helper()
	var bs []uint64
	for _, m := range sessionRe.FindAllStringSubmatch(out, -1) {
		b, _ := strconv.ParseUint(m[1], 10, 64)
		bs = append(bs, b)
	}
	return bs
}

func TestCLI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rowboat")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/rowboatdb/rowboat/cmd/rowboat").CombinedOutput(); err != nil {
		t.Fatalf("go build rowboat: %v\n%s", err, out)
	}
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	followers := c.Followers(leader)
	a, b := followers[0], followers[1]

	t.Run("one-shot through a follower", func(t *testing.T) {
		out, errOut, status := cliRun(t, bin, "", "-H", a.HTTPAddr,
			"CREATE TABLE fruit(id INTEGER PRIMARY KEY, name TEXT, pic BLOB)",
			"INSERT INTO fruit(name, pic) VALUES('apple', x'c0ffee'); INSERT INTO fruit(name) VALUES('pear')",
			"SELECT id, name, pic FROM fruit ORDER BY id")
		if status != 0 || errOut != "" {
			t.Fatalf("exit status %d, stderr %q", status, errOut)
		}
		want := "0 rows affected\n" +
			"1 row affected, last insert id 1\n" +
			"1 row affected, last insert id 2\n" +
			"id | name  | pic\n" +
			"---+-------+----------\n" +
			" 1 | apple | x'c0ffee'\n" +
			" 2 | pear  | NULL\n" +
			"(2 rows)\n"
		if out != want {
			t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
		}
	})

	t.Run("piped script", func(t *testing.T) {
		script := "-- a script from a pipe: statements span lines, and a ';' in a string is no end\n" +
			"INSERT INTO fruit(name)\n  VALUES('fig; dried');\n" +
			".tables\n" +
			"SELECT name FROM fruit\n  WHERE name LIKE 'fig%';  SELECT count(*) AS n FROM fruit;\n" +
			"SELECT count(*) FROM fruit WHERE id > 1" // the last statement needs no ';'
		out, errOut, status := cliRun(t, bin, script, "-H", b.HTTPAddr)
		if status != 0 || errOut != "" {
			t.Fatalf("exit status %d, stderr %q", status, errOut)
		}
		want := "1 row affected, last insert id 3\n" +
			"fruit\n" +
			"name\n----------\nfig; dried\n(1 row)\n" +
			"n\n-\n3\n(1 row)\n" +
			"count(*)\n--------\n       2\n(1 row)\n"
		if out != want {
			t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
		}
	})

	t.Run("read your writes on another host", func(t *testing.T) {
		// At level none a node reads its own copy: only the session's min_index makes b wait for the
		// write that went through a.
		script := fmt.Sprintf(".session\n.host %s\nINSERT INTO fruit(name) VALUES('quince');\n.session\n"+
			".host %s\n.timer on\nSELECT name FROM fruit WHERE name = 'quince';\n.timer off\n.session\n",
			a.HTTPAddr, b.HTTPAddr)
		out, errOut, status := cliRun(t, bin, script, "-H", leader.HTTPAddr, "-level", "none")
		if status != 0 || errOut != "" {
			t.Fatalf("exit status %d, stderr %q", status, errOut)
		}
		bs := sessionBookmarks(t, out)
		if len(bs) != 3 || bs[1] == 0 || bs[2] < bs[1] {
			t.Fatalf("bookmarks %v: want a non-zero one after the write, never going back", bs)
		}
		if !strings.Contains(out, "name\n------\nquince\n(1 row)\n") {
			t.Fatalf("the read through %s does not show the write through %s:\n%s", b.ID, a.ID, out)
		}
		m := regexp.MustCompile(`served by (\S+) at index (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no timer line:\n%s", out)
		}
		if idx, _ := strconv.ParseUint(m[2], 10, 64); idx < bs[1] {
			t.Fatalf("the read was served by %s at index %d, below the session's write at %d", m[1], idx, bs[1])
		}
	})

	t.Run("cluster commands name the leader", func(t *testing.T) {
		out, errOut, status := cliRun(t, bin, "", "-H", a.HTTPAddr, ".status", ".nodes", ".leader")
		if status != 0 || errOut != "" {
			t.Fatalf("exit status %d, stderr %q", status, errOut)
		}
		for _, want := range []string{
			"id:            " + a.ID + "\n",
			"role:          follower\n",
			"leader:        " + leader.ID + " at " + leader.HTTPAddr + "\n", // .status
			"leader: " + leader.ID + " at " + leader.HTTPAddr + " (term ",   // .leader
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("no %q in:\n%s", want, out)
			}
		}
		// .nodes: the leader's row says so, and only its row.
		nodeRow := regexp.MustCompile(`(?m)^(n\d+) +\| http://\S+ +\| \S+ +\| yes +\| yes +\| (yes|no)$`)
		rows := nodeRow.FindAllStringSubmatch(out, -1)
		if len(rows) != 3 {
			t.Fatalf(".nodes: want 3 reachable voters:\n%s", out)
		}
		for _, r := range rows {
			if (r[2] == "yes") != (r[1] == leader.ID) {
				t.Fatalf(".nodes: %s leader=%s, but the leader is %s:\n%s", r[1], r[2], leader.ID, out)
			}
		}
	})

	t.Run("SQL error exits non-zero", func(t *testing.T) {
		out, errOut, status := cliRun(t, bin, "", "-H", b.HTTPAddr, "SELECT * FROM nosuch")
		if status == 0 || out != "" || errOut != "Error: no such table: nosuch\n" {
			t.Fatalf("exit status %d, stdout %q, stderr %q", status, out, errOut)
		}
		_, errOut, status = cliRun(t, bin, "", "-H", b.HTTPAddr, "-level", "eventual", "SELECT 1")
		if status == 0 || !strings.Contains(errOut, "unknown read level") {
			t.Fatalf("exit status %d, stderr %q", status, errOut)
		}
	})

	t.Run("a node that is down is skipped", func(t *testing.T) {
		down := fmt.Sprintf("127.0.0.1:%d", cluster.FreePort(t))
		out, errOut, status := cliRun(t, bin, "", "-H", down+","+b.HTTPAddr,
			"INSERT INTO fruit(name) VALUES('lime')", "SELECT count(*) FROM fruit WHERE name = 'lime'")
		if status != 0 || !strings.Contains(errOut, "trying "+b.HTTPAddr) {
			t.Fatalf("exit status %d, stderr %q", status, errOut)
		}
		if !strings.Contains(out, "1 row affected") || !strings.HasSuffix(out, "       1\n(1 row)\n") {
			t.Fatalf("stdout:\n%s", out)
		}
	})

	t.Run("planned failover", func(t *testing.T) {
		out, errOut, status := cliRun(t, bin, "", "-H", leader.HTTPAddr, ".leader "+a.ID)
		if status != 0 || errOut != "" || !strings.HasPrefix(out, "leader: "+a.ID+" at "+a.HTTPAddr) {
			t.Fatalf("exit status %d, stdout %q, stderr %q", status, out, errOut)
		}
		if got := c.Leader(t, wait); got != a {
			t.Fatalf("leader is %s after .leader %s", got.ID, a.ID)
		}
	})
}

// .backup and .load round-trip the database through files; .load reports progress.
func TestCLI_BackupAndLoad(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rowboat")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/rowboatdb/rowboat/cmd/rowboat").CombinedOutput(); err != nil {
		t.Fatalf("go build rowboat: %v\n%s", err, out)
	}
	c := cluster.Start(t, 3)
	leader := c.Leader(t, wait)
	filled := leader.Execute(t, "", "CREATE TABLE t(id INTEGER PRIMARY KEY, v)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2000) INSERT INTO t(v) SELECT randomblob(500) FROM n").RaftIndex
	rows(t, c.Nodes[1], "SELECT 1", filled) // the node backed up from has the rows
	dir := t.TempDir()
	for _, format := range []string{"", "sql"} {
		file := filepath.Join(dir, "backup"+format)
		args := []string{"-H", c.Nodes[1].HTTPAddr, ".backup " + file + " " + format}
		if out, errOut, status := cliRun(t, bin, "", args...); status != 0 || !strings.Contains(out, "backed up") {
			t.Fatalf(".backup %s: %d %q %q", format, status, out, errOut)
		}
		idx := leader.Execute(t, "", "DELETE FROM t").RaftIndex
		rows(t, c.Nodes[2], "SELECT 1", idx)
		load := ".load " + file // a SQLite file replaces the database
		if format == "sql" {
			// A SQL dump runs against the database as it is, as rqlite's .restore does: its CREATE TABLE t
			// fails, and nothing changes.
			out, errOut, status := cliRun(t, bin, "", "-H", c.Nodes[2].HTTPAddr, ".restore "+file, "SELECT count(*) FROM t")
			if status == 0 || !strings.Contains(errOut, "already exists") || !strings.Contains(out, "0") {
				t.Fatalf(".restore of a dump over its own tables: %d %q %q, want it refused and the table still empty", status, out, errOut)
			}
			load = ".load --replace " + file
		}
		out, errOut, status := cliRun(t, bin, "", "-H", c.Nodes[2].HTTPAddr, load, "SELECT count(*) FROM t")
		if status != 0 || !strings.Contains(out, "loaded") || !strings.Contains(out, "2000") {
			t.Fatalf("%s: %d %q %q", load, status, out, errOut)
		}
		if !strings.Contains(errOut, "uploading") {
			t.Errorf(".load showed no progress: %q", errOut)
		}
	}
}
