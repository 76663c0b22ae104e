package system

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

// readmeCommands returns the shell commands between the readme-test markers of README.md, with line
// continuations joined and comments dropped.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, "<!-- readme-test:begin -->"), strings.Index(s, "<!-- readme-test:end -->")
	if i < 0 || j < i {
		t.Fatal("README.md has no readme-test markers")
	}
	var cmds []string
	cur := ""
	for _, line := range strings.Split(s[i:j], "\n") {
		line = strings.TrimSpace(line)
		if cur == "" && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "```") || strings.HasPrefix(line, "<!--")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		cmds = append(cmds, cur+line)
		cur = ""
	}
	return cmds
}

// The README's curl examples run verbatim, with only the ports changed to the test cluster's.
func TestREADME_CurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	cmds := readmeCommands(t)
	if len(cmds) < 5 {
		t.Fatalf("found only %d commands in the README", len(cmds))
	}
	c := cluster.Start(t, 3)
	c.Leader(t, wait)
	ports := strings.NewReplacer(
		"localhost:4001", c.Nodes[0].HTTPAddr, "localhost:4011", c.Nodes[1].HTTPAddr, "localhost:4021", c.Nodes[2].HTTPAddr)
	for _, cmd := range cmds {
		if !strings.HasPrefix(cmd, "curl ") {
			t.Fatalf("unexpected command in the README: %s", cmd)
		}
		out, err := exec.Command("bash", "-c", ports.Replace(cmd)+" -w '\\n%{http_code}'").Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		code, body := lines[len(lines)-1], strings.Join(lines[:len(lines)-1], "\n")
		if code != "200" {
			t.Fatalf("%s: HTTP %s: %s", cmd, code, body)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", cmd, err, body)
		}
		if strings.Contains(body, `"error"`) {
			t.Fatalf("%s: an error in the answer: %s", cmd, body)
		}
	}
	// The examples leave two fruits whose random scores are the same on every node.
	leader := c.Leader(t, wait)
	idx := leader.Execute(t, "", "SELECT 1").RaftIndex
	var first [][]any
	for _, n := range c.Nodes {
		got := rows(t, n, "SELECT name, score FROM fruit ORDER BY id", idx)
		if len(got) != 2 || got[0][0] != "apple" || got[1][0] != "pear" || got[0][1] == nil {
			t.Fatalf("%s: %v", n.ID, got)
		}
		if first != nil && !reflect.DeepEqual(got, first) {
			t.Fatalf("%s: %v differs from %v", n.ID, got, first)
		}
		first = got
	}
}
