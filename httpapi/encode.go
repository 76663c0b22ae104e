package httpapi

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rowboatdb/rowboat/logical"
)

// resultJSON is one statement's result in rqlite's shapes: a query result (columns, types, values — or types
// and rows with ?associative), a write result (last_insert_id, rows_affected), or an error.
type resultJSON struct {
	Columns      []string         `json:"columns,omitempty"`
	Types        any              `json:"types,omitempty"`
	Values       [][]any          `json:"values,omitempty"`
	Rows         []map[string]any `json:"rows,omitzero"` // omitzero: an empty associative result has "rows":[]
	LastInsertID int64            `json:"last_insert_id,omitempty"`
	RowsAffected int64            `json:"rows_affected,omitempty"`
	Error        string           `json:"error,omitempty"`
	Time         float64          `json:"time,omitempty"`
}

// responseJSON is the body of every data response.
type responseJSON struct {
	Results   []resultJSON `json:"results"`
	RaftIndex uint64       `json:"raft_index,omitempty"`
	Time      float64      `json:"time,omitempty"`

	// SequenceNumber answers rqlite's ?queue: the write is already applied, and its index is the sequence.
	SequenceNumber uint64 `json:"sequence_number,omitempty"`
}

// encoding is how results are shaped: write selects the write shape for statements that returned no
// columns; associative and blobArray are rqlite's ?associative and ?blob_array.
type encoding struct {
	write, associative, blobArray bool
	timings                       bool // rqlite's ?timings: each result says how long its statement took
}

// encodeResults converts results.
func encodeResults(rs []logical.Result, enc encoding) []resultJSON {
	out := make([]resultJSON, len(rs))
	for i := range rs {
		out[i] = encodeResult(&rs[i], enc)
		if enc.timings {
			out[i].Time = seconds(rs[i].Time)
		}
	}
	return out
}

func encodeResult(r *logical.Result, enc encoding) resultJSON {
	if r.Error != "" {
		return resultJSON{Error: r.Error}
	}
	if len(r.Columns) == 0 {
		if enc.write {
			return resultJSON{LastInsertID: r.LastInsertID, RowsAffected: r.RowsAffected}
		}
		return resultJSON{}
	}
	types := make([]string, len(r.Types))
	// rqlite's conversions by declared type, nil for none. (Not its BOOLEAN as true/false: gorqlite's Scan
	// into a bool takes 0 and 1 but refuses a JSON boolean.)
	conv := make([]func(any) any, len(r.Types))
	anyConv := false
	for c := range types {
		types[c] = r.Types[c]
		if types[c] == "" && len(r.Rows) > 0 {
			types[c] = typeOf(r.Rows[0][c]) // an expression has no declared type: name its value's
		}
		switch r.Types[c] {
		case "date", "datetime", "timestamp":
			conv[c], anyConv = timeValue, true
		}
	}
	value := func(c int, v any) any {
		if anyConv && conv[c] != nil {
			v = conv[c](v)
		}
		return jsonValue(v, enc.blobArray)
	}
	if enc.associative {
		tm := make(map[string]string, len(r.Columns))
		for c, name := range r.Columns {
			tm[name] = types[c]
		}
		res := resultJSON{Types: tm, Rows: make([]map[string]any, len(r.Rows))}
		for j, row := range r.Rows {
			m := make(map[string]any, len(row))
			for c, v := range row {
				m[r.Columns[c]] = value(c, v)
			}
			res.Rows[j] = m
		}
		if len(r.Rows) == 0 {
			res.Rows = []map[string]any{}
		}
		return res
	}
	res := resultJSON{Columns: r.Columns, Types: types}
	if len(r.Rows) > 0 {
		res.Values = make([][]any, len(r.Rows))
		for j, row := range r.Rows {
			vals := make([]any, len(row))
			for c, v := range row {
				vals[c] = value(c, v)
			}
			res.Values[j] = vals
		}
	}
	return res
}

func typeOf(v any) string {
	switch v.(type) {
	case int64:
		return "integer"
	case float64:
		return "real"
	case string:
		return "text"
	case []byte:
		return "blob"
	default:
		return ""
	}
}

// sqliteTimeFormats are the text forms of a time that rqlite's SQLite driver reads in a column declared DATE,
// DATETIME or TIMESTAMP (mattn/go-sqlite3's SQLiteTimestampFormats), after a trailing "Z" is dropped.
var sqliteTimeFormats = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// timeValue is a value of a column declared DATE, DATETIME or TIMESTAMP as rqlite answers it: a time in
// RFC 3339 (UTC unless the text gave an offset), from text in one of SQLite's time formats or from an integer
// of Unix seconds (milliseconds past ±1e12). rqlite's clients parse these columns as times (gorqlite's Scan
// into a time.Time, pyrqlite's converters). Text that is not a time is answered as it is, where rqlite
// answers the zero time: the value is not lost.
func timeValue(v any) any {
	switch x := v.(type) {
	case int64:
		t := time.Unix(x, 0)
		if x > 1e12 || x < -1e12 {
			t = time.UnixMilli(x)
		}
		return t.UTC().Format(time.RFC3339Nano)
	case string:
		s := strings.TrimSuffix(x, "Z")
		for _, f := range sqliteTimeFormats {
			if t, err := time.ParseInLocation(f, s, time.UTC); err == nil {
				return t.Format(time.RFC3339Nano)
			}
		}
	}
	return v
}

// jsonValue makes a SQLite value encodable: JSON has no infinities. BLOBs become base64 strings (the
// encoder's []byte rule), as in rqlite, or with blobArray arrays of byte values (rqlite's ?blob_array).
func jsonValue(v any, blobArray bool) any {
	switch v := v.(type) {
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
	case []byte:
		if blobArray {
			return byteArray(v)
		}
	}
	return v
}

// byteArray is a BLOB that encodes as a JSON array of its byte values: x'01ff' is [1,255].
type byteArray []byte

func (b byteArray) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 2+4*len(b))
	out = append(out, '[')
	for i, c := range b {
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendUint(out, uint64(c), 10)
	}
	return append(out, ']'), nil
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
