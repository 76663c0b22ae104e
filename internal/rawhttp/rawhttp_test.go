package rawhttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawDo sends one request through h and returns the answer's status and a copy of its body.
func rawDo(t *testing.T, h *Client, method, rawURL string, body []byte, header ...string) (int, string, error) {
	t.Helper()
	host, target, err := SplitURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	var status int
	var got string
	err = h.Do(context.Background(), Request{Method: method, Host: host, Target: target, Header: header, Body: body}, func(r Response) error {
		status, got = r.Status, string(r.Body)
		return nil
	})
	return status, got, err
}

func TestRawHTTP_Framing(t *testing.T) {
	var conns atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/length", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s%s %s", r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Header.Get("X-Extra"), b)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush() // forces chunked framing
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100<<10))) // larger than the read buffer
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	h := New(5 * time.Second)
	defer h.CloseIdle()

	for _, tc := range []struct {
		method, path string
		body         []byte
		status       int
		want         string
	}{
		{"POST", "/length?level=none&q=a%20b", []byte(`["SELECT 1"]`), 200, `POST /length?level=none&q=a%20b application/json ["SELECT 1"]`},
		{"GET", "/length?x=1", nil, 200, "GET /length?x=1  "},
		{"GET", "/length?h", nil, 200, "GET /length?h  "}, // no X-Extra: headers are per request
		{"GET", "/chunked", nil, 200, "part0;part1;part2;"},
		{"GET", "/big", nil, 200, strings.Repeat("x", 100<<10)},
		{"GET", "/empty", nil, 204, ""},
		{"GET", "/missing", nil, 404, "404 page not found\n"},
		{"GET", "/length?again", nil, 200, "GET /length?again  "},
	} {
		status, got, err := rawDo(t, h, tc.method, srv.URL+tc.path, tc.body)
		if err != nil || status != tc.status || got != tc.want {
			t.Fatalf("%s %s: status %d, body %.80q, err %v; want %d %.80q", tc.method, tc.path, status, got, err, tc.status, tc.want)
		}
	}
	if status, got, err := rawDo(t, h, "GET", srv.URL+"/length", nil, "X-Extra", "yes"); err != nil || status != 200 || got != "GET /length yes " {
		t.Fatalf("extra header: %d %q %v", status, got, err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for sequential keep-alive requests, want 1", n)
	}
	// Connection: close is honoured: the next request needs a new connection.
	if status, got, err := rawDo(t, h, "GET", srv.URL+"/close", nil); err != nil || status != 200 || got != "bye" {
		t.Fatalf("/close: %d %q %v", status, got, err)
	}
	if status, _, err := rawDo(t, h, "GET", srv.URL+"/length", nil); err != nil || status != 200 {
		t.Fatalf("after /close: %d %v", status, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after a Connection: close answer, want 2", n)
	}
}

// TestRawHTTP_ServerClosedIdleConn: a server that closes a kept-alive connection without saying so makes the
// next request on it fail before any answer; the client sends it again on a new connection. A server that
// answers garbage gets an error, not a retry.
func TestRawHTTP_ServerClosedIdleConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := accepted.Add(1)
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for { // read one request's head (the tests send no body)
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				if n == 3 {
					io.WriteString(c, "SMTP ready\r\n\r\n")
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn%d", n)
				// and close without "Connection: close"
			}()
		}
	}()
	h := New(5 * time.Second)
	defer h.CloseIdle()
	u := "http://" + ln.Addr().String() + "/x"
	if _, got, err := rawDo(t, h, "GET", u, nil); err != nil || got != "conn1" {
		t.Fatalf("first request: %q %v", got, err)
	}
	if _, got, err := rawDo(t, h, "GET", u, nil); err != nil || got != "conn2" {
		t.Fatalf("request on the closed idle conn: %q %v, want it resent on a new connection", got, err)
	}
	if _, _, err := rawDo(t, h, "GET", u, nil); err == nil || !strings.Contains(err.Error(), "status line") {
		t.Fatalf("garbage answer: err %v, want a status line error", err)
	}
}

func TestSplitURL(t *testing.T) {
	for in, want := range map[string][2]string{
		"http://127.0.0.1:4001/db/query?level=none&q=a%20b": {"127.0.0.1:4001", "/db/query?level=none&q=a%20b"},
		"http://localhost/readindex":                        {"localhost:80", "/readindex"},
		"http://[::1]:4001":                                 {"[::1]:4001", "/"},
	} {
		host, target, err := SplitURL(in)
		if err != nil || host != want[0] || target != want[1] {
			t.Errorf("SplitURL(%q) = %q, %q, %v; want %q, %q", in, host, target, err, want[0], want[1])
		}
	}
	for _, bad := range []string{"https://127.0.0.1:4001/", "127.0.0.1:4001", "http://", "http://%zz"} {
		if _, _, err := SplitURL(bad); !errors.Is(err, ErrBadURL) {
			t.Errorf("SplitURL(%q): %v, want ErrBadURL", bad, err)
		}
	}
}

// The floor under every figure of rowboat-bench on one machine: a bare net/http server that answers a fixed
// point-read body, driven by this client or by net/http's, both in this process (so ns/op is the CPU of
// client and server together per request once the cores are busy). Run with -cpu 2 to match a 2-core box.
func benchmarkBare(b *testing.B, send func(url string, body []byte) error) {
	answer := []byte(`{"results":[{"columns":["id","k","v"],"types":["integer","text","integer"],"values":[[1,"key-1",1]]}]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	defer srv.Close()
	body := []byte(`[["SELECT * FROM bench WHERE id = ?", 1]]`)
	u := srv.URL + "/db/query?level=none"
	b.SetParallelism(8) // 16 clients on 2 cores, as the bench's read scenario
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := send(u, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkBareServer_Raw(b *testing.B) {
	c := New(5 * time.Second)
	defer c.CloseIdle()
	benchmarkBare(b, func(u string, body []byte) error {
		host, target, _ := SplitURL(u)
		return c.Do(context.Background(), Request{Method: "POST", Host: host, Target: target, Body: body}, func(r Response) error {
			if r.Status != http.StatusOK {
				return fmt.Errorf("HTTP %d", r.Status)
			}
			return nil
		})
	})
}

func BenchmarkBareServer_NetHTTP(b *testing.B) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer c.CloseIdleConnections()
	benchmarkBare(b, func(u string, body []byte) error {
		resp, err := c.Post(u, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	})
}

// An interim 100 Continue is skipped; the final answer is the response.
func TestRawHTTP_SkipsInterimAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
	}()
	h := New(5 * time.Second)
	defer h.CloseIdle()
	if status, got, err := rawDo(t, h, "GET", "http://"+ln.Addr().String()+"/", nil); err != nil || status != 200 || got != "done" {
		t.Fatalf("after 100 Continue: %d %q %v, want 200 done", status, got, err)
	}
}
