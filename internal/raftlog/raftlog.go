// Package raftlog is a Raft log store (raft.LogStore) made of append-only segment files, with one fdatasync per
// append.
//
// It exists for the write path's latency: hashicorp/raft stores a batch on the leader before it sends it to
// the followers, and a follower stores it before it answers, so two log appends sit in series in every commit.
// bbolt syncs twice per transaction (data pages, then the meta page); this store writes a batch with one write
// and syncs once.
//
// Layout: a directory of segment files named after the index of their first entry (20 digits, ".seg"). A
// segment is a sequence of records, each
//
//	length uint32 | crc32c(payload) uint32 | payload
//	payload = index uint64 | term uint64 | type uint8 | appendedAt int64 (unix ns) | len uint32 | data | len uint32 | extensions
//
// all little-endian. The newest segment takes appends; a new one starts once it passes the size limit. The
// offsets of all records are kept in memory. Where the platform allows, a new segment is preallocated to the
// size limit (fallocate), so an append's fdatasync need not also extend the file: a header of zeros is the
// clean end of a segment's records. A segment is cut to its records' size when the next one starts.
//
// Contracts:
//   - StoreLogs returns only after the records are durable (fdatasync).
//   - The log is contiguous (raft.MonotonicLogStore): an append must continue the last index, except into an
//     empty store, where it may start anywhere (after a snapshot install raft empties the log).
//   - DeleteRange removes a prefix (compaction) or a suffix (a follower dropping conflicting entries), never a
//     range in the middle. Segment files that hold only removed entries are deleted; when a removed prefix
//     shares a segment with kept entries, the new first index is recorded in the file "first" (written
//     atomically) so that it stays removed across restarts.
//   - Open repairs a torn tail, left in the newest segment by a crash during an append that was therefore never
//     acknowledged: a record cut short by the end of the file, or missing a whole sector (a disk writes a
//     sector whole or not at all, and unwritten space reads as zeros, as etcd's WAL also assumes). The file is
//     cut after the last whole record, so that records the torn append did write beyond a lost sector are
//     never read back. Any other damage, in any segment, is refused (ErrCorrupt): those entries were
//     acknowledged. Two kinds of damage cannot be told from a torn append, so the records from there on are
//     dropped, with a warning: a lost sector that holds just a record's header, and a length field damaged so
//     that the record seems to run past the end of the file or into zeros. (Telling them apart needs each
//     append framed as a whole, with its own length and checksum.)
package raftlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/internal/durable"
)

// ErrCorrupt is returned when a record is damaged somewhere other than a torn tail: the store refuses to open
// (and GetLog refuses a record that fails its checksum).
var ErrCorrupt = errors.New("raft log is corrupt")

// ErrNotContiguous is returned by StoreLogs for entries that do not continue the log.
var ErrNotContiguous = errors.New("raft log append is not contiguous")

const (
	headerSize  = 8
	fixedSize   = 8 + 8 + 1 + 8 + 4 + 4 // payload bytes besides data and extensions
	segSuffix   = ".seg"
	maxRecord   = 1 << 31 // a record longer than this is refused on append and treated as damage on open
	defaultSize = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options tune a Store; the zero value is the production setting.
type Options struct {
	// SegmentSize is the size after which appends go to a new segment file (default 64 MiB).
	SegmentSize int64
	// Logger receives the repair of a torn tail; default slog.Default().
	Logger *slog.Logger
}

// Store is a raft.LogStore over segment files in one directory. Its methods are safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu     sync.RWMutex
	segs   []*segment // ascending by base; the last one takes appends
	first  uint64     // first index served (0 when empty)
	last   uint64     // last index stored (0 when empty)
	buf    []byte     // encoding buffer for appends, reused under mu
	closed bool
}

type segment struct {
	base uint64 // index of the first record
	path string // file path
	f    *os.File
	offs []int64 // offs[i] is the offset of record base+i
	size int64   // end of the last record
}

func (s *segment) lastIndex() uint64 { return s.base + uint64(len(s.offs)) - 1 }

// Open opens (creating if needed) the store in dir, repairing a torn tail.
func Open(dir string, opts Options) (*Store, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = defaultSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := durable.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

// load reads every segment, checks continuity and repairs a torn tail of the newest one.
func (s *Store) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var bases []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) || e.IsDir() {
			continue
		}
		base, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil || base == 0 {
			return fmt.Errorf("%w: unexpected file %s in %s", ErrCorrupt, name, s.dir)
		}
		bases = append(bases, base)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	for i, base := range bases {
		newest := i == len(bases)-1
		seg, err := s.openSegment(base, newest)
		if err != nil {
			return err
		}
		if len(seg.offs) == 0 {
			// A segment created just before a crash, or emptied by a repair: nothing to keep.
			seg.f.Close()
			if err := os.Remove(seg.path); err != nil {
				return err
			}
			if !newest {
				return fmt.Errorf("%w: segment %s is empty but newer segments follow", ErrCorrupt, seg.path)
			}
			continue
		}
		if n := len(s.segs); n > 0 && s.segs[n-1].lastIndex()+1 != seg.base {
			return fmt.Errorf("%w: segment %s starts at %d but the previous one ends at %d",
				ErrCorrupt, seg.path, seg.base, s.segs[n-1].lastIndex())
		}
		s.segs = append(s.segs, seg)
	}
	if len(s.segs) > 0 {
		s.first = s.segs[0].base
		s.last = s.segs[len(s.segs)-1].lastIndex()
		first, err := s.readFirst()
		if err != nil {
			return err
		}
		if first > s.first && first <= s.last {
			s.first = first
		}
	}
	return durable.SyncDir(s.dir)
}

// openSegment scans one segment file. In an older segment a damaged record is an error. In the newest one a
// record cut short by the end of the file, or one missing a whole sector (zeros, where an append that a crash
// interrupted wrote nothing), is a torn append that was never acknowledged: the log ends before it, and the file
// is cut there, so that nothing the torn append left behind can be read as records later. Any other damage (a
// record whose every sector was written but whose checksum fails) is corruption, and an error.
func (s *Store) openSegment(base uint64, newest bool) (*segment, error) {
	path := filepath.Join(s.dir, segName(base))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	fileSize := info.Size()
	seg := &segment{base: base, path: path, f: f}
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [headerSize]byte
	var payload []byte
	fail := func(err error) (*segment, error) {
		f.Close()
		return nil, err
	}
	// cut ends the file at the last whole record: what follows is zeros again (preallocated space).
	cut := func(why string, torn bool) (*segment, error) {
		if !newest || !torn {
			return fail(fmt.Errorf("%w: segment %s, record %d at offset %d: %s", ErrCorrupt, path, base+uint64(len(seg.offs)), seg.size, why))
		}
		s.log.Warn("raft log: dropping a torn tail left by a crash during an append",
			"segment", path, "offset", seg.size, "reason", why)
		if err := f.Truncate(seg.size); err != nil {
			return fail(err)
		}
		preallocate(f, s.opts.SegmentSize)
		if err := datasync(f); err != nil {
			return fail(err)
		}
		return seg, nil
	}
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return seg, nil
			}
			if err == io.ErrUnexpectedEOF {
				return cut("short header", true)
			}
			return fail(err)
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		if n == 0 && binary.LittleEndian.Uint32(hdr[4:8]) == 0 {
			// Preallocated space: the records end here. Anything but zeros after this point was written by an
			// append that a crash interrupted before its first sector reached the disk.
			if !newest {
				return seg, nil
			}
			if rest, err := nonZero(r); err != nil {
				return fail(err)
			} else if rest {
				return cut("data after the end of the records", true)
			}
			return seg, nil
		}
		if n < fixedSize || n > maxRecord {
			return cut(fmt.Sprintf("bad length %d", n), hasZeroSector(f, hdr[:], seg.size))
		}
		if seg.size+headerSize+int64(n) > fileSize {
			return cut("short record", true) // checked before allocating: a damaged length may be huge
		}
		if cap(payload) < headerSize+int(n) {
			payload = make([]byte, headerSize+int(n))
		}
		rec := payload[:headerSize+int(n)]
		copy(rec, hdr[:])
		if _, err := io.ReadFull(r, rec[headerSize:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return cut("short record", true)
			}
			return fail(err)
		}
		body := rec[headerSize:]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:8]) {
			return cut("checksum mismatch", hasZeroSector(f, rec, seg.size))
		}
		want := base + uint64(len(seg.offs))
		if idx := binary.LittleEndian.Uint64(body[0:8]); idx != want {
			return fail(fmt.Errorf("%w: segment %s holds index %d where %d belongs", ErrCorrupt, path, idx, want))
		}
		seg.offs = append(seg.offs, seg.size)
		seg.size += headerSize + int64(n)
	}
}

// sectorSize is the unit a disk writes whole or not at all.
const sectorSize = 512

// hasZeroSector reports whether b, a record or its header read from offset off of file f, lies in a sector that
// an interrupted append never wrote. (As in etcd's WAL, a record torn by a crash shows unwritten sectors as
// zeros, because the file's free space reads as zeros.) The record's first sector may also hold the end of the
// record before it, written earlier, so only the record's own piece of it can tell. Its other sectors are
// judged whole, with what follows the record in its last one: every record ends with zeros (the length of
// its absent extensions), so that piece alone read as unwritten whenever a record ended a few bytes into a
// sector, and damage to the record, followed by records an earlier append wrote, was taken for a torn
// tail and the acknowledged records after it were cut off.
func hasZeroSector(f io.ReaderAt, b []byte, off int64) bool {
	first := true
	for len(b) > 0 {
		n := min(int(sectorSize-off%sectorSize), len(b))
		piece := b[:n]
		b, off = b[n:], off+int64(n)
		if !allZero(piece) {
			first = false
			continue
		}
		if first || off%sectorSize == 0 {
			return true // the record's own piece of its first sector, or a whole sector
		}
		// The record's last piece ends inside a sector: the rest of that sector decides (beyond the file's
		// end it reads as zeros, as it would on the disk).
		rest := make([]byte, sectorSize-off%sectorSize)
		k, _ := f.ReadAt(rest, off)
		return allZero(rest[:k])
	}
	return false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// nonZero reports whether anything r has left to read is not zero.
func nonZero(r io.Reader) (bool, error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if !allZero(buf[:n]) {
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// FirstIndex returns the first index stored, or 0 when the log is empty.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.first, nil
}

// LastIndex returns the last index stored, or 0 when the log is empty.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last, nil
}

// IsMonotonic tells raft that the log has no gaps, so it empties it after installing a snapshot.
func (s *Store) IsMonotonic() bool { return true }

// GetLog reads the entry at index into l; raft.ErrLogNotFound if it is not stored.
func (s *Store) GetLog(index uint64, l *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return raft.ErrLogNotFound
	}
	if s.last == 0 || index < s.first || index > s.last {
		return raft.ErrLogNotFound
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].base > index }) - 1
	seg := s.segs[i]
	k := index - seg.base
	start, end := seg.offs[k], seg.size
	if k+1 < uint64(len(seg.offs)) {
		end = seg.offs[k+1]
	}
	rec := make([]byte, end-start)
	if _, err := seg.f.ReadAt(rec, start); err != nil {
		return fmt.Errorf("read raft log index %d: %w", index, err)
	}
	payload := rec[headerSize:]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(rec[4:8]) {
		return fmt.Errorf("%w: index %d in %s fails its checksum", ErrCorrupt, index, seg.path)
	}
	return decode(payload, l)
}

// StoreLog appends one entry.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs appends entries with one write and one fdatasync. The entries must continue the log.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("raft log store is closed")
	}
	next := logs[0].Index
	if s.last != 0 && next != s.last+1 {
		return fmt.Errorf("%w: appending %d after %d", ErrNotContiguous, next, s.last)
	}
	if next == 0 {
		return fmt.Errorf("%w: index 0", ErrNotContiguous)
	}
	buf := s.buf[:0]
	for i, l := range logs {
		if l.Index != next+uint64(i) {
			return fmt.Errorf("%w: entry %d follows %d in one append", ErrNotContiguous, l.Index, next+uint64(i)-1)
		}
		var err error
		if buf, err = encode(buf, l); err != nil {
			return err
		}
	}
	if cap(buf) <= 4<<20 {
		s.buf = buf[:0] // keep the buffer for the next append, unless a huge entry (a load) grew it
	}
	seg, err := s.active(next)
	if err != nil {
		return err
	}
	if _, err := seg.f.WriteAt(buf, seg.size); err != nil {
		// Cut off whatever part was written, so the next append starts at a record boundary.
		_ = seg.f.Truncate(seg.size)
		return fmt.Errorf("append to raft log: %w", err)
	}
	if err := datasync(seg.f); err != nil {
		// The records' durability is unknown; not recording them keeps memory consistent with what a restart
		// would check. Raft treats a failed append as fatal for this round.
		_ = seg.f.Truncate(seg.size)
		return fmt.Errorf("sync raft log: %w", err)
	}
	off := seg.size
	for _, l := range logs {
		seg.offs = append(seg.offs, off)
		off += headerSize + int64(fixedSize+len(l.Data)+len(l.Extensions))
	}
	seg.size = off
	if s.last == 0 {
		s.first = next
	}
	s.last = logs[len(logs)-1].Index
	return nil
}

// active returns the segment that takes an append starting at next, starting a new one when the log is
// empty or the newest segment is full.
func (s *Store) active(next uint64) (*segment, error) {
	if n := len(s.segs); n > 0 {
		last := s.segs[n-1]
		if last.size < s.opts.SegmentSize {
			return last, nil
		}
		// Seal the full segment: drop its unused preallocated space.
		if err := last.f.Truncate(last.size); err != nil {
			return nil, err
		}
		if err := datasync(last.f); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(s.dir, segName(next))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	preallocate(f, s.opts.SegmentSize)
	if err := durable.SyncDir(s.dir); err != nil {
		f.Close()
		return nil, err
	}
	seg := &segment{base: next, path: path, f: f}
	s.segs = append(s.segs, seg)
	return seg, nil
}

// DeleteRange removes the entries min..max inclusive, which must be a prefix or a suffix of the log.
func (s *Store) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("raft log store is closed")
	}
	if s.last == 0 || max < s.first || min > s.last || min > max {
		return nil
	}
	switch {
	case min <= s.first && max >= s.last:
		return s.truncateFrom(0, s.segs[0].base)
	case min <= s.first:
		return s.dropBefore(max + 1)
	case max >= s.last:
		i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].base > min }) - 1
		return s.truncateFrom(i, min)
	default:
		return fmt.Errorf("raft log: cannot delete %d..%d from the middle of %d..%d", min, max, s.first, s.last)
	}
}

// dropBefore makes first the first index served and deletes the segments that hold only earlier entries.
//
// The oldest goes first, and each removal is made durable before the next: a crash part way leaves a log that
// is still contiguous (a newer segment's removal reaching the disk before an older one's would leave a gap that
// Open refuses). On error the in-memory state matches what is left, so a retry (raft compacts again) goes on.
func (s *Store) dropBefore(first uint64) error {
	for len(s.segs) > 1 && s.segs[0].lastIndex() < first {
		seg := s.segs[0]
		seg.f.Close()
		if err := removeFile(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			// Still listed, so a retry (raft compacts again) removes it; its entries are gone all the same
			// (ErrLogNotFound, so that raft sends a follower that needs them a snapshot).
			s.first = max(s.first, seg.lastIndex()+1)
			return err
		}
		s.segs = s.segs[1:]
		s.first = s.segs[0].base
		if err := durable.SyncDir(s.dir); err != nil {
			return err
		}
	}
	if first > s.segs[0].base {
		s.first = first
		return s.writeFirst(first)
	}
	s.first = max(s.first, first)
	return nil
}

const firstFile = "first"

// writeFirst records the first index served when it lies inside the oldest segment.
func (s *Store) writeFirst(first uint64) error {
	tmp := filepath.Join(s.dir, firstFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strconv.FormatUint(first, 10)); err != nil {
		f.Close()
		return err
	}
	if err := datasync(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, firstFile)); err != nil {
		return err
	}
	return durable.SyncDir(s.dir)
}

// readFirst returns the recorded first index, or 0 if none was recorded.
func (s *Store) readFirst() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, firstFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	first, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s holds %q", ErrCorrupt, filepath.Join(s.dir, firstFile), b)
	}
	return first, nil
}

// truncateFrom removes index and everything after it; index lies in segment i.
//
// The newer segments go first, newest first, and only once their removal is durable is segment i cut: a crash
// or an error part way leaves a shorter log that is still contiguous (a segment cut before newer ones were
// gone would leave a gap that Open refuses). On error the in-memory state matches what is left on disk.
func (s *Store) truncateFrom(i int, index uint64) error {
	seg := s.segs[i]
	drop := i + 1
	if index == seg.base {
		drop = i
	}
	for j := len(s.segs) - 1; j >= drop; j-- {
		s.segs[j].f.Close()
		// A segment whose removal failed stays listed (closed: reading it fails), so that the log still ends
		// where the disk says and the caller's retry removes it.
		if err := removeFile(s.segs[j].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		s.segs = s.segs[:j]
		s.resetBounds()
		// Durable before the next (older) one goes: otherwise a crash could keep a newer segment whose
		// older neighbour is gone.
		if err := durable.SyncDir(s.dir); err != nil {
			return err
		}
	}
	if drop == i+1 {
		k := index - seg.base
		if err := seg.f.Truncate(seg.offs[k]); err != nil {
			return err
		}
		if err := datasync(seg.f); err != nil {
			return err
		}
		seg.size = seg.offs[k]
		seg.offs = seg.offs[:k]
		preallocate(seg.f, s.opts.SegmentSize) // it is the newest now and takes the next appends
		s.resetBounds()
	}
	if len(s.segs) == 0 {
		if err := os.Remove(filepath.Join(s.dir, firstFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return durable.SyncDir(s.dir)
	}
	return nil
}

// removeFile is os.Remove; tests make it fail.
var removeFile = os.Remove

// resetBounds sets the last index from the segments held, and both bounds to 0 when none are left.
func (s *Store) resetBounds() {
	if len(s.segs) == 0 {
		s.first, s.last = 0, 0
		return
	}
	s.last = s.segs[len(s.segs)-1].lastIndex()
}

// Close closes the segment files. Later calls fail or find nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.closeFiles()
}

func (s *Store) closeFiles() error {
	var first error
	for _, seg := range s.segs {
		if err := seg.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func segName(base uint64) string { return fmt.Sprintf("%020d%s", base, segSuffix) }

func encode(buf []byte, l *raft.Log) ([]byte, error) {
	n := fixedSize + len(l.Data) + len(l.Extensions)
	if n > maxRecord {
		return buf, fmt.Errorf("raft log entry %d is %d bytes, over the %d-byte limit", l.Index, n, maxRecord)
	}
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(n))
	buf = binary.LittleEndian.AppendUint32(buf, 0) // checksum, filled in below
	buf = binary.LittleEndian.AppendUint64(buf, l.Index)
	buf = binary.LittleEndian.AppendUint64(buf, l.Term)
	buf = append(buf, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(at))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(l.Data)))
	buf = append(buf, l.Data...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(l.Extensions)))
	buf = append(buf, l.Extensions...)
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(buf[start+headerSize:], castagnoli))
	return buf, nil
}

// decode fills l from a checked payload. Data and Extensions alias payload, which the caller gives up.
func decode(p []byte, l *raft.Log) error {
	if len(p) < fixedSize {
		return fmt.Errorf("%w: short record", ErrCorrupt)
	}
	l.Index = binary.LittleEndian.Uint64(p[0:8])
	l.Term = binary.LittleEndian.Uint64(p[8:16])
	l.Type = raft.LogType(p[16])
	l.AppendedAt = time.Time{}
	if at := int64(binary.LittleEndian.Uint64(p[17:25])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	dn := uint64(binary.LittleEndian.Uint32(p[25:29]))
	rest := p[29:]
	if uint64(len(rest)) < dn+4 {
		return fmt.Errorf("%w: record %d has a bad data length", ErrCorrupt, l.Index)
	}
	l.Data = nil
	if dn > 0 {
		l.Data = rest[:dn:dn]
	}
	rest = rest[dn:]
	en := uint64(binary.LittleEndian.Uint32(rest[0:4]))
	rest = rest[4:]
	if uint64(len(rest)) != en {
		return fmt.Errorf("%w: record %d has a bad extensions length", ErrCorrupt, l.Index)
	}
	l.Extensions = nil
	if en > 0 {
		l.Extensions = rest[:en:en]
	}
	return nil
}
