package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

var _ raft.MonotonicLogStore = (*Store)(nil)

func entry(i, term uint64, size int) *raft.Log {
	data := make([]byte, size)
	for k := range data {
		data[k] = byte(i) + byte(k)
	}
	l := &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: data, AppendedAt: time.Unix(0, int64(i)*1000)}
	if i%3 == 0 {
		l.Extensions = []byte(fmt.Sprintf("ext-%d", i))
	}
	if i%5 == 0 {
		l.Type = raft.LogNoop
		l.Data = nil
	}
	return l
}

func open(t testing.TB, dir string, segSize int64) *Store {
	t.Helper()
	s, err := Open(dir, Options{SegmentSize: segSize})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && bytes.Equal(a.Data, b.Data) &&
		bytes.Equal(a.Extensions, b.Extensions) && a.AppendedAt.Equal(b.AppendedAt)
}

// check compares every index the model holds, and the bounds, with the store.
func check(t *testing.T, s *Store, model *raft.InmemStore, step string) {
	t.Helper()
	mf, _ := model.FirstIndex()
	ml, _ := model.LastIndex()
	sf, _ := s.FirstIndex()
	sl, _ := s.LastIndex()
	if sl != ml {
		t.Fatalf("%s: last index %d, want %d", step, sl, ml)
	}
	if sf != mf {
		t.Fatalf("%s: first index %d, want %d", step, sf, mf)
	}
	for i := mf; ml != 0 && i <= ml; i++ {
		var want, got raft.Log
		if err := model.GetLog(i, &want); err != nil {
			t.Fatalf("%s: model misses %d: %v", step, i, err)
		}
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("%s: get %d: %v", step, i, err)
		}
		if !sameLog(&want, &got) {
			t.Fatalf("%s: entry %d differs: got %+v want %+v", step, i, got, want)
		}
	}
	var l raft.Log
	if err := s.GetLog(sl+1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("%s: get past the end: %v", step, err)
	}
	if sf > 1 {
		if err := s.GetLog(sf-1, &l); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("%s: get before the start: %v", step, err)
		}
	}
}

// TestAgainstModel runs a seeded random sequence of appends, prefix and suffix deletions, deletions of
// everything, and restarts against raft's in-memory store, with segments small enough to roll often.
func TestStore_AgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			dir := t.TempDir()
			s := open(t, dir, 2048)
			model := raft.NewInmemStore()
			next, term := uint64(1), uint64(1)
			for step := 0; step < 400; step++ {
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				name := ""
				switch r := rng.IntN(100); {
				case r < 60:
					n := 1 + rng.IntN(20)
					var batch []*raft.Log
					for k := 0; k < n; k++ {
						batch = append(batch, entry(next, term, rng.IntN(300)))
						next++
					}
					if err := s.StoreLogs(batch); err != nil {
						t.Fatal(err)
					}
					model.StoreLogs(batch)
					name = fmt.Sprintf("append %d", n)
				case r < 72 && last > 0: // compaction
					max := first + uint64(rng.IntN(int(last-first+1)))
					if max == last {
						max--
					}
					if max < first {
						continue
					}
					if err := s.DeleteRange(first, max); err != nil {
						t.Fatal(err)
					}
					model.DeleteRange(first, max)
					name = fmt.Sprintf("delete prefix ..%d", max)
				case r < 84 && last > 0: // a follower drops conflicting entries; new ones come with a new term
					min := first + uint64(rng.IntN(int(last-first+1)))
					if min == first {
						min++
					}
					if min > last {
						continue
					}
					if err := s.DeleteRange(min, last); err != nil {
						t.Fatal(err)
					}
					model.DeleteRange(min, last)
					next, term = min, term+1
					name = fmt.Sprintf("delete suffix %d..", min)
				case r < 88 && last > 0: // a snapshot install empties the log; the next entry follows the snapshot
					if err := s.DeleteRange(first, last); err != nil {
						t.Fatal(err)
					}
					model.DeleteRange(first, last)
					next = last + 1 + uint64(rng.IntN(50))
					name = "delete all"
				default:
					s.Close()
					s = open(t, dir, 2048)
					name = "reopen"
				}
				check(t, s, model, fmt.Sprintf("step %d (%s)", step, name))
			}
		})
	}
}

func TestStore_RefusesGapsAndMiddleDeletes(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	if err := s.StoreLogs([]*raft.Log{entry(1, 1, 10), entry(2, 1, 10), entry(3, 1, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(entry(5, 1, 10)); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("gap: %v", err)
	}
	if err := s.StoreLogs([]*raft.Log{entry(4, 1, 10), entry(6, 1, 10)}); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("gap inside a batch: %v", err)
	}
	if err := s.DeleteRange(2, 2); err == nil {
		t.Fatal("a deletion in the middle was accepted")
	}
	if last, _ := s.LastIndex(); last != 3 {
		t.Fatalf("refused appends changed the log: last %d", last)
	}
}

// segments lists the store's segment files, oldest first.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func fill(t *testing.T, dir string, n uint64) {
	t.Helper()
	s := open(t, dir, 1024)
	for i := uint64(1); i <= n; i++ {
		if err := s.StoreLog(entry(i, 1, 100)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
}

func TestStore_RepairsTornTail(t *testing.T) {
	// Damage is placed relative to the end of the records, which (with preallocation) is not the file's end.
	cases := map[string]func(t *testing.T, path string, end int64){
		"cut short": func(t *testing.T, path string, end int64) {
			os.Truncate(path, end-7)
		},
		"header written, the rest of the record not": func(t *testing.T, path string, end int64) {
			// The header's sector reached the disk, the record's next sector did not (zeros).
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			hdr := []byte{0, 4, 0, 0, 1, 2, 3, 4} // 1024 bytes: the record crosses a sector boundary
			f.WriteAt(hdr, end)
			f.Close()
		},
		"huge length appended": func(t *testing.T, path string, end int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4}, end) // 2 GiB: must not be allocated
			f.Close()
		},
		"zeros appended": func(t *testing.T, path string, end int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt(make([]byte, 4096), end)
			f.Close()
		},
		"later records of a torn append behind a lost first sector": func(t *testing.T, path string, end int64) {
			// The append of 41..44 reached the disk except for the sector that holds 41's header (ending just
			// after it).
			var buf []byte
			for i := uint64(41); i <= 44; i++ {
				buf, _ = encode(buf, entry(i, 9, 100))
			}
			clear(buf[:headerSize])
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt(buf, end)
			f.Close()
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			fill(t, dir, 40)
			segs := segments(t, dir)
			if len(segs) < 3 {
				t.Fatalf("want several segments, got %d", len(segs))
			}
			s := open(t, dir, 1024)
			end := s.segs[len(s.segs)-1].size
			s.Close()
			damage(t, segs[len(segs)-1], end)
			s = open(t, dir, 1024)
			last, _ := s.LastIndex()
			want := uint64(40)
			if name == "cut short" {
				want = 39
			}
			if last != want {
				t.Fatalf("last index after repair %d, want %d", last, want)
			}
			// The repaired log takes appends and keeps them across a restart.
			if err := s.StoreLog(entry(want+1, 2, 100)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = open(t, dir, 1024)
			var l raft.Log
			if err := s.GetLog(want+1, &l); err != nil || !sameLog(&l, entry(want+1, 2, 100)) {
				t.Fatalf("entry after repair: %v %+v", err, l)
			}
			// Nor is anything the torn append left behind read as records after it.
			if last, _ := s.LastIndex(); last != want+1 {
				t.Fatalf("last index after an append to the repaired log and a restart %d, want %d", last, want+1)
			}
			// Nothing the torn append left behind is read as records once appends have covered the hole.
			for i := want + 2; i <= want+6; i++ {
				if err := s.StoreLog(entry(i, 2, 50)); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			s = open(t, dir, 1024)
			if last, _ := s.LastIndex(); last != want+6 {
				t.Fatalf("last index after more appends and a restart %d, want %d", last, want+6)
			}
			if err := s.GetLog(want+6, &l); err != nil || l.Term != 2 {
				t.Fatalf("entry %d after a restart: %v, term %d, want term 2", want+6, err, l.Term)
			}
		})
	}
}

// Damage that no crash leaves (every sector of the record was written, yet its checksum fails) is corruption,
// even in the newest segment: the entries there were acknowledged, and Open must not drop them.
func TestStore_RefusesDamageACrashCannotLeave(t *testing.T) {
	cases := map[string]func(t *testing.T, path string, offs []int64, end int64){
		"a byte of the last record flipped": func(t *testing.T, path string, offs []int64, end int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte{0xff}, end-3)
			f.Close()
		},
		"a byte of an earlier record flipped": func(t *testing.T, path string, offs []int64, end int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte{0xff}, offs[1]+headerSize+40)
			f.Close()
		},
		"a bad length where the records end, in a written sector": func(t *testing.T, path string, offs []int64, end int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte{5, 0, 0, 0, 1, 2, 3, 4}, end)
			f.Close()
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, 1<<20)
			for i := uint64(1); i <= 10; i++ {
				if err := s.StoreLog(entry(i, 1, 100)); err != nil {
					t.Fatal(err)
				}
			}
			seg := s.segs[len(s.segs)-1]
			path, offs, end := seg.path, slices.Clone(seg.offs), seg.size
			s.Close()
			damage(t, path, offs, end)
			s, err := Open(dir, Options{SegmentSize: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				last, _ := s.LastIndex()
				s.Close()
				t.Fatalf("Open accepted the damaged log, which now ends at %d", last)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}

// Every record ends with zeros (its extensions' length). A record that ends a few bytes into a sector therefore
// has an all-zero piece there, which read as a sector a crash never wrote: damage to such a record, followed by
// records appended earlier, was taken for a torn tail, and the acknowledged records after it were cut off.
func TestStore_RefusesDamageToARecordEndingInZeros(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	for i := uint64(1); i <= 200; i++ {
		e := entry(i, 1, 90+int(i*7)%200)
		e.Extensions, e.Type = nil, raft.LogCommand
		if err := s.StoreLog(e); err != nil {
			t.Fatal(err)
		}
	}
	seg := s.segs[len(s.segs)-1]
	path, offs := seg.path, slices.Clone(seg.offs)
	s.Close()
	victim := -1
	for k := 0; k+1 < len(offs); k++ {
		if end := offs[k+1]; end%sectorSize >= 1 && end%sectorSize <= 4 && end/sectorSize > offs[k]/sectorSize {
			victim = k
			break
		}
	}
	if victim < 0 || victim > 150 {
		t.Fatalf("no record ends 1-4 bytes into a sector early in the log (found %d): change the sizes", victim)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, offs[victim]+headerSize+20)
	f.Close()
	s, err = Open(dir, Options{SegmentSize: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		last, _ := s.LastIndex()
		s.Close()
		t.Fatalf("Open accepted damage to record %d of 200 and now ends at %d", victim+1, last)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
}

func TestStore_RefusesDamageBeforeTheTail(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 40)
	segs := segments(t, dir)
	f, err := os.OpenFile(segs[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff, 0xff}, 30)
	f.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with a damaged old segment: %v, want ErrCorrupt", err)
	}

	// A missing middle segment is a gap, also refused.
	dir = t.TempDir()
	fill(t, dir, 40)
	segs = segments(t, dir)
	os.Remove(segs[1])
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with a missing segment: %v, want ErrCorrupt", err)
	}
}

func TestStore_DeleteRemovesSegmentFiles(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 40)
	before := len(segments(t, dir))
	s := open(t, dir, 1024)
	if err := s.DeleteRange(1, 30); err != nil {
		t.Fatal(err)
	}
	if after := len(segments(t, dir)); after >= before {
		t.Fatalf("compaction kept %d of %d segment files", after, before)
	}
	if first, _ := s.FirstIndex(); first != 31 {
		t.Fatalf("first index %d, want 31", first)
	}
	if err := s.DeleteRange(31, 40); err != nil {
		t.Fatal(err)
	}
	if n := len(segments(t, dir)); n != 0 {
		t.Fatalf("deleting everything left %d segment files", n)
	}
	if err := s.StoreLog(entry(100, 3, 10)); err != nil {
		t.Fatalf("append to an emptied log: %v", err)
	}
	if first, _ := s.FirstIndex(); first != 100 {
		t.Fatalf("first index %d, want 100", first)
	}
}

// BenchmarkStoreLog measures one durable single-entry append, the shape of a commit under light load, for
// this store and for raft-boltdb.
func BenchmarkStoreLog(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 200)
	run := func(b *testing.B, store raft.LogStore) {
		for i := 0; i < b.N; i++ {
			if err := store.StoreLog(&raft.Log{Index: uint64(i + 1), Term: 1, Data: payload}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("raftlog", func(b *testing.B) { run(b, open(b, b.TempDir(), 0)) })
	b.Run("boltdb", func(b *testing.B) {
		bs, err := raftboltdb.NewBoltStore(filepath.Join(b.TempDir(), "raft.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer bs.Close()
		run(b, bs)
	})
}

// On Linux a new segment is preallocated; a clean restart reads its records and keeps the space (no repair).
func TestStore_PreallocatedSegmentReopensClean(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("preallocation is Linux only")
	}
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	for i := uint64(1); i <= 10; i++ {
		if err := s.StoreLog(entry(i, 1, 100)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	seg := segments(t, dir)[0]
	info, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != 1<<20 {
		t.Fatalf("segment is %d bytes, want the preallocated %d", info.Size(), 1<<20)
	}
	s = open(t, dir, 1<<20)
	if last, _ := s.LastIndex(); last != 10 {
		t.Fatalf("last index %d after a clean restart, want 10", last)
	}
	if after, _ := os.Stat(seg); after.Size() != info.Size() {
		t.Fatalf("a clean restart changed the segment from %d to %d bytes", info.Size(), after.Size())
	}
	if err := s.StoreLog(entry(11, 1, 100)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := s.GetLog(11, &l); err != nil || !sameLog(&l, entry(11, 1, 100)) {
		t.Fatalf("append after restart: %v", err)
	}
}

// segmented fills a log in dir with 40 entries over segments of 1 KiB and opens it, failing the test unless
// it has at least n segments.
func segmented(t *testing.T, dir string, n int) *Store {
	t.Helper()
	fill(t, dir, 40)
	s := open(t, dir, 1024)
	if len(s.segs) < n {
		t.Fatalf("want at least %d segments, got %d", n, len(s.segs))
	}
	return s
}

// A suffix removal that stops part way (a crash, a failed unlink) leaves a log that opens: shorter, still
// contiguous, and never missing an entry below the removal.
func TestStore_SuffixRemovalStoppedPartWay(t *testing.T) {
	dir := t.TempDir()
	s := segmented(t, dir, 3)
	min := s.segs[1].base + 2 // inside the second segment: the newer ones go, the second is cut
	newest := s.segs[len(s.segs)-1].path
	failure := errors.New("unlink failed")
	removeFile = func(path string) error {
		if path == newest {
			return failure
		}
		return os.Remove(path)
	}
	defer func() { removeFile = os.Remove }()
	if err := s.DeleteRange(min, 40); !errors.Is(err, failure) {
		t.Fatalf("DeleteRange: %v, want the unlink's failure", err)
	}
	if last, _ := s.LastIndex(); last != 40 {
		t.Fatalf("last index after the failed removal %d, want 40 (nothing was removed)", last)
	}
	removeFile = os.Remove
	s.Close()
	s = open(t, dir, 1024) // the gap the old order left made this fail
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 1 || last < min-1 {
		t.Fatalf("reopened log spans %d..%d, want 1..(at least %d)", first, last, min-1)
	}
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	// The caller's retry completes the removal.
	if err := s.DeleteRange(min, last); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, 1024)
	if last, _ := s.LastIndex(); last != min-1 {
		t.Fatalf("last index after the retried removal and a restart %d, want %d", last, min-1)
	}
	s.Close()
}

// A compaction whose removal of a segment fails leaves a log that serves what it should: the entries it was
// asked to drop are not found (raft sends a lagging follower a snapshot instead of giving up on a closed
// file), later ones read, and raft's next compaction, retried, completes. The old loop removed segments from a
// list it changed only at the end, so every retry failed on a file already gone.
func TestStore_PrefixRemovalStoppedPartWay(t *testing.T) {
	dir := t.TempDir()
	s := segmented(t, dir, 4)
	second := s.segs[1]
	upto := s.segs[2].base + 1 // inside the third segment: the two older ones go
	failure := errors.New("unlink failed")
	removeFile = func(path string) error {
		if path == second.path {
			return failure
		}
		return os.Remove(path)
	}
	defer func() { removeFile = os.Remove }()
	if err := s.DeleteRange(1, upto); !errors.Is(err, failure) {
		t.Fatalf("DeleteRange: %v, want the unlink's failure", err)
	}
	var l raft.Log
	if err := s.GetLog(second.base, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("an entry of the segment whose removal failed: %v, want ErrLogNotFound", err)
	}
	if err := s.GetLog(upto+1, &l); err != nil {
		t.Fatalf("entry %d, past the removal: %v", upto+1, err)
	}
	removeFile = os.Remove
	if err := s.DeleteRange(1, upto); err != nil {
		t.Fatalf("the retried compaction: %v", err)
	}
	if first, _ := s.FirstIndex(); first != upto+1 {
		t.Fatalf("first index after the retried compaction %d, want %d", first, upto+1)
	}
	s.Close()
	s = open(t, dir, 1024)
	if first, _ := s.FirstIndex(); first != upto+1 {
		t.Fatalf("first index after a restart %d, want %d", first, upto+1)
	}
	if _, err := os.Stat(second.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the segment whose removal failed is still there: %v", err)
	}
}
