package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on every Linux architecture Go runs on.
const userHZ = 100

// cpuMeter reads how much CPU the server processes (by PID, from /proc) and this process have used, so that
// a run can report CPU per request: a figure that noise on a shared machine moves far less than throughput.
type cpuMeter struct {
	pids []int
}

// cpuSample is one reading of a cpuMeter.
type cpuSample struct {
	server, client time.Duration
	ok             bool // every server process could be read
}

func (m cpuMeter) sample() cpuSample {
	s := cpuSample{ok: true}
	for _, pid := range m.pids {
		d, err := procCPU(pid)
		if err != nil {
			s.ok = false
			continue
		}
		s.server += d
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// perOp fills in r's CPU per successful request between two samples (nothing if a server process could
// not be read at either end: it exited, or this is not Linux).
func (m cpuMeter) perOp(r *Result, before, after cpuSample) {
	if len(m.pids) == 0 || r.Ops == 0 {
		return
	}
	r.ClientCPUus = float64(after.client-before.client) / float64(time.Microsecond) / float64(r.Ops)
	if before.ok && after.ok {
		r.ServerCPUus = float64(after.server-before.server) / float64(time.Microsecond) / float64(r.Ops)
	}
}

// procCPU returns the user and system CPU time a process has used, from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// parseProcStat reads utime and stime (fields 14 and 15) from the text of /proc/PID/stat. The command name
// (field 2) is in parentheses and may itself hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name in %q", b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (the state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks uint64
	for _, field := range f[11:13] {
		n, err := strconv.ParseUint(string(field), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
