package fsm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rowboatdb/rowboat/internal/durable"
	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

// Snapshot format: magic, the database length (uint64 big-endian), the SQLite database file, then the
// SHA-256 of the database bytes. Restore refuses a stream whose checksum does not match.
var snapshotMagic = []byte("RBSNAP01")

// ErrCorruptSnapshot is wrapped by Restore's error for a snapshot that fails its checks; nothing is changed.
var ErrCorruptSnapshot = errors.New("corrupt snapshot")

// Snapshot pins the current state: it opens a read transaction on a connection of its own, which is cheap.
// The copy happens in Persist, while Apply goes on; WAL mode keeps the pinned state readable meanwhile.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return nil, ErrClosed
	}
	// Raft labels the snapshot with the last index it handed the FSM. At start it replays the log from its
	// latest snapshot, and the database (which skips what it already holds) is ahead of that until the
	// replay reaches it: a snapshot then would hold entries past its label, and a follower that installed it
	// and restarted before its log reached them would find its database ahead of its log, and be refused.
	if h, a := f.handed.Load(), f.applied.Load(); h < a {
		return nil, fmt.Errorf("the log is being replayed (raft has handed entries up to %d; the database holds %d): no snapshot until it has caught up", h, a)
	}
	conn, err := openRO(f.path)
	if err != nil {
		return nil, err
	}
	f.logBytes.Store(0)
	if err := conn.Exec("BEGIN; SELECT count(*) FROM " + metaTable); err != nil {
		conn.Close()
		return nil, fmt.Errorf("pin snapshot: %w", err)
	}
	return &snapshot{f: f, conn: conn, index: f.applied.Load()}, nil
}

type snapshot struct {
	f     *FSM
	conn  *sqlite3.Conn
	index uint64
}

// Persist copies the pinned state with the online backup API into a temporary file, then streams it to sink.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	err := s.f.writeSnapshot(s.conn, sink)
	if err != nil {
		sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	if s.f.opts.OnSnapshot != nil {
		s.f.opts.OnSnapshot(s.index, time.Since(start))
	}
	return nil
}

func (s *snapshot) Release() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// writeSnapshot copies the database src sees into a temporary file and writes it in snapshot format to w.
func (f *FSM) writeSnapshot(src *sqlite3.Conn, w io.Writer) error {
	file, err := f.backupFile(src)
	if err != nil {
		return err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return err
	}
	var hdr [16]byte
	copy(hdr[:], snapshotMagic)
	binary.BigEndian.PutUint64(hdr[8:], uint64(st.Size()))
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(bw, h), file); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return err
	}
	return bw.Flush()
}

// backupFile copies the database src sees into a temporary file and returns it open for reading. The file is
// already unlinked: closing it frees the space.
func (f *FSM) backupFile(src *sqlite3.Conn) (*os.File, error) {
	name, err := f.backupTo(src)
	if err != nil {
		return nil, err
	}
	defer os.Remove(name) // an open file stays readable after its name is gone
	return os.Open(name)
}

// backupTo copies the database src sees into a new temporary file in the data directory and returns its path.
func (f *FSM) backupTo(src *sqlite3.Conn) (string, error) {
	tmp, err := os.CreateTemp(f.dir, "snapshot-*.tmp")
	if err != nil {
		return "", err
	}
	name := tmp.Name()
	tmp.Close()
	dst, err := sqlite3.Open(name, sqlite3.OpenReadWrite)
	if err != nil {
		os.Remove(name)
		return "", err
	}
	b, err := sqlite3.NewBackup(dst, "main", src, "main")
	if err == nil {
		_, err = b.Step(-1)
		if cerr := b.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		// The copy keeps the source's WAL flag; a standalone file is easier to hand around in rollback mode.
		err = dst.Exec("PRAGMA journal_mode = DELETE")
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("backup: %w", err)
	}
	return name, nil
}

// WriteBackup writes a consistent copy of the database as a plain SQLite file to w, and returns the applied
// position of the copy.
func (f *FSM) WriteBackup(w io.Writer) (Position, error) {
	var pos Position
	err := f.withPinnedState(func(conn *sqlite3.Conn, p Position) error {
		pos = p
		file, err := f.backupFile(conn)
		if err != nil {
			return err
		}
		defer file.Close()
		_, err = io.Copy(w, file)
		return err
	})
	return pos, err
}

// withPinnedState runs fn on a connection of its own holding a read transaction, with the applied position of
// the state that transaction sees. The transaction starts under f.mu, like Snapshot's: SQLite opens the WAL
// by name at the first read, and a snapshot installed between opening the database and that read would pair
// the old database file with the new database's WAL (a corrupt copy).
func (f *FSM) withPinnedState(fn func(conn *sqlite3.Conn, pos Position) error) error {
	f.mu.RLock()
	if f.closed {
		f.mu.RUnlock()
		return ErrClosed
	}
	conn, err := openRO(f.path)
	if err != nil {
		f.mu.RUnlock()
		return err
	}
	defer conn.Close()
	if pinnedOpened != nil {
		pinnedOpened()
	}
	pos, err := beginPinned(conn)
	f.mu.RUnlock()
	if err != nil {
		return err
	}
	defer conn.Exec("ROLLBACK")
	return fn(conn, pos)
}

// pinnedOpened, if set (tests), runs between withPinnedState's opening of the database and its first read.
var pinnedOpened func()

// beginPinned opens a read transaction on conn and reads the applied position of the state it sees.
func beginPinned(conn *sqlite3.Conn) (Position, error) {
	if err := conn.Exec("BEGIN"); err != nil {
		return Position{}, err
	}
	s, _, err := conn.Prepare(positionQuery)
	if err == nil {
		_, err = s.Step()
	}
	var idx, term int64
	if s != nil {
		idx, _ = s.Column(0).(int64)
		term, _ = s.Column(1).(int64)
		s.Close()
	}
	if err != nil {
		conn.Exec("ROLLBACK")
		return Position{}, err
	}
	return Position{Index: uint64(idx), Term: uint64(term)}, nil
}

// Restore replaces the database with the snapshot in rc. The snapshot is written to a temporary file and
// checked (length, checksum, readable metadata) before anything is touched; then every connection is closed,
// the file renamed over the database, and the connections reopened. A crash at any point leaves either the old
// database or the new one.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	start := time.Now()
	tmp, err := f.receive(rc)
	if err != nil {
		f.log.Error("snapshot refused", "err", err)
		return err
	}
	defer os.Remove(tmp)
	if err := f.install(tmp); err != nil {
		return err
	}
	if f.opts.OnRestore != nil {
		f.opts.OnRestore(f.applied.Load(), time.Since(start))
	}
	return nil
}

// receive reads a snapshot stream into a checked temporary database file.
func (f *FSM) receive(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var hdr [16]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return "", fmt.Errorf("%w: header: %v", ErrCorruptSnapshot, err)
	}
	if !bytes.Equal(hdr[:8], snapshotMagic) {
		return "", fmt.Errorf("%w: bad magic %q", ErrCorruptSnapshot, hdr[:8])
	}
	size := int64(binary.BigEndian.Uint64(hdr[8:]))
	if size < 0 {
		return "", fmt.Errorf("%w: bad length", ErrCorruptSnapshot)
	}
	tmp, err := os.CreateTemp(f.dir, "restore-*.tmp")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(br, size))
	if err != nil {
		return "", fmt.Errorf("receive snapshot: %w", err)
	}
	if n != size {
		return "", fmt.Errorf("%w: %d bytes, header says %d", ErrCorruptSnapshot, n, size)
	}
	if err := checkSum(br, h); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := checkDatabase(tmp.Name()); err != nil {
		return "", err
	}
	ok = true
	return tmp.Name(), nil
}

func checkSum(r io.Reader, h hash.Hash) error {
	var sum [sha256.Size]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return fmt.Errorf("%w: checksum: %v", ErrCorruptSnapshot, err)
	}
	if !bytes.Equal(sum[:], h.Sum(nil)) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorruptSnapshot)
	}
	return nil
}

// checkDatabase opens a received database and reads its metadata, so a file SQLite cannot read is refused
// before it replaces anything.
func checkDatabase(path string) error {
	c, err := sqlite3.Open(path, sqlite3.OpenReadOnly)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptSnapshot, err)
	}
	defer c.Close()
	if err := c.Exec(appliedQuery); err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptSnapshot, err)
	}
	return nil
}

// install swaps the checked database file at tmp in for the current one.
func (f *FSM) install(tmp string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.closeConns() // the last connection to close checkpoints and removes the WAL
	// From here every error must leave the FSM with open connections, or stop the node: a node with none
	// would fail on its next apply.
	reopen := func(cause error) error {
		if err := f.openConns(); err != nil {
			f.closed = true
			if storageFailure(err) != nil {
				err = fmt.Errorf("%w: %w", ErrStorage, err)
			}
			f.opts.Halt(fmt.Errorf("reopen the database after installing a snapshot (%v): %w", cause, err))
			return err
		}
		return cause
	}
	// The old WAL's removal is durable before the new file takes the database's name: after a power loss,
	// the new database must not be opened with the old one's WAL, whose frames SQLite would read into it.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := durable.Remove(f.path + suffix); err != nil {
			return reopen(fmt.Errorf("remove %s: %w", suffix, err))
		}
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return reopen(fmt.Errorf("install snapshot: %w", err))
	}
	if err := durable.SyncDir(filepath.Dir(f.path)); err != nil {
		// The rename may not survive a power loss, in which case the old database comes back, with an applied
		// index below the snapshot's: catchUpFromSnapshot installs it again at start.
		f.log.Warn("sync the data dir after installing a snapshot", "err", err)
	}
	if err := reopen(nil); err != nil {
		return fmt.Errorf("reopen after restore: %w", err)
	}
	f.handed.Store(f.applied.Load()) // raft goes on from the snapshot's index, which its database holds
	f.log.Info("database restored from snapshot", "applied_index", f.applied.Load())
	return nil
}
