package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Backup downloads the database (format "" for a SQLite file, "sql" for a dump) from the current node into w.
func (c *Client) Backup(ctx context.Context, format string, w io.Writer) (int64, error) {
	u := c.hosts[c.cur] + "/db/backup?min_index=" + strconv.FormatUint(c.bookmark, 10)
	if format != "" {
		u += "&fmt=" + format
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, apiError(&reply{status: resp.StatusCode, header: resp.Header, body: b})
	}
	c.observe(headerIndex(resp.Header))
	return io.Copy(w, resp.Body)
}

// LoadResult is the part of POST /db/load's answer the shell shows.
type LoadResult struct {
	Index uint64 `json:"raft_index"`
}

// Load uploads a SQLite file, which replaces the database on every node, or a SQL dump, which runs against
// the database as it is in one transaction (as rqlite's .restore) or, with replace, replaces it too
// (POST /db/load?replace). progress, if set, is
// called with the bytes sent so far while the upload runs. It is sent once, to the current node (which
// forwards it to the leader). An answer that says it failed means nothing changed; a load whose answer was
// lost, or that timed out, wraps errUnknownOutcome: a dump run again against the database as it is would
// apply twice.
func (c *Client) Load(ctx context.Context, path string, replace bool, progress func(sent, total int64)) (*LoadResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	cr := &countingReader{r: f}
	done := make(chan struct{})
	if progress != nil {
		go func() {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					progress(cr.n.Load(), st.Size())
				}
			}
		}()
	}
	url := c.hosts[c.cur] + "/db/load?timeout=" + min(10*c.timeout, 10*time.Minute).String()
	if replace {
		url += "&replace"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, cr)
	if err != nil {
		close(done)
		return nil, err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	var wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) }}))
	resp, err := c.http.Do(req)
	close(done)
	if err != nil {
		if wrote.Load() {
			return nil, fmt.Errorf("%w: %s: %v", errUnknownOutcome, display(c.hosts[c.cur]), err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		rep := &reply{status: resp.StatusCode, header: resp.Header, body: b}
		if _, unknown := judge(call{method: http.MethodPost}, rep, true); unknown {
			return nil, fmt.Errorf("%w: %s: %w", errUnknownOutcome, display(c.hosts[c.cur]), apiError(rep))
		}
		return nil, apiError(rep)
	}
	var res LoadResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("load: bad answer: %w", err)
	}
	c.observe(res.Index)
	if progress != nil {
		progress(st.Size(), st.Size())
	}
	return &res, nil
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// backup runs .backup FILE [sql].
func (s *shell) backup(ctx context.Context, args []string) error {
	if len(args) == 0 || len(args) > 2 || (len(args) == 2 && args[1] != "sql") {
		return errors.New("usage: .backup FILE [sql]")
	}
	format := ""
	if len(args) == 2 {
		format = "sql"
	}
	tmp := args[0] + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	n, err := s.c.Backup(ctx, format, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "backed up %s to %s\n", byteSize(n), args[0])
	return nil
}

// load runs .load [--replace] FILE, showing the upload's progress on the error stream.
func (s *shell) load(ctx context.Context, args []string) error {
	replace := len(args) == 2 && (args[0] == "--replace" || args[0] == "-replace")
	if replace {
		args = args[1:]
	}
	if len(args) != 1 {
		return errors.New("usage: .load [--replace] FILE   (a SQLite database file replaces the database; a SQL dump runs against it in one transaction, or with --replace replaces it)")
	}
	start := time.Now()
	last := ""
	res, err := s.c.Load(ctx, args[0], replace, func(sent, total int64) {
		line := fmt.Sprintf("uploading %s: %s of %s", args[0], byteSize(sent), byteSize(total))
		if total > 0 {
			line += fmt.Sprintf(" (%d%%)", sent*100/total)
		}
		if sent == total {
			line += ", loading..."
		}
		if line != last {
			fmt.Fprintf(s.errw, "\r%s", line)
			last = line
		}
	})
	if last != "" {
		fmt.Fprintln(s.errw)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "loaded in %s (raft index %d)\n", time.Since(start).Round(time.Millisecond), res.Index)
	return nil
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return strings.TrimSpace(fmt.Sprintf("%d B", n))
	}
}
