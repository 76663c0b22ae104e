package main

import (
	"strings"
	"unicode"
)

// splitStatements cuts src into the complete statements it holds, each ended by a ';' that is outside quotes
// ('…', "…", `…`, […]) and comments (-- … and /* … */). A CREATE TRIGGER statement ends only at a ';' that
// follows an END that itself follows a ';' (as sqlite3_complete decides), so neither the ';'s of its body nor
// the END of a CASE expression in it cut it. Each statement comes back
// without its ';', leading comments and surrounding white space; statements that hold only comments are
// dropped. rest is the unterminated text after the last ';' ("" when it holds only space and comments).
func splitStatements(src string) (stmts []string, rest string) {
	start := 0
	var (
		words   []string // the statement's first three words, upper-cased
		last    string   // the statement's last token: a word, upper-cased, or a punctuation character
		prev    string   // the token before last
		trigger bool
	)
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\'' || c == '"' || c == '`' || c == '[':
			end := byte(c)
			if c == '[' {
				end = ']'
			}
			j := strings.IndexByte(src[i+1:], end)
			if j < 0 { // unterminated: the statement goes on on the next line
				return stmts, restOf(src[start:])
			}
			i += j + 2 // a doubled quote ('it''s') simply reads as two quoted strings in a row
			prev, last = last, string(c)
		case c == '-' && strings.HasPrefix(src[i:], "--"):
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				i = len(src)
			} else {
				i += j + 1
			}
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return stmts, restOf(src[start:])
			}
			i += j + 4
		case isWordByte(c):
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			prev, last = last, strings.ToUpper(src[i:j])
			if len(words) < 3 {
				words = append(words, last)
				trigger = isCreateTrigger(words)
			}
			i = j
		case c == ';':
			i++
			if trigger && (last != "END" || prev != ";") {
				prev, last = last, ";"
				continue
			}
			if s := trimStatement(src[start : i-1]); s != "" {
				stmts = append(stmts, s)
			}
			start, words, last, prev, trigger = i, nil, "", "", false
		default:
			if !unicode.IsSpace(rune(c)) {
				prev, last = last, string(c)
			}
			i++
		}
	}
	return stmts, restOf(src[start:])
}

// restOf is the unterminated tail of the input: kept as typed, unless it holds only space and comments.
func restOf(s string) string {
	if trimStatement(s) == "" {
		return ""
	}
	return s
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// isCreateTrigger reports whether a statement's first words start CREATE [TEMP|TEMPORARY] TRIGGER.
func isCreateTrigger(words []string) bool {
	if len(words) < 2 || words[0] != "CREATE" {
		return false
	}
	if words[1] == "TRIGGER" {
		return true
	}
	return len(words) == 3 && (words[1] == "TEMP" || words[1] == "TEMPORARY") && words[2] == "TRIGGER"
}

// trimStatement removes leading comments and surrounding white space. The server guesses from a statement's
// first word whether it reads, so a leading comment would send a SELECT through the Raft log. An
// unterminated block comment is kept: the statement is not complete.
func trimStatement(s string) string {
	for {
		s = strings.TrimSpace(s)
		switch {
		case strings.HasPrefix(s, "--"):
			j := strings.IndexByte(s, '\n')
			if j < 0 {
				return ""
			}
			s = s[j+1:]
		case strings.HasPrefix(s, "/*"):
			j := strings.Index(s[2:], "*/")
			if j < 0 {
				return s
			}
			s = s[j+4:]
		default:
			return s
		}
	}
}

// firstKeyword is a statement's first word, upper-cased, after comments and opening parentheses.
func firstKeyword(sql string) string {
	s := strings.TrimLeft(trimStatement(sql), " \t\r\n(")
	end := strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
	if end < 0 {
		end = len(s)
	}
	return strings.ToUpper(s[:end])
}

// isRead reports whether a statement goes to /db/request at the session's read level rather than to
// /db/execute: the keywords the server itself treats as reads. The server runs a statement that turns out to
// write (WITH … INSERT, PRAGMA x = y) as a write.
func isRead(sql string) bool {
	switch firstKeyword(sql) {
	case "SELECT", "WITH", "VALUES", "EXPLAIN", "PRAGMA":
		return true
	}
	return false
}

// resendable reports whether a statement may be sent again after a node received it without answering:
// only when it cannot write. WITH may lead to INSERT, UPDATE or DELETE, and a PRAGMA with '=' sets something.
func resendable(sql string) bool {
	switch firstKeyword(sql) {
	case "SELECT", "VALUES", "EXPLAIN":
		return true
	case "PRAGMA":
		return !strings.Contains(sql, "=")
	case "WITH":
		return !hasWriteWord(sql)
	}
	return false
}

// hasWriteWord reports whether sql holds INSERT, UPDATE, DELETE or REPLACE as a word (anywhere, quoted text
// too: it errs on the side of "may write").
func hasWriteWord(sql string) bool {
	for i := 0; i < len(sql); {
		if !isWordByte(sql[i]) {
			i++
			continue
		}
		j := i
		for j < len(sql) && isWordByte(sql[j]) {
			j++
		}
		switch strings.ToUpper(sql[i:j]) {
		case "INSERT", "UPDATE", "DELETE", "REPLACE":
			return true
		}
		i = j
	}
	return false
}
