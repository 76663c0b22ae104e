package cluster

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// A port one test process reserved is refused to every other until the first ends: go test runs packages in
// parallel, and two of them could otherwise pick the same free port, one for a node it restarts later. (flock
// locks belong to an open file, so a second open in this process stands in for another process.)
func TestReserveExcludesOthers(t *testing.T) {
	p := FreePort(t)
	if reserve(p) {
		t.Fatalf("port %d, reserved by FreePort, was reserved again", p)
	}
	if _, err := os.Stat(filepath.Join(os.TempDir(), "rowboat-test-ports", strconv.Itoa(p))); err != nil {
		t.Fatalf("no reservation file for port %d: %v", p, err)
	}
	q := FreePorts(t, 0, 1, 10)
	for _, port := range []int{q, q + 1, q + 10} {
		if reserve(port) {
			t.Fatalf("port %d of a block FreePorts handed out was reserved again", port)
		}
	}
}
