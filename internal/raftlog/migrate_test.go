package raftlog

import (
	"bytes"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// A data dir from before the log had its own store keeps its log in bolt: OpenFrom moves it, once.
func TestStore_OpenFromMovesABoltLog(t *testing.T) {
	dir := t.TempDir()
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	var logs []*raft.Log
	for i := uint64(5); i <= 600; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1 + i/100, Type: raft.LogCommand, Data: []byte(fmt.Sprint("entry ", i))})
	}
	if err := bolt.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		store, err := OpenFrom(filepath.Join(dir, "log"), bolt, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		first, _ := store.FirstIndex()
		last, _ := store.LastIndex()
		if first != 5 || last != 600 {
			t.Fatalf("round %d: moved log spans %d..%d, want 5..600", round, first, last)
		}
		for _, want := range logs {
			var got raft.Log
			if err := store.GetLog(want.Index, &got); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if got.Term != want.Term || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("round %d: entry %d differs", round, want.Index)
			}
		}
		store.Close()
		if bl, _ := bolt.LastIndex(); bl != 0 {
			t.Fatalf("round %d: bolt still holds entries up to %d", round, bl)
		}
	}
}

// An older rowboat, which logs into bolt, run after the log was moved, leaves bolt with entries the store
// lacks: they are the log to keep, and OpenFrom moves them again instead of deleting them.
func TestStore_OpenFromAfterADowngrade(t *testing.T) {
	dir := t.TempDir()
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	entries := func(from, to, term uint64) []*raft.Log {
		var logs []*raft.Log
		for i := from; i <= to; i++ {
			logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprint("entry ", i))})
		}
		return logs
	}
	if err := bolt.StoreLogs(entries(5, 600, 1)); err != nil {
		t.Fatal(err)
	}
	opts := Options{Logger: slog.New(slog.DiscardHandler)}
	store, err := OpenFrom(filepath.Join(dir, "log"), bolt, opts)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	// The older version ran: its log continues in bolt (after a snapshot, from 601).
	if err := bolt.StoreLogs(entries(601, 650, 2)); err != nil {
		t.Fatal(err)
	}
	store, err = OpenFrom(filepath.Join(dir, "log"), bolt, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	last, _ := store.LastIndex()
	var l raft.Log
	if err := store.GetLog(650, &l); last != 650 || err != nil || l.Term != 2 {
		t.Fatalf("after the downgrade: store ends at %d, entry 650: %v (term %d); want the older version's entries", last, err, l.Term)
	}
	if bl, _ := bolt.LastIndex(); bl != 0 {
		t.Fatalf("bolt still holds entries up to %d", bl)
	}
}
