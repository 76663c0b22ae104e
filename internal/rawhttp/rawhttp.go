// Package rawhttp is a minimal HTTP/1.1 keep-alive client for plain-http peers: one connection per request
// in flight, each request written with one write and its answer read by the calling goroutine.
//
// It exists for load generators on small machines. net/http's client hands every request to two goroutines
// per connection (a read loop and a write loop) and back; on a 2-core virtual machine those hand-offs cost
// about as much CPU as the server spends answering. rowboat-bench uses it so that the load generator takes
// less CPU from the servers it measures. (Tried for a follower's read-index requests to the leader too: no
// measurable gain there, at a few thousand requests a second, so the node keeps net/http.) The protocol subset is what an HTTP/1.1 server answers
// with: a status line, headers, and a body framed by Content-Length, chunked encoding, or the end of the
// connection. No TLS, no proxies, no redirects (the caller sees the 3xx and its Location).
package rawhttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Client sends requests over a pool of kept-alive connections. It is safe for concurrent use.
type Client struct {
	timeout time.Duration
	mu      sync.Mutex
	idle    map[string][]*conn // by host:port
}

// New returns a client whose requests each take at most timeout (or less, if their context says so).
func New(timeout time.Duration) *Client {
	return &Client{timeout: timeout, idle: map[string][]*conn{}}
}

// Request is one request. Host is host:port; Target is the path with its query ("/db/query?level=none").
type Request struct {
	Method string
	Host   string
	Target string
	// Header holds extra header lines as name, value pairs; Host, User-Agent, Content-Type (with a body) and
	// Content-Length are written by the client.
	Header []string
	Body   []byte // nil for none; sent as application/json
}

// Response is an answer. Body is only valid inside the handler Do calls.
type Response struct {
	Status   int
	Location string // the Location header, if any
	Body     []byte
}

// ErrBadURL is returned by SplitURL for a URL this client cannot send to.
var ErrBadURL = errors.New("not a plain http URL")

// conn is one connection, owned by one request at a time.
type conn struct {
	host string
	nc   net.Conn
	r    *bufio.Reader
	req  []byte // request buffer, reused
	body []byte // response body buffer, reused
	used bool   // has carried a request before: a failure before any answer may be a server-closed idle conn
}

// CloseIdle closes every idle connection.
func (h *Client) CloseIdle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for host, conns := range h.idle {
		for _, c := range conns {
			c.nc.Close()
		}
		delete(h.idle, host)
	}
}

func (h *Client) get(ctx context.Context, host string) (*conn, error) {
	h.mu.Lock()
	if conns := h.idle[host]; len(conns) > 0 {
		c := conns[len(conns)-1]
		h.idle[host] = conns[:len(conns)-1]
		h.mu.Unlock()
		return c, nil
	}
	h.mu.Unlock()
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return &conn{host: host, nc: nc, r: bufio.NewReaderSize(nc, 16<<10)}, nil
}

func (h *Client) put(c *conn) {
	c.used = true
	h.mu.Lock()
	h.idle[c.host] = append(h.idle[c.host], c)
	h.mu.Unlock()
}

// Do sends req and calls handle with the answer while the connection is still held, so that handle may use
// the body in place; Do returns handle's error. A request on a reused connection that fails before any byte
// of an answer arrived is sent once more on a new connection, since the server may have closed the idle
// connection as it was picked up; a server that acts on a request and then closes without answering can
// therefore see it twice.
func (h *Client) Do(ctx context.Context, req Request, handle func(Response) error) error {
	for attempt := 0; ; attempt++ {
		c, err := h.get(ctx, req.Host)
		if err != nil {
			return err
		}
		resp, keep, answered, err := c.roundTrip(ctx, h.timeout, req)
		if err != nil {
			c.nc.Close()
			if c.used && !answered && attempt == 0 && ctx.Err() == nil {
				continue
			}
			return err
		}
		herr := handle(resp)
		if keep {
			h.put(c)
		} else {
			c.nc.Close()
		}
		return herr
	}
}

func (c *conn) roundTrip(ctx context.Context, timeout time.Duration, req Request) (resp Response, keep, answered bool, err error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return resp, false, false, err
	}
	b := c.req[:0]
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, req.Target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nUser-Agent: rowboat\r\nAccept: application/json\r\n"...)
	for i := 0; i+1 < len(req.Header); i += 2 {
		b = append(b, req.Header[i]...)
		b = append(b, ": "...)
		b = append(b, req.Header[i+1]...)
		b = append(b, "\r\n"...)
	}
	if req.Body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(req.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, req.Body...)
	c.req = b
	if _, err := c.nc.Write(b); err != nil {
		return resp, false, false, err
	}
	return c.readResponse(req.Method)
}

// readResponse reads one answer, skipping interim 1xx ones. answered reports whether any of it arrived.
func (c *conn) readResponse(method string) (resp Response, keep, answered bool, err error) {
	for {
		resp, keep, answered, err = c.readOne(method)
		if err != nil || resp.Status/100 != 1 || resp.Status == 101 {
			return resp, keep, answered, err
		}
	}
}

func (c *conn) readOne(method string) (resp Response, keep, answered bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return resp, false, len(line) > 0, err
	}
	answered = true
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return resp, false, true, fmt.Errorf("malformed status line %q", line)
	}
	if resp.Status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return resp, false, true, fmt.Errorf("malformed status line %q", line)
	}
	keep = line[7] == '1' // HTTP/1.1 keeps the connection unless told otherwise; 1.0 closes it
	contentLength, chunked := int64(-1), false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return resp, false, true, fmt.Errorf("read headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return resp, false, true, fmt.Errorf("malformed header %q", line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if contentLength, err = strconv.ParseInt(string(value), 10, 64); err != nil || contentLength < 0 {
				return resp, false, true, fmt.Errorf("bad Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			if asciiEqualFold(value, "close") {
				keep = false
			} else if asciiEqualFold(value, "keep-alive") {
				keep = true
			}
		case asciiEqualFold(name, "Location"):
			resp.Location = string(value)
		}
	}
	const maxBody = 64 << 20
	body := c.body[:0]
	switch {
	case method == "HEAD" || resp.Status == 204 || resp.Status == 304 || resp.Status/100 == 1: // no body
	case chunked:
		if body, err = readChunked(c.r, body, maxBody); err != nil {
			return resp, false, true, err
		}
	case contentLength >= 0:
		if contentLength > maxBody {
			return resp, false, true, fmt.Errorf("body of %d bytes is too large", contentLength)
		}
		n := int(contentLength)
		body = growTo(body, n)
		if _, err := io.ReadFull(c.r, body); err != nil {
			return resp, false, true, fmt.Errorf("read body: %w", err)
		}
	default: // the body runs to the end of the connection
		if body, err = readAll(c.r, body, maxBody); err != nil {
			return resp, false, true, err
		}
		keep = false
	}
	c.body, resp.Body = body, body
	return resp, keep, true, nil
}

func readChunked(r *bufio.Reader, body []byte, max int) ([]byte, error) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("read chunk size: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 { // chunk extensions
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			for { // trailers, up to the blank line
				line, err := r.ReadSlice('\n')
				if err != nil {
					return nil, fmt.Errorf("read trailer: %w", err)
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return body, nil
				}
			}
		}
		if int64(len(body))+size > int64(max) {
			return nil, fmt.Errorf("chunked body larger than %d bytes", max)
		}
		n := len(body)
		body = growTo(body, n+int(size))
		if _, err := io.ReadFull(r, body[n:]); err != nil {
			return nil, fmt.Errorf("read chunk: %w", err)
		}
		if crlf, err := r.ReadSlice('\n'); err != nil || len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return nil, fmt.Errorf("chunk not followed by CRLF")
		}
	}
}

func readAll(r *bufio.Reader, body []byte, max int) ([]byte, error) {
	buf := bytes.NewBuffer(body)
	n, err := buf.ReadFrom(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if n > int64(max) {
		return nil, fmt.Errorf("body larger than %d bytes", max)
	}
	return buf.Bytes(), nil
}

// growTo returns b resized to n bytes, keeping its contents and reusing its array when it is large enough.
func growTo(b []byte, n int) []byte {
	if n <= len(b) {
		return b[:n]
	}
	return slices.Grow(b, n-len(b))[:n]
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// SplitURL splits an absolute http:// URL into host:port and the request target (path and query).
func SplitURL(raw string) (host, target string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", "", fmt.Errorf("%w: %q", ErrBadURL, raw)
	}
	host = u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	target = u.RequestURI()
	return host, target, nil
}
