package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	s := String()
	if !strings.HasSuffix(s, "("+runtime.Version()+")") || strings.HasPrefix(s, " ") {
		t.Fatalf("String() = %q, want a version followed by (%s)", s, runtime.Version())
	}
}
