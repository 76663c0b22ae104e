package bench

import (
	"os"
	"testing"

	"github.com/rowboatdb/rowboat/internal/cluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Cleanup()
	os.Exit(code)
}
