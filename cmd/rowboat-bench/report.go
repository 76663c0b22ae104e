package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Result is one measured run: one scenario against one node at one level and concurrency.
type Result struct {
	Scenario    string  `json:"scenario"`
	Node        string  `json:"node"`
	Level       string  `json:"level,omitempty"`
	Concurrency int     `json:"concurrency"`
	Elapsed     float64 `json:"elapsed_s"`
	Ops         int64   `json:"ops"`          // successful requests
	Rows        int64   `json:"rows"`         // rows written by successful requests (writes only)
	Errors      int64   `json:"errors"`       // failed requests: transport error, non-200, or an "error" in the body
	OpsPerSec   float64 `json:"ops_per_sec"`  // successful requests per second
	RowsPerSec  float64 `json:"rows_per_sec"` // 0 for reads
	P50Ms       float64 `json:"p50_ms"`       // over successful requests
	P99Ms       float64 `json:"p99_ms"`       // over successful requests
	FirstError  string  `json:"first_error,omitempty"`
	// CPU per successful request, with -pids: of the server processes together, and of the benchmark itself.
	ServerCPUus float64 `json:"server_cpu_us_per_op,omitempty"`
	ClientCPUus float64 `json:"client_cpu_us_per_op,omitempty"`
	isWrite     bool
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the nearest-rank method: the smallest
// sample such that at least p% of the samples are <= it. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// summarize fills in the derived fields of r from its latencies (which it sorts) and the run's wall time.
func summarize(r *Result, latencies []time.Duration, elapsed time.Duration) {
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	r.Elapsed = elapsed.Seconds()
	if elapsed > 0 {
		r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
		if r.isWrite {
			r.RowsPerSec = float64(r.Rows) / elapsed.Seconds()
		}
	}
	r.P50Ms = ms(percentile(latencies, 50))
	r.P99Ms = ms(percentile(latencies, 99))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var tableHeader = []string{"scenario", "node", "level", "conc", "ops/s", "rows/s", "p50 ms", "p99 ms", "errors"}

// rightAligned marks the numeric columns of tableHeader.
var rightAligned = []bool{false, false, false, true, true, true, true, true, true}

// cpuHeader is the two columns writeTable adds when CPU was measured (-pids).
var cpuHeader = []string{"server CPU µs/op", "bench CPU µs/op"}

// writeTable renders results as a markdown table whose columns are padded so it also reads well as plain
// text. With cpu, it adds the CPU per request of the servers and of the benchmark.
func writeTable(w io.Writer, results []Result, cpu bool) error {
	header, right := tableHeader, rightAligned
	if cpu {
		header = append(slices.Clip(header), cpuHeader...)
		right = append(slices.Clip(right), true, true)
	}
	rows := [][]string{header}
	for _, r := range results {
		level, rowsPerSec := r.Level, "-"
		if level == "" {
			level = "-"
		}
		if r.isWrite {
			rowsPerSec = fmt.Sprintf("%.0f", r.RowsPerSec)
		}
		p50, p99 := "-", "-"
		if r.Ops > 0 {
			p50, p99 = fmt.Sprintf("%.2f", r.P50Ms), fmt.Sprintf("%.2f", r.P99Ms)
		}
		row := []string{
			r.Scenario, r.Node, level, fmt.Sprint(r.Concurrency),
			fmt.Sprintf("%.0f", r.OpsPerSec), rowsPerSec, p50, p99, fmt.Sprint(r.Errors),
		}
		if cpu {
			row = append(row, microseconds(r.ServerCPUus), microseconds(r.ClientCPUus))
		}
		rows = append(rows, row)
	}
	width := make([]int, len(header))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell), 3)
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i, cell := range cells {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			if right[i] {
				b.WriteString(" " + pad + cell + " |")
			} else {
				b.WriteString(" " + cell + pad + " |")
			}
		}
		b.WriteString("\n")
	}
	line(rows[0])
	b.WriteString("|")
	for i := range header {
		if right[i] {
			b.WriteString(" " + strings.Repeat("-", width[i]-1) + ": |")
		} else {
			b.WriteString(" " + strings.Repeat("-", width[i]) + " |")
		}
	}
	b.WriteString("\n")
	for _, row := range rows[1:] {
		line(row)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// microseconds formats a CPU figure, "-" when it was not measured.
func microseconds(us float64) string {
	if us <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", us)
}
