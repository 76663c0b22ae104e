package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCell(t *testing.T) {
	for _, tc := range []struct {
		v       any
		typ     string
		want    string
		numeric bool
	}{
		{nil, "text", "NULL", false},
		{json.Number("9223372036854775807"), "integer", "9223372036854775807", true},
		{json.Number("1.5"), "real", "1.5", true},
		{"hello", "text", "hello", false},
		{"two\nlines\tand a tab", "text", `two\nlines\tand a tab`, false},
		// BLOBs come as arrays of byte values (?blob_array), whatever the column's declared type.
		{[]any{json.Number("222"), json.Number("173"), json.Number("190"), json.Number("239")}, "blob", "x'deadbeef'", false},
		{[]any{}, "blob", "x''", false},
		{[]any{json.Number("0"), json.Number("255")}, "text", "x'00ff'", false},
		{"abcd", "blob", "abcd", false}, // TEXT in a BLOB column, which looks like base64: still TEXT
		{"3q2+7w==", "text", "3q2+7w==", false},
		{"+Inf", "real", "+Inf", false},
	} {
		got, numeric := cell(tc.v, tc.typ)
		if got != tc.want || numeric != tc.numeric {
			t.Errorf("cell(%#v, %q) = %q, %v; want %q, %v", tc.v, tc.typ, got, numeric, tc.want, tc.numeric)
		}
	}
}

func TestWriteResult(t *testing.T) {
	t.Run("rows", func(t *testing.T) {
		var b strings.Builder
		writeResult(&b, "SELECT * FROM t", Result{
			Columns: []string{"id", "name", "pic"},
			Types:   []string{"integer", "text", "blob"},
			Values: [][]any{
				{json.Number("1"), "apple", []any{json.Number("1"), json.Number("2"), json.Number("255")}},
				{json.Number("10"), nil, nil},
				{json.Number("100"), "", nil},
			},
		}, false)
		want := "" +
			"id  | name  | pic\n" +
			"----+-------+----------\n" +
			"  1 | apple | x'0102ff'\n" +
			" 10 | NULL  | NULL\n" +
			"100 |       | NULL\n" +
			"(3 rows)\n"
		if got := b.String(); got != want {
			t.Fatalf("table:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("no rows", func(t *testing.T) {
		var b strings.Builder
		writeResult(&b, "SELECT x FROM t", Result{Columns: []string{"x"}, Types: []string{"text"}}, false)
		if got, want := b.String(), "x\n-\n(0 rows)\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("empty last cell has no trailing space", func(t *testing.T) {
		var b strings.Builder
		writeTable(&b, []string{"a", "b"}, [][]string{{"x", ""}}, nil)
		if got, want := b.String(), "a | b\n--+--\nx |\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	for _, tc := range []struct {
		sql  string
		res  Result
		want string
	}{
		{"INSERT INTO t VALUES(1)", Result{RowsAffected: 1, LastInsertID: 5}, "1 row affected, last insert id 5\n"},
		{"insert into t select * from u", Result{RowsAffected: 3, LastInsertID: 7}, "3 rows affected, last insert id 7\n"},
		// SQLite's last insert id outlives the INSERT that set it: an UPDATE reports the previous one.
		{"UPDATE t SET x = 1", Result{RowsAffected: 2, LastInsertID: 5}, "2 rows affected\n"},
		{"CREATE TABLE t(x)", Result{}, "0 rows affected\n"},
	} {
		var b strings.Builder
		writeResult(&b, tc.sql, tc.res, true)
		if got := b.String(); got != tc.want {
			t.Errorf("writeResult(%q) = %q, want %q", tc.sql, got, tc.want)
		}
	}
}
