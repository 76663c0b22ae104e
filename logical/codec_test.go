package logical

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

var writeFrozen = flag.Bool("write-frozen", false, "write frozen encodings that are missing under testdata/entries (never overwrites)")

// frozenEntries are the entries whose version-1 encodings are kept under testdata/entries/v1. They must keep
// decoding to exactly these values for as long as rowboat exists.
var frozenEntries = map[string]*Entry{
	"empty": {},
	"ddl":   {Items: []Item{DDL("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), DDL("CREATE INDEX i ON t(v)")}},
	"values": {Items: []Item{RowChange(Change{Table: "t", Op: OpInsert, NewRowID: 1, Row: []Value{
		nil, int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), 1.5, math.Copysign(0, -1), math.Inf(1),
		"", "a\x00b", "héllo", []byte{}, []byte{0, 1, 255},
	}})}},
	"mixed": {Items: []Item{
		DDL("CREATE TABLE w(a, b, c, PRIMARY KEY(a, b)) WITHOUT ROWID"),
		RowChange(Change{Table: "t", Op: OpInsert, NewRowID: 7, Row: []Value{int64(7), "x"}}),
		RowChange(Change{Table: "t", Op: OpUpdate, OldRowID: 7, NewRowID: 9, Row: []Value{int64(9), "y"}}),
		RowChange(Change{Table: "t", Op: OpUpdate, OldRowID: 9, NewRowID: 9, Row: []Value{int64(9), "z"}}),
		RowChange(Change{Table: "w", Op: OpInsert, Row: []Value{"k", int64(1), 2.5}}),
		RowChange(Change{Table: "w", Op: OpUpdate, Row: []Value{"k", int64(2), nil}, Key: []Value{"k", int64(1)}}),
		RowChange(Change{Table: "w", Op: OpDelete, Key: []Value{"k", int64(2)}}),
		RowChange(Change{Table: "t", Op: OpDelete, OldRowID: 9}),
		RowChange(Change{Table: "t", Op: OpUpdate, OldRowID: math.MinInt64, NewRowID: math.MaxInt64, Row: []Value{int64(1), "wrap"}}),
	}},
}

func TestCodec_Frozen(t *testing.T) {
	dir := filepath.Join("..", "testdata", "entries", "v1")
	for name, want := range frozenEntries {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".bin")
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) && *writeFrozen {
				enc, err := Encode(want)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, enc, 0o644); err != nil {
					t.Fatal(err)
				}
				data = enc
			} else if err != nil {
				t.Fatalf("read frozen encoding: %v (run with -write-frozen to create a missing one)", err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode(%s): %v", path, err)
			}
			if !entriesEqual(got, want) {
				t.Fatalf("Decode(%s) =\n%v\nwant\n%v", path, got, want)
			}
			if Version == 1 {
				enc, err := Encode(want)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc, data) {
					t.Fatalf("Encode no longer writes the frozen version-1 bytes of %s: bump Version for a format change", name)
				}
			}
		})
	}
}

func TestCodec_RoundTrip(t *testing.T) {
	for name, e := range frozenEntries {
		t.Run(name, func(t *testing.T) { roundTrip(t, e) })
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		e := randomEntry(rng)
		if !roundTrip(t, e) {
			t.Fatalf("random entry %d", i)
		}
	}
}

func roundTrip(t *testing.T, e *Entry) bool {
	t.Helper()
	enc, err := Encode(e)
	if err != nil {
		t.Errorf("Encode: %v", err)
		return false
	}
	got, err := Decode(enc)
	if err != nil {
		t.Errorf("Decode: %v", err)
		return false
	}
	if !entriesEqual(got, e) {
		t.Errorf("round trip:\n got %v\nwant %v", got, e)
		return false
	}
	return true
}

func TestCodec_Errors(t *testing.T) {
	valid, err := Encode(frozenEntries["mixed"])
	if err != nil {
		t.Fatal(err)
	}
	huge := binary.AppendUvarint([]byte{Version}, math.MaxUint64>>4)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"version 0", []byte{0}, ErrCorrupt},
		{"future version", []byte{Version + 1, 0, 0}, ErrVersion},
		{"huge table count", huge, ErrCorrupt},
		{"huge item count", binary.AppendUvarint([]byte{Version, 0}, math.MaxUint64), ErrCorrupt},
		{"huge string", binary.AppendUvarint([]byte{Version, 0, 1, tagDDL}, 1<<40), ErrCorrupt},
		{"unknown item tag", []byte{Version, 0, 1, 0x7f}, ErrCorrupt},
		{"table index out of range", []byte{Version, 0, 1, tagDelete, 3, 0, 0}, ErrCorrupt},
		{"unknown value tag", []byte{Version, 1, 1, 't', 1, tagInsert, 0, 0, 1, 9}, ErrCorrupt},
		{"truncated real", []byte{Version, 1, 1, 't', 1, tagInsert, 0, 0, 1, valReal, 1, 2}, ErrCorrupt},
		{"bad varint", []byte{Version, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrCorrupt},
		{"trailing bytes", append(append([]byte{}, valid...), 0), ErrCorrupt},
	}
	for i := 1; i < len(valid); i++ {
		tests = append(tests, struct {
			name string
			in   []byte
			want error
		}{fmt.Sprintf("truncated at %d", i), valid[:i], ErrCorrupt})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, %v; want an error wrapping %v", e, err, tc.want)
			}
		})
	}
}

// A few bytes claiming enormous counts and lengths must not make Decode allocate in proportion to them.
func TestCodec_BoundedAllocation(t *testing.T) {
	inputs := [][]byte{
		binary.AppendUvarint([]byte{Version}, 1<<62),
		binary.AppendUvarint([]byte{Version, 0}, 1<<62),
		binary.AppendUvarint([]byte{Version, 1, 1, 't', 1, tagInsert, 0, 0}, 1<<62),
		binary.AppendUvarint([]byte{Version, 1, 1, 't', 1, tagInsert, 0, 0, 1, valBlob}, 1<<62),
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, in := range inputs {
		if _, err := Decode(in); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode(%x) = %v, want ErrCorrupt", in, err)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("Decode of %d tiny inputs allocated %d bytes", len(inputs), grew)
	}
}

func FuzzDecode(f *testing.F) {
	for _, e := range frozenEntries {
		enc, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		enc, err := Encode(randomEntry(rng))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Add([]byte{Version, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("Decode error %v wraps neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		// Whatever decodes must survive a round trip unchanged.
		enc, err := Encode(e)
		if err != nil {
			t.Fatalf("Encode(Decode(x)): %v", err)
		}
		e2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(x))): %v", err)
		}
		enc2, err := Encode(e2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip not stable: %v", err)
		}
	})
}

// entriesEqual compares entries value by value; floats compare by bits so -0 and NaN round-trip exactly.
func entriesEqual(a, b *Entry) bool {
	if len(a.Items) != len(b.Items) {
		return false
	}
	for i := range a.Items {
		x, y := a.Items[i], b.Items[i]
		if x.Kind != y.Kind || x.SQL != y.SQL {
			return false
		}
		cx, cy := x.Change, y.Change
		if cx.Table != cy.Table || cx.Op != cy.Op || cx.OldRowID != cy.OldRowID || cx.NewRowID != cy.NewRowID ||
			!valuesEqual(cx.Row, cy.Row) || !valuesEqual(cx.Key, cy.Key) {
			return false
		}
	}
	return true
}

func valuesEqual(a, b []Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		fa, oka := a[i].(float64)
		fb, okb := b[i].(float64)
		if oka || okb {
			if !oka || !okb || math.Float64bits(fa) != math.Float64bits(fb) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func randomEntry(rng *rand.Rand) *Entry {
	e := &Entry{}
	tables := []string{"t", "w", "tbl with space", `q"uote`, ""}
	for range rng.IntN(20) {
		if rng.IntN(8) == 0 {
			e.Items = append(e.Items, DDL(randomString(rng)))
			continue
		}
		c := Change{Table: tables[rng.IntN(len(tables))], Op: Op(1 + rng.IntN(3))}
		if c.Op != OpInsert {
			c.OldRowID = int64(rng.Uint64())
		}
		if c.Op != OpDelete {
			c.NewRowID = int64(rng.Uint64())
			c.Row = randomValues(rng, rng.IntN(6))
		}
		if c.Op != OpInsert && rng.IntN(2) == 0 {
			c.Key = randomValues(rng, 1+rng.IntN(3))
		}
		e.Items = append(e.Items, RowChange(c))
	}
	return e
}

func randomValues(rng *rand.Rand, n int) []Value {
	if n == 0 {
		return nil
	}
	vs := make([]Value, n)
	for i := range vs {
		switch rng.IntN(5) {
		case 0:
			vs[i] = nil
		case 1:
			vs[i] = int64(rng.Uint64()) >> rng.IntN(64)
		case 2:
			vs[i] = math.Float64frombits(rng.Uint64())
		case 3:
			vs[i] = randomString(rng)
		case 4:
			vs[i] = []byte(randomString(rng))
		}
	}
	return vs
}

func randomString(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteByte(byte(rng.IntN(256)))
	}
	return b.String()
}
