package logical

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Version is the entry format Encode writes. Decode reads every version up to it; encodings of every
// version are frozen under testdata/entries and must keep decoding.
const Version = 1

// ErrCorrupt is returned (wrapped) by Decode for input that is not a well-formed entry.
var ErrCorrupt = errors.New("corrupt entry")

// ErrVersion is returned (wrapped) by Decode for an entry written by a newer rowboat.
var ErrVersion = errors.New("unsupported entry version")

// Format, version 1. All integers are varints (encoding/binary); "zigzag" means binary.PutVarint.
//
//	entry  := version:byte(1) ntables:uvarint table* nitems:uvarint item*
//	table  := len:uvarint bytes                 the names items refer to by index
//	item   := 0x01 len:uvarint sql              DDL
//	        | 0x02 table:uvarint new:zigzag row                           insert
//	        | 0x03 table:uvarint old:zigzag (new-old):zigzag row key      update
//	        | 0x04 table:uvarint old:zigzag key                           delete
//	row    := n:uvarint value*    key := n:uvarint value*
//	value  := 0x00                              NULL
//	        | 0x01 zigzag                       INTEGER
//	        | 0x02 8 bytes little-endian        REAL (IEEE 754 bits)
//	        | 0x03 len:uvarint bytes            TEXT
//	        | 0x04 len:uvarint bytes            BLOB
const (
	tagDDL    = 0x01
	tagInsert = 0x02
	tagUpdate = 0x03
	tagDelete = 0x04

	valNull = 0x00
	valInt  = 0x01
	valReal = 0x02
	valText = 0x03
	valBlob = 0x04
)

// Encode returns the binary encoding of e in the current Version. It fails only for an item of unknown kind or
// a value of a type outside Value's.
func Encode(e *Entry) ([]byte, error) {
	return AppendEncode(make([]byte, 0, 64+32*len(e.Items)), e)
}

// AppendEncode appends the encoding of e to dst.
func AppendEncode(dst []byte, e *Entry) ([]byte, error) {
	// The table dictionary: each name once, in order of first use.
	var names []string
	index := make(map[string]uint64)
	for _, it := range e.Items {
		if it.Kind != KindChange {
			continue
		}
		if _, ok := index[it.Change.Table]; !ok {
			index[it.Change.Table] = uint64(len(names))
			names = append(names, it.Change.Table)
		}
	}
	dst = append(dst, Version)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, n := range names {
		dst = appendString(dst, n)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Items)))
	var err error
	for i, it := range e.Items {
		switch it.Kind {
		case KindDDL:
			dst = append(dst, tagDDL)
			dst = appendString(dst, it.SQL)
		case KindChange:
			c := &it.Change
			switch c.Op {
			case OpInsert:
				dst = append(dst, tagInsert)
				dst = binary.AppendUvarint(dst, index[c.Table])
				dst = binary.AppendVarint(dst, c.NewRowID)
				if dst, err = appendValues(dst, c.Row); err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
			case OpUpdate:
				dst = append(dst, tagUpdate)
				dst = binary.AppendUvarint(dst, index[c.Table])
				dst = binary.AppendVarint(dst, c.OldRowID)
				dst = binary.AppendVarint(dst, c.NewRowID-c.OldRowID) // wraps; Decode adds it back
				if dst, err = appendValues(dst, c.Row); err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
				if dst, err = appendValues(dst, c.Key); err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
			case OpDelete:
				dst = append(dst, tagDelete)
				dst = binary.AppendUvarint(dst, index[c.Table])
				dst = binary.AppendVarint(dst, c.OldRowID)
				if dst, err = appendValues(dst, c.Key); err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
			default:
				return nil, fmt.Errorf("item %d: unknown op %d", i, c.Op)
			}
		default:
			return nil, fmt.Errorf("item %d: unknown kind %d", i, it.Kind)
		}
	}
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendValues(dst []byte, vs []Value) ([]byte, error) {
	dst = binary.AppendUvarint(dst, uint64(len(vs)))
	for _, v := range vs {
		switch x := v.(type) {
		case nil:
			dst = append(dst, valNull)
		case int64:
			dst = append(dst, valInt)
			dst = binary.AppendVarint(dst, x)
		case float64:
			dst = append(dst, valReal)
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
		case string:
			dst = append(dst, valText)
			dst = appendString(dst, x)
		case []byte:
			dst = append(dst, valBlob)
			dst = binary.AppendUvarint(dst, uint64(len(x)))
			dst = append(dst, x...)
		default:
			return nil, fmt.Errorf("cannot encode a value of type %T", v)
		}
	}
	return dst, nil
}

// Decode parses an entry written by Encode in any version up to Version. Malformed or truncated input
// returns an error wrapping ErrCorrupt; it never panics, and it allocates memory in proportion to len(b), never
// to a length or count read from b.
func Decode(b []byte) (*Entry, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrCorrupt)
	}
	if b[0] != Version {
		if b[0] > Version {
			return nil, fmt.Errorf("%w: version %d (this build reads up to %d)", ErrVersion, b[0], Version)
		}
		return nil, fmt.Errorf("%w: version byte %d", ErrCorrupt, b[0])
	}
	d := decoder{b: b, off: 1}
	ntables := d.count()
	tables := make([]string, 0, ntables)
	for i := uint64(0); i < ntables && d.err == nil; i++ {
		tables = append(tables, d.string())
	}
	nitems := d.count()
	e := &Entry{Items: make([]Item, 0, nitems)}
	for i := uint64(0); i < nitems && d.err == nil; i++ {
		tag := d.byte()
		if d.err != nil {
			break
		}
		if tag == tagDDL {
			e.Items = append(e.Items, DDL(d.string()))
			continue
		}
		var c Change
		switch tag {
		case tagInsert:
			c.Op = OpInsert
			c.Table = d.table(tables)
			c.NewRowID = d.varint()
			c.Row = d.values()
		case tagUpdate:
			c.Op = OpUpdate
			c.Table = d.table(tables)
			c.OldRowID = d.varint()
			c.NewRowID = c.OldRowID + d.varint()
			c.Row = d.values()
			c.Key = d.values()
		case tagDelete:
			c.Op = OpDelete
			c.Table = d.table(tables)
			c.OldRowID = d.varint()
			c.Key = d.values()
		default:
			d.fail("item %d: unknown tag 0x%02x", i, tag)
		}
		e.Items = append(e.Items, RowChange(c))
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b)-d.off)
	}
	return e, nil
}

// decoder reads from b, remembering the first error; after an error every read returns a zero value.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrCorrupt, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// count reads a number of elements that each take at least one byte, so it can never exceed what is left.
func (d *decoder) count() uint64 {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)-d.off) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.b)-d.off)
		return 0
	}
	return n
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail("length %d exceeds the %d bytes left", n, len(d.b)-d.off)
		return nil
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) table(tables []string) string {
	i := d.uvarint()
	if d.err != nil {
		return ""
	}
	if i >= uint64(len(tables)) {
		d.fail("table index %d out of range (%d tables)", i, len(tables))
		return ""
	}
	return tables[i]
}

func (d *decoder) values() []Value {
	n := d.count()
	if d.err != nil || n == 0 {
		return nil
	}
	vs := make([]Value, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		switch tag := d.byte(); tag {
		case valNull:
			vs = append(vs, nil)
		case valInt:
			vs = append(vs, d.varint())
		case valReal:
			if len(d.b)-d.off < 8 {
				d.fail("truncated real")
				return nil
			}
			vs = append(vs, math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.off:])))
			d.off += 8
		case valText:
			vs = append(vs, d.string())
		case valBlob:
			b := d.bytes()
			vs = append(vs, append(make([]byte, 0, len(b)), b...))
		default:
			if d.err == nil {
				d.fail("unknown value tag 0x%02x", tag)
			}
		}
	}
	return vs
}
