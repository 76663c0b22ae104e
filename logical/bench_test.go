package logical

// Benchmarks of the replication path, stage by stage and end to end:
//
//	go test -bench . -run '^$' ./logical/
//
// Each stage is measured for single-row INSERT statements (one request holding one statement per operation)
// and for batches of 100 single-row INSERTs (one request of 100 statements, or 100 requests of one), on
// file-backed WAL databases opened like the tests' (synchronous = OFF: durability comes from the Raft log).
// Besides ns/op, every benchmark reports ns/row; Encode also reports the encoded size per row (B/row).
//
// Targets: the full pipeline (capture + encode + decode + apply) under 25µs per single-row statement and under
// 10µs per row in 100-statement batches. These are figures to watch, not assertions: nothing fails on time.

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/rowboatdb/rowboat/internal/sqlite3"
)

const benchSchema = "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER, b BLOB)"

// benchShape is how a batch's single-row INSERTs are grouped.
type benchShape struct {
	name     string
	requests int // requests per Execute call
	perReq   int // statements per request
}

func (s benchShape) rows() int { return s.requests * s.perReq }

var (
	shapeRow      = benchShape{"row", 1, 1}
	shapeBatch    = benchShape{"batch100", 1, 100}
	shapeRequests = benchShape{"requests100", 100, 1}
)

// benchRequests builds the requests of one batch: parameterised single-row INSERTs with a 10-byte key, an
// integer and a 16-byte blob; the rowid is left to SQLite, as most clients do.
func benchRequests(s benchShape) []Request {
	reqs := make([]Request, s.requests)
	n := 0
	for i := range reqs {
		reqs[i].Statements = make([]Statement, s.perReq)
		for j := range reqs[i].Statements {
			blob := make([]byte, 16)
			for k := range blob {
				blob[k] = byte(n*31 + k)
			}
			reqs[i].Statements[j] = Statement{
				SQL:  "INSERT INTO t(k, v, b) VALUES(?, ?, ?)",
				Args: []any{fmt.Sprintf("key-%06d", n), int64(n) * 7919, blob},
			}
			n++
		}
	}
	return reqs
}

// benchConn opens (creating) the WAL database name in dir, with the benchmark schema, closed at cleanup.
func benchConn(b *testing.B, dir, name string) *sqlite3.Conn {
	b.Helper()
	conn := openDB(b, filepath.Join(dir, name))
	if err := conn.Exec(benchSchema); err != nil {
		b.Fatalf("schema: %v", err)
	}
	return conn
}

func benchCapturer(b *testing.B, conn *sqlite3.Conn) *Capturer {
	b.Helper()
	c, err := NewCapturer(conn)
	if err != nil {
		b.Fatalf("NewCapturer: %v", err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func benchApplier(b *testing.B, conn *sqlite3.Conn) *Applier {
	b.Helper()
	a, err := NewApplier(conn)
	if err != nil {
		b.Fatalf("NewApplier: %v", err)
	}
	b.Cleanup(func() { a.Close() })
	return a
}

// benchCapture runs one batch and fails unless every statement succeeded and the entry holds one insert per row.
func benchCapture(b *testing.B, c *Capturer, reqs []Request, rows int) *Entry {
	res, e, err := c.Execute(context.Background(), reqs)
	if err != nil {
		b.Fatalf("Execute: %v", err)
	}
	for _, rr := range res {
		for _, r := range rr {
			if r.Error != "" {
				b.Fatalf("statement failed: %s", r.Error)
			}
		}
	}
	if len(e.Items) != rows {
		b.Fatalf("captured %d items, want %d", len(e.Items), rows)
	}
	return e
}

// benchEntry captures one batch of the shape on a scratch database.
func benchEntry(b *testing.B, s benchShape) *Entry {
	b.Helper()
	c := benchCapturer(b, benchConn(b, b.TempDir(), "entry.db"))
	return benchCapture(b, c, benchRequests(s), s.rows())
}

// reportPerRow reports ns/row for n operations of rows rows each.
func reportPerRow(b *testing.B, n, rows int) {
	if n > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*rows), "ns/row")
	}
}

// countRows fails unless conn's table t holds want rows.
func countRows(b *testing.B, conn *sqlite3.Conn, want int) {
	b.Helper()
	var got any
	query(b, conn, "SELECT count(*) FROM t", func(v []any) { got = v[0] })
	if got != int64(want) {
		b.Fatalf("table t holds %v rows, want %d", got, want)
	}
}

// BenchmarkCapture measures Capturer.Execute: running the batch in a transaction, recording its changes
// through the pre-update hook, and rolling it back.
func BenchmarkCapture(b *testing.B) {
	for _, s := range []benchShape{shapeRow, shapeBatch, shapeRequests} {
		b.Run(s.name, func(b *testing.B) {
			conn := benchConn(b, b.TempDir(), "leader.db")
			c := benchCapturer(b, conn)
			reqs, rows := benchRequests(s), s.rows()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				benchCapture(b, c, reqs, rows)
				n++
			}
			reportPerRow(b, n, rows)
			countRows(b, conn, 0) // every batch was rolled back
		})
	}
}

// BenchmarkEncode measures Encode of a captured entry.
func BenchmarkEncode(b *testing.B) {
	for _, s := range []benchShape{shapeRow, shapeBatch} {
		b.Run(s.name, func(b *testing.B) {
			e, rows := benchEntry(b, s), s.rows()
			var enc []byte
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				var err error
				if enc, err = Encode(e); err != nil {
					b.Fatalf("Encode: %v", err)
				}
				n++
			}
			reportPerRow(b, n, rows)
			b.ReportMetric(float64(len(enc))/float64(rows), "B/row")
		})
	}
}

// BenchmarkDecode measures Decode of an encoded entry.
func BenchmarkDecode(b *testing.B) {
	for _, s := range []benchShape{shapeRow, shapeBatch} {
		b.Run(s.name, func(b *testing.B) {
			rows := s.rows()
			enc, err := Encode(benchEntry(b, s))
			if err != nil {
				b.Fatalf("Encode: %v", err)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				d, err := Decode(enc)
				if err != nil {
					b.Fatalf("Decode: %v", err)
				}
				if len(d.Items) != rows {
					b.Fatalf("decoded %d items, want %d", len(d.Items), rows)
				}
				n++
			}
			reportPerRow(b, n, rows)
		})
	}
}

// BenchmarkApply measures applying an entry in its own transaction (Begin, Apply, Commit), as the FSM does for
// every log entry. The entry's inserts are renumbered before each apply so that every row is new.
func BenchmarkApply(b *testing.B) {
	for _, s := range []benchShape{shapeRow, shapeBatch} {
		b.Run(s.name, func(b *testing.B) {
			e, rows := benchEntry(b, s), s.rows()
			conn := benchConn(b, b.TempDir(), "replica.db")
			a := benchApplier(b, conn)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				for i := range e.Items {
					id := int64(n*rows + i + 1)
					ch := &e.Items[i].Change
					ch.NewRowID, ch.Row[0] = id, id
				}
				if err := a.Begin(); err != nil {
					b.Fatalf("Begin: %v", err)
				}
				if err := a.Apply(e); err != nil {
					a.Rollback()
					b.Fatalf("Apply: %v", err)
				}
				if err := a.Commit(); err != nil {
					b.Fatalf("Commit: %v", err)
				}
				n++
			}
			reportPerRow(b, n, rows)
			countRows(b, conn, n*rows)
		})
	}
}

// BenchmarkPipeline measures the whole path of a write on the leader: capture, encode, decode (as a follower
// would after Raft), and apply in one transaction. Capture and apply use two connections to the same
// database, as on the leader, so each batch sees the rows of the ones before it.
func BenchmarkPipeline(b *testing.B) {
	for _, s := range []benchShape{shapeRow, shapeBatch, shapeRequests} {
		b.Run(s.name, func(b *testing.B) {
			dir := b.TempDir()
			c := benchCapturer(b, benchConn(b, dir, "node.db"))
			conn := benchConn(b, dir, "node.db")
			a := benchApplier(b, conn)
			reqs, rows := benchRequests(s), s.rows()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				e := benchCapture(b, c, reqs, rows)
				enc, err := Encode(e)
				if err != nil {
					b.Fatalf("Encode: %v", err)
				}
				d, err := Decode(enc)
				if err != nil {
					b.Fatalf("Decode: %v", err)
				}
				if err := a.Begin(); err != nil {
					b.Fatalf("Begin: %v", err)
				}
				if err := a.Apply(d); err != nil {
					a.Rollback()
					b.Fatalf("Apply: %v", err)
				}
				if err := a.Commit(); err != nil {
					b.Fatalf("Commit: %v", err)
				}
				n++
			}
			reportPerRow(b, n, rows)
			countRows(b, conn, n*rows)
		})
	}
}
