package httpapi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rowboatdb/rowboat/followerread"
	"github.com/rowboatdb/rowboat/logical"
)

// params are the query-string options of the data API.
type params struct {
	transaction, redirect, timings, pretty, associative bool
	blobArray                                           bool // BLOBs as arrays of byte values, not base64
	queue                                               bool // rqlite's queued write: executed at once here
	timeout                                             time.Duration
	read                                                followerread.Request
}

func flag(q url.Values, name string) (bool, error) {
	vs, ok := q[name]
	if !ok {
		return false, nil
	}
	switch v := strings.ToLower(vs[0]); v {
	case "", "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	default:
		return false, fmt.Errorf("%w: ?%s=%s: want true or false", errBadRequest, name, vs[0])
	}
}

// requestTimeout is ?timeout, or rqlite's ?db_timeout (its bound on running the statements) when there is no
// ?timeout: the request's own bound is the nearest thing here.
func requestTimeout(q url.Values) (time.Duration, error) {
	if _, ok := q["timeout"]; !ok && q.Has("db_timeout") {
		return duration(q, "db_timeout")
	}
	return duration(q, "timeout")
}

// maxSeconds is the longest duration, in seconds, that a time.Duration holds (about 292 years).
const maxSeconds = float64(math.MaxInt64 / int64(time.Second))

func duration(q url.Values, name string) (time.Duration, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		// rqlite clients sometimes send plain seconds.
		if secs, ferr := strconv.ParseFloat(v, 64); ferr == nil && secs >= 0 && secs <= maxSeconds {
			return time.Duration(secs * float64(time.Second)), nil
		}
		return 0, fmt.Errorf("%w: ?%s=%s: want a duration such as 500ms or 2s", errBadRequest, name, v)
	}
	if d < 0 {
		return 0, fmt.Errorf("%w: ?%s=%s: must not be negative", errBadRequest, name, v)
	}
	return d, nil
}

// parseParams reads every data-API option, refusing malformed ones.
func parseParams(r *http.Request) (p params, err error) {
	// r.URL.Query drops, without a word, every pair that holds a raw ';' (which Go no longer takes for a
	// separator): "?q=SELECT 1;" would lose its SQL.
	if strings.Contains(r.URL.RawQuery, ";") {
		return p, fmt.Errorf("%w: the query string holds a raw ';': encode it as %%3B (curl -G --data-urlencode 'q=...' does)", errBadRequest)
	}
	q := r.URL.Query()
	for _, f := range []struct {
		dst  *bool
		name string
	}{{&p.transaction, "transaction"}, {&p.redirect, "redirect"}, {&p.timings, "timings"}, {&p.pretty, "pretty"},
		{&p.associative, "associative"}, {&p.blobArray, "blob_array"}, {&p.queue, "queue"}} {
		if *f.dst, err = flag(q, f.name); err != nil {
			return p, err
		}
	}
	if p.timeout, err = requestTimeout(q); err != nil {
		return p, err
	}
	if p.read.Level, err = followerread.ParseLevel(strings.ToLower(q.Get("level"))); err != nil {
		return p, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	mi := q.Get("min_index")
	if mi == "" {
		mi = r.Header.Get(headerMinIndex)
	}
	if mi != "" {
		if p.read.MinIndex, err = strconv.ParseUint(mi, 10, 64); err != nil {
			return p, fmt.Errorf("%w: min_index %q: want a log index", errBadRequest, mi)
		}
	}
	if p.read.MinIndexTimeout, err = duration(q, "min_index_timeout"); err != nil {
		return p, err
	}
	if p.read.MinIndexTimeout == 0 && q.Get("min_index_timeout") != "" {
		p.read.MinIndexTimeout = followerread.NoWait // an explicit 0: do not wait (absent: the default)
	}
	switch st := q.Get("stale"); st {
	case "":
	case "error":
		p.read.StaleError = true
	case "forward":
	default:
		return p, fmt.Errorf("%w: ?stale=%s: want error or forward", errBadRequest, st)
	}
	if p.read.Freshness, err = duration(q, "freshness"); err != nil {
		return p, err
	}
	if p.read.FreshnessStrict, err = flag(q, "freshness_strict"); err != nil {
		return p, err
	}
	if p.read.FreshnessStrict && p.read.Freshness == 0 {
		return p, fmt.Errorf("%w: ?freshness_strict needs ?freshness (how far behind the leader a read may be)", errBadRequest)
	}
	return p, nil
}

// readBody reads the whole request body (bounded by the server's limit).
func readBody(r *http.Request) ([]byte, error) {
	// A small body of known length is read into a buffer of its size; anything else grows as it comes, so a
	// large declared length cannot make the node allocate before the body limit applies.
	if n := r.ContentLength; n > 0 && n <= 64<<10 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, bodyError(err)
		}
		return b, nil
	}
	b, err := io.ReadAll(r.Body)
	return b, bodyError(err)
}

// bodyError makes a body that ended before its declared length a bad request, and one that stopped arriving
// until the connection's read deadline passed a request timeout; the body limit's error and any other pass as
// they are.
func bodyError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the request body ended before its declared length", errBadRequest)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: the request body stopped arriving", errBodyTimeout)
	}
	return err
}

// parseStatements decodes rqlite's statement array: each element is "SQL", ["SQL", arg, ...] or
// ["SQL", {"name": value}].
// maxStatements bounds the statements of one request: each costs memory for its parameters and its result,
// which a body within the size limit could otherwise multiply into gigabytes.
const maxStatements = 100_000

func parseStatements(body []byte) ([]logical.Statement, error) {
	// One decoding pass over the whole body (numbers kept exact as json.Number); a decoder per statement
	// cost a fifth of a point read's allocations.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, statementsError(body, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: unexpected data after the statement array", errBadRequest)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: no statements", errBadRequest)
	}
	if len(raw) > maxStatements {
		return nil, fmt.Errorf("%w: %d statements in one request; at most %d", errBadRequest, len(raw), maxStatements)
	}
	stmts := make([]logical.Statement, len(raw))
	for i, m := range raw {
		st, err := parseStatement(m)
		if err != nil {
			return nil, fmt.Errorf("%w: statement %d: %v", errBadRequest, i+1, err)
		}
		stmts[i] = st
	}
	return stmts, nil
}

// statementsError says what is wrong with a body that is not a JSON array, in the client's terms.
func statementsError(body []byte, err error) error {
	const want = `want a JSON array of statements, such as ["INSERT INTO t VALUES(1)", ["SELECT * FROM t WHERE id = ?", 1]]`
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: empty body: %s", errBadRequest, want)
	}
	var what string
	switch c := trimmed[0]; {
	case c == '[':
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fmt.Errorf("%w: the statement array is not valid JSON at byte %d: %v", errBadRequest, syn.Offset, err)
		}
		return fmt.Errorf("%w: the statement array is not valid JSON: %v", errBadRequest, err)
	case c == '{':
		what = "a JSON object"
	case c == '"':
		what = "a JSON string"
	case c == '-' || c >= '0' && c <= '9' || bytes.HasPrefix(trimmed, []byte("true")) || bytes.HasPrefix(trimmed, []byte("false")) || bytes.HasPrefix(trimmed, []byte("null")):
		what = "a JSON value that is not an array"
	default:
		// Most likely SQL sent as it is (curl -d sends it as a form): JSON or text/plain it must be.
		return fmt.Errorf("%w: the body is not JSON: %s with Content-Type: application/json, or one SQL statement with Content-Type: text/plain", errBadRequest, want)
	}
	return fmt.Errorf("%w: the body is %s: %s", errBadRequest, what, want)
}

// parseStatement interprets one decoded element of the statement array.
func parseStatement(m any) (logical.Statement, error) {
	var st logical.Statement
	if sql, ok := m.(string); ok {
		st.SQL = sql
		return st, nil
	}
	parts, ok := m.([]any)
	if !ok {
		return st, fmt.Errorf("want a string or an array, not %s", jsonKind(m))
	}
	if len(parts) == 0 {
		return st, fmt.Errorf("empty array")
	}
	sql, ok := parts[0].(string)
	if !ok {
		return st, fmt.Errorf("the first element must be the SQL string")
	}
	st.SQL = sql
	args := parts[1:]
	if len(args) == 1 {
		if named, ok := args[0].(map[string]any); ok {
			for k, v := range named {
				val, err := paramValue(v)
				if err != nil {
					return st, fmt.Errorf("parameter %s: %v", k, err)
				}
				named[k] = val
			}
			st.Named = named
			return st, nil
		}
	}
	for i, v := range args {
		val, err := paramValue(v)
		if err != nil {
			return st, fmt.Errorf("parameter %d: %v", i+1, err)
		}
		args[i] = val
	}
	st.Args = args
	return st, nil
}

// jsonKind names the JSON type of a decoded value, for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// paramValue checks a decoded parameter and gives the value to bind. As in rqlite, a BLOB is an array of byte
// values ([222, 173], what pyrqlite sends for bytes) or a string written as an SQL BLOB literal (x'DEAD').
func paramValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool:
		return v, nil
	case string:
		if b, ok := blobLiteral(x); ok {
			return b, nil
		}
		return v, nil
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return v, nil
		}
		if _, err := x.Float64(); err != nil {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		return v, nil
	case []any:
		b := make([]byte, len(x))
		for i, e := range x {
			n, ok := e.(json.Number)
			if !ok {
				return nil, fmt.Errorf("an array is a BLOB of byte values 0 to 255, and element %d is %s", i+1, jsonKind(e))
			}
			k, err := n.Int64()
			if err != nil || k < 0 || k > 255 {
				return nil, fmt.Errorf("an array is a BLOB of byte values 0 to 255, and element %d is %s", i+1, n)
			}
			b[i] = byte(k)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("unsupported value %s: use a string, number, boolean, null or an array of byte values (a BLOB)", jsonKind(v))
	}
}

// blobLiteral decodes a string written as an SQL BLOB literal, x'0A1B' (surrounding spaces allowed).
func blobLiteral(s string) ([]byte, bool) {
	t := strings.TrimSpace(s)
	if len(t) < 3 || t[0] != 'x' && t[0] != 'X' || t[1] != '\'' || t[len(t)-1] != '\'' {
		return nil, false
	}
	b, err := hex.DecodeString(t[2 : len(t)-1])
	if err != nil {
		return nil, false
	}
	return b, true
}

// queryStatements are the statements of a query: ?q=SQL on GET, the body otherwise.
func queryStatements(r *http.Request, body []byte) ([]logical.Statement, error) {
	if r.Method == http.MethodGet {
		q := r.URL.Query()["q"]
		if len(q) == 0 || strings.TrimSpace(q[0]) == "" {
			return nil, fmt.Errorf("%w: GET /db/query needs ?q=SQL", errBadRequest)
		}
		if len(q) > maxStatements {
			return nil, fmt.Errorf("%w: %d statements in one request; at most %d", errBadRequest, len(q), maxStatements)
		}
		stmts := make([]logical.Statement, len(q))
		for i, s := range q {
			stmts[i] = logical.Statement{SQL: s}
		}
		return stmts, nil
	}
	if isPlainText(r, body) {
		return plainStatement(body)
	}
	return parseStatements(body)
}

// isPlainText reports whether r's body is SQL text rather than JSON: Content-Type text/plain, as rqlite
// accepts on its data endpoints, unless the body is a JSON array (no SQL starts with '['; a browser's fetch
// sends a string body as text/plain).
func isPlainText(r *http.Request, body []byte) bool {
	return strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "text/plain") &&
		!bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("["))
}

// plainStatement is the statement of a text/plain body: the whole body, one statement without parameters.
func plainStatement(body []byte) ([]logical.Statement, error) {
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: a text/plain body must be UTF-8 SQL", errBadRequest)
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil, fmt.Errorf("%w: the text/plain body holds no SQL", errBadRequest)
	}
	return []logical.Statement{{SQL: string(body)}}, nil
}
