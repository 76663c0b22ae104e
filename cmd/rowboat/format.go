package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// cell renders one value of a result as the table shows it, and reports whether it is a number (numbers are
// right-aligned). The shell asks for BLOBs as arrays of byte values (?blob_array), so a BLOB is told from a
// TEXT value by its value, whatever the column's declared type; typ (the declared type, lower-cased) still
// decodes a base64 string in a BLOB column from a server that ignores ?blob_array.
func cell(v any, typ string) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "NULL", false
	case json.Number:
		return x.String(), true
	case float64:
		return fmt.Sprint(x), true
	case []any:
		if b, ok := blobArray(x); ok {
			return b, false
		}
		j, _ := json.Marshal(x)
		return string(j), false
	case string:
		if typ == "blob" && !blobArrays {
			if b, ok := blobHex(x); ok {
				return b, false
			}
		}
		return escapeControl(x), false
	case bool:
		return fmt.Sprint(x), false
	default:
		b, _ := json.Marshal(x)
		return string(b), false
	}
}

// blobArrays is whether the shell's requests ask for BLOBs as arrays (?blob_array): then a string is TEXT.
const blobArrays = true

// blobArray turns a BLOB sent as an array of byte values into SQL's x'…' literal.
func blobArray(vals []any) (string, bool) {
	b := make([]byte, len(vals))
	for i, v := range vals {
		n, ok := v.(json.Number)
		if !ok {
			return "", false
		}
		x, err := n.Int64()
		if err != nil || x < 0 || x > 255 {
			return "", false
		}
		b[i] = byte(x)
	}
	return "x'" + hex.EncodeToString(b) + "'", true
}

// blobHex turns a BLOB as the server sends it (base64, rqlite's encoding) into SQL's x'…' literal. It
// reports false for a string that is not base64, which is a TEXT value stored in a BLOB column.
func blobHex(b64 string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", false
	}
	return "x'" + hex.EncodeToString(b) + "'", true
}

var controlEscaper = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`)

// escapeControl keeps a multi-line or tabbed value on one line of the table.
func escapeControl(s string) string {
	if !strings.ContainsAny(s, "\n\r\t") {
		return s
	}
	return controlEscaper.Replace(s)
}

// writeTable prints an aligned table: a header, a rule, the rows. Cells marked in right are right-aligned. The
// last column is not padded, so lines carry no trailing spaces.
func writeTable(w io.Writer, header []string, rows [][]string, right [][]bool) {
	widths := make([]int, len(header))
	for c, h := range header {
		widths[c] = utf8.RuneCountInString(escapeControl(h))
	}
	for _, row := range rows {
		for c, v := range row {
			if c < len(widths) {
				widths[c] = max(widths[c], utf8.RuneCountInString(v))
			}
		}
	}
	line := func(cells []string, right []bool) {
		var b strings.Builder
		for c := range widths {
			v := ""
			if c < len(cells) {
				v = cells[c]
			}
			if c > 0 {
				b.WriteString(" | ")
			}
			pad := strings.Repeat(" ", widths[c]-utf8.RuneCountInString(v))
			switch {
			case c < len(right) && right[c]:
				b.WriteString(pad + v)
			case c == len(widths)-1:
				b.WriteString(v)
			default:
				b.WriteString(v + pad)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " ")) // an empty last cell
	}
	escaped := make([]string, len(header))
	for c, h := range header {
		escaped[c] = escapeControl(h)
	}
	line(escaped, nil)
	rule := make([]string, len(widths))
	for c, n := range widths {
		rule[c] = strings.Repeat("-", n)
	}
	fmt.Fprintln(w, strings.Join(rule, "-+-"))
	for r, row := range rows {
		var rr []bool
		if r < len(right) {
			rr = right[r]
		}
		line(row, rr)
	}
}

// writeResult prints one statement's result: a table for rows, "N rows affected" for a write. sql is the
// statement, write tells whether it went through the Raft log.
func writeResult(w io.Writer, sql string, res Result, write bool) {
	if len(res.Columns) > 0 {
		rows := make([][]string, len(res.Values))
		right := make([][]bool, len(res.Values))
		for r, vals := range res.Values {
			rows[r] = make([]string, len(vals))
			right[r] = make([]bool, len(vals))
			for c, v := range vals {
				typ := ""
				if c < len(res.Types) {
					typ = res.Types[c]
				}
				rows[r][c], right[r][c] = cell(v, typ)
			}
		}
		writeTable(w, res.Columns, rows, right)
		fmt.Fprintf(w, "(%s)\n", plural(len(rows), "row"))
		return
	}
	if !write {
		return // a read that returns no columns
	}
	fmt.Fprintln(w, writeSummary(sql, res))
}

// writeSummary is "1 row affected, last insert id 5". SQLite's last insert id belongs to the connection and
// outlives the INSERT that set it, so it is shown only for statements that insert.
func writeSummary(sql string, res Result) string {
	s := plural(int(res.RowsAffected), "row") + " affected"
	switch firstKeyword(sql) {
	case "INSERT", "REPLACE", "WITH":
		if res.RowsAffected > 0 && res.LastInsertID != 0 {
			s += fmt.Sprintf(", last insert id %d", res.LastInsertID)
		}
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
