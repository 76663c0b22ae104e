package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestMkdirAllWriteFileRemove(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "c")
	if err := MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(dir, 0o755); err != nil { // exists: fine
		t.Fatal(err)
	}
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "x" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Remove: %v", err)
	}
	if err := Remove(path); err != nil { // gone already: fine
		t.Fatal(err)
	}
	// A path under a file cannot be made: the error comes back.
	if err := MkdirAll(filepath.Join(base, "a", "b", "c", "g", "h"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(base, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(filepath.Join(base, "file", "sub"), 0o755); err == nil {
		t.Fatal("MkdirAll under a file succeeded")
	}
}
