package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

const samplePath = "../testdata/rowboatd.yaml"

// env returns a getenv backed by m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeFile writes a YAML file into a temporary directory and returns its path.
func writeFile(tb testing.TB, yaml string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "rowboatd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		tb.Fatalf("write config: %v", err)
	}
	return path
}

// defaultsWith is what Load returns for --data-dir dir and nothing else.
func defaultsWith(dir string) Config {
	c := Default()
	c.DataDir = dir
	c.HTTPAdvertise = "127.0.0.1:4001"
	c.RaftAdvertise = "127.0.0.1:4002"
	c.ID = "127.0.0.1:4002"
	return c
}

func TestDefault(t *testing.T) {
	got := Default()
	want := Config{
		ID:                 "",
		HTTPAddr:           "127.0.0.1:4001",
		HTTPAdvertise:      "",
		RaftAddr:           "127.0.0.1:4002",
		RaftAdvertise:      "",
		DataDir:            "",
		Join:               nil,
		Voter:              true,
		BootstrapExpect:    0,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		ApplyTimeout:       10 * time.Second,
		MaxTimeout:         10 * time.Minute,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		SnapshotLogBytes:   256 * 1024 * 1024,
		TrailingLogs:       10240,
		MaxBodyBytes:       64 * 1024 * 1024,
		MaxBatch:           1024,
		ForeignKeys:        true,
		LogLevel:           "info",
		LogFormat:          "text",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Default()=\n%+v\nwant\n%+v", got, want)
	}
	// Only the required data dir keeps the defaults from validating.
	if err := Default().Validate(); err == nil || err.Error() != "data-dir: required" {
		t.Fatalf("Default().Validate()=%v, want data-dir: required", err)
	}
}

func TestLoad_Defaults(t *testing.T) {
	got, err := Load([]string{"--data-dir", "/d"}, env(nil), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := defaultsWith("/d"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Load()=\n%+v\nwant\n%+v", got, want)
	}
	// nil getenv and nil usage are allowed.
	if _, err := Load([]string{"--data-dir=/d"}, nil, nil); err != nil {
		t.Fatalf("Load with nil getenv: %v", err)
	}
}

// TestLoad_EveryOption sets every option to a non-default value through each source in turn, so
// each option is known to reach its field by flag, by environment variable and by file key.
func TestLoad_EveryOption(t *testing.T) {
	values := map[string]string{
		"id":                   "n9",
		"http-addr":            "10.0.0.1:5001",
		"http-advertise":       "node9:5001",
		"raft-addr":            "10.0.0.1:5002",
		"raft-advertise":       "node9:5002",
		"data-dir":             "/data/n9",
		"join":                 "a:1,http://b:2",
		"voter":                "false",
		"bootstrap-expect":     "1",
		"vote-before-join":     "true",
		"heartbeat-timeout":    "1s",
		"election-timeout":     "2s",
		"leader-lease-timeout": "300ms",
		"commit-timeout":       "20ms",
		"apply-timeout":        "3s",
		"max-timeout":          "1h",
		"snapshot-threshold":   "100",
		"snapshot-interval":    "1m",
		"snapshot-log-bytes":   "1000",
		"trailing-logs":        "50",
		"max-body-bytes":       "2000",
		"max-batch":            "7",
		"foreign-keys":         "false",
		"log-level":            "debug",
		"log-format":           "json",
	}
	want := Config{
		ID: "n9", HTTPAddr: "10.0.0.1:5001", HTTPAdvertise: "node9:5001",
		RaftAddr: "10.0.0.1:5002", RaftAdvertise: "node9:5002", DataDir: "/data/n9",
		Join: []string{"a:1", "http://b:2"}, Voter: false, BootstrapExpect: 1, VoteBeforeJoin: true,
		HeartbeatTimeout: time.Second, ElectionTimeout: 2 * time.Second, LeaderLeaseTimeout: 300 * time.Millisecond,
		CommitTimeout: 20 * time.Millisecond, ApplyTimeout: 3 * time.Second, MaxTimeout: time.Hour,
		SnapshotThreshold: 100, SnapshotInterval: time.Minute, SnapshotLogBytes: 1000, TrailingLogs: 50,
		MaxBodyBytes: 2000, MaxBatch: 7, ForeignKeys: false, LogLevel: "debug", LogFormat: "json",
	}
	if len(values) != len(options) {
		t.Fatalf("test sets %d options, there are %d", len(values), len(options))
	}

	var args []string
	envs := map[string]string{}
	var yaml strings.Builder
	for _, o := range options {
		v, ok := values[o.name]
		if !ok {
			t.Fatalf("test sets no value for option %s", o.name)
		}
		args = append(args, "--"+o.name+"="+v)
		envs[envName(o.name)] = v
		yaml.WriteString(o.name + ": " + quoteYAML(v) + "\n")
	}

	for _, tc := range []struct {
		name   string
		args   []string
		getenv map[string]string
	}{
		{"flags", args, nil},
		{"env", nil, envs},
		{"file", []string{"--config", writeFile(t, yaml.String())}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load(tc.args, env(tc.getenv), nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Load()=\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// quoteYAML leaves integers and booleans as YAML scalars of their own types, as a person would write
// them, and quotes everything else as a string.
func quoteYAML(v string) string {
	if _, err := strconv.Atoi(v); err == nil || v == "true" || v == "false" {
		return v
	}
	return strconv.Quote(v)
}

func TestLoad_Precedence(t *testing.T) {
	// The file sets every key below; the environment and flags override some of them.
	file := writeFile(t, `
data-dir: /file
http-addr: 127.0.0.1:7001
apply-timeout: 7s
voter: false
join: [file:1]
snapshot-threshold: 7
log-level: warn
`)
	fileEnv := map[string]string{"ROWBOAT_CONFIG": file}

	tests := []struct {
		name   string
		args   []string
		getenv map[string]string
		check  func(Config) (got, want any)
	}{
		// default: nothing sets it
		{"default/http-addr", []string{"--data-dir=/d"}, nil,
			func(c Config) (any, any) { return c.HTTPAddr, "127.0.0.1:4001" }},
		{"default/apply-timeout", []string{"--data-dir=/d"}, nil,
			func(c Config) (any, any) { return c.ApplyTimeout, 10 * time.Second }},
		// file beats default
		{"file/http-addr", []string{"--config", file}, nil,
			func(c Config) (any, any) { return c.HTTPAddr, "127.0.0.1:7001" }},
		{"file/apply-timeout", []string{"--config", file}, nil,
			func(c Config) (any, any) { return c.ApplyTimeout, 7 * time.Second }},
		{"file/voter", []string{"--config", file}, nil,
			func(c Config) (any, any) { return c.Voter, false }},
		{"file/join", []string{"--config", file}, nil,
			func(c Config) (any, any) { return c.Join, []string{"file:1"} }},
		{"file/snapshot-threshold", []string{"--config", file}, nil,
			func(c Config) (any, any) { return c.SnapshotThreshold, uint64(7) }},
		{"file/via ROWBOAT_CONFIG", nil, fileEnv,
			func(c Config) (any, any) { return c.DataDir, "/file" }},
		{"file/untouched key keeps default", []string{"--config", file}, nil,
			func(c Config) (any, any) { return c.MaxBatch, 1024 }},
		// env beats file
		{"env/http-addr", nil, map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_HTTP_ADDR": "127.0.0.1:8001"},
			func(c Config) (any, any) { return c.HTTPAddr, "127.0.0.1:8001" }},
		{"env/apply-timeout", nil, map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_APPLY_TIMEOUT": "8s"},
			func(c Config) (any, any) { return c.ApplyTimeout, 8 * time.Second }},
		{"env/voter", nil, map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_VOTER": "true"},
			func(c Config) (any, any) { return c.Voter, true }},
		{"env/join", nil, map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_JOIN": "env:1, env:2"},
			func(c Config) (any, any) { return c.Join, []string{"env:1", "env:2"} }},
		{"env/snapshot-threshold", nil, map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_SNAPSHOT_THRESHOLD": "8"},
			func(c Config) (any, any) { return c.SnapshotThreshold, uint64(8) }},
		{"env/empty is unset", nil, map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_LOG_LEVEL": ""},
			func(c Config) (any, any) { return c.LogLevel, "warn" }},
		// flag beats env
		{"flag/http-addr", []string{"--http-addr=127.0.0.1:9001"},
			map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_HTTP_ADDR": "127.0.0.1:8001"},
			func(c Config) (any, any) { return c.HTTPAddr, "127.0.0.1:9001" }},
		{"flag/apply-timeout", []string{"--apply-timeout", "9s"},
			map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_APPLY_TIMEOUT": "8s"},
			func(c Config) (any, any) { return c.ApplyTimeout, 9 * time.Second }},
		{"flag/voter alone means true", []string{"--voter"},
			map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_VOTER": "false"},
			func(c Config) (any, any) { return c.Voter, true }},
		{"flag/join repeated accumulates", []string{"--join", "f:1", "--join=f:2,f:3"},
			map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_JOIN": "env:1"},
			func(c Config) (any, any) { return c.Join, []string{"f:1", "f:2", "f:3"} }},
		{"flag/snapshot-threshold", []string{"--snapshot-threshold=9"},
			map[string]string{"ROWBOAT_CONFIG": file, "ROWBOAT_SNAPSHOT_THRESHOLD": "8"},
			func(c Config) (any, any) { return c.SnapshotThreshold, uint64(9) }},
		{"flag/--config beats ROWBOAT_CONFIG", []string{"--config", writeFile(t, "data-dir: /flagfile\n")}, fileEnv,
			func(c Config) (any, any) { return c.DataDir, "/flagfile" }},
		// derived defaults follow whatever set the bind address
		{"derived/advertise from file", []string{"--config", file}, nil,
			func(c Config) (any, any) { return c.HTTPAdvertise, "127.0.0.1:7001" }},
		{"derived/unspecified host", []string{"--data-dir=/d", "--http-addr=0.0.0.0:4001", "--raft-addr=:4002"}, nil,
			func(c Config) (any, any) {
				return []string{c.HTTPAdvertise, c.RaftAdvertise, c.ID}, []string{"127.0.0.1:4001", "127.0.0.1:4002", "127.0.0.1:4002"}
			}},
		{"derived/ipv6 unspecified host", []string{"--data-dir=/d", "--raft-addr=[::]:4002"}, nil,
			func(c Config) (any, any) { return c.RaftAdvertise, "127.0.0.1:4002" }},
		{"derived/id from raft advertise", []string{"--data-dir=/d", "--raft-advertise=node1:4002"}, nil,
			func(c Config) (any, any) { return c.ID, "node1:4002" }},
		{"derived/explicit id kept", []string{"--data-dir=/d", "--id=n1"}, nil,
			func(c Config) (any, any) { return c.ID, "n1" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, env(tc.getenv), nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got, want := tc.check(c); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestLoad_FileValueForms(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(Config) (got, want any)
	}{
		{"join as comma string", "join: 'a:1, b:2'", func(c Config) (any, any) { return c.Join, []string{"a:1", "b:2"} }},
		{"join empty list", "join: []", func(c Config) (any, any) { return c.Join, []string(nil) }},
		{"null leaves default", "log-level:", func(c Config) (any, any) { return c.LogLevel, "info" }},
		{"bool yes/no", "foreign-keys: 'no'", func(c Config) (any, any) { return c.ForeignKeys, false }},
		{"numeric id", "id: 7", func(c Config) (any, any) { return c.ID, "7" }},
		{"integer as float", "max-body-bytes: 1e6", func(c Config) (any, any) { return c.MaxBodyBytes, int64(1000000) }},
		{"keys are case-insensitive", "Max-Batch: 3", func(c Config) (any, any) { return c.MaxBatch, 3 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load([]string{"--data-dir=/d", "--config", writeFile(t, tc.yaml+"\n")}, env(nil), nil)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got, want := tc.check(c); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %#v, want %#v", got, want)
			}
		})
	}
}

// TestSample loads the shipped sample config: it must name every setting, name nothing else, and
// decode to the node it describes.
func TestSample(t *testing.T) {
	file, err := readFile(samplePath) // rejects unknown keys
	if err != nil {
		t.Fatalf("readFile: %v", err)
	}
	for _, o := range options {
		if !file.InConfig(o.name) {
			t.Errorf("%s does not set %s", samplePath, o.name)
		}
	}
	if got, want := len(file.AllKeys()), len(options); got != want {
		t.Errorf("%s has %d keys, want %d", samplePath, got, want)
	}

	got, err := Load([]string{"--config", samplePath}, env(nil), nil)
	if err != nil {
		t.Fatalf("Load(%s): %v", samplePath, err)
	}
	want := Default()
	want.ID = "n2"
	want.HTTPAddr = "127.0.0.1:4011"
	want.HTTPAdvertise = "127.0.0.1:4011"
	want.RaftAddr = "127.0.0.1:4012"
	want.RaftAdvertise = "127.0.0.1:4012"
	want.DataDir = "/var/lib/rowboat/n2"
	want.Join = []string{"127.0.0.1:4001", "127.0.0.1:4021"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load(%s)=\n%+v\nwant\n%+v", samplePath, got, want)
	}
}

// TestOptions_CoverConfig checks that the option table fills every Config field exactly once, so a
// field added to Config without a flag (or a flag pointing at the wrong field) fails here.
func TestOptions_CoverConfig(t *testing.T) {
	var c Config
	base := reflect.ValueOf(&c).Elem()
	byAddr := map[uintptr]string{}
	for i := 0; i < base.NumField(); i++ {
		byAddr[base.Field(i).Addr().Pointer()] = base.Type().Field(i).Name
	}
	seen := map[string]string{}
	for _, o := range options {
		p := reflect.ValueOf(o.field(&c)).Pointer()
		field, ok := byAddr[p]
		if !ok {
			t.Fatalf("option %s points outside Config", o.name)
		}
		if prev, dup := seen[field]; dup {
			t.Errorf("options %s and %s both fill %s", prev, o.name, field)
		}
		seen[field] = o.name
	}
	if got, want := len(seen), base.NumField(); got != want {
		t.Errorf("options fill %d of %d Config fields", got, want)
	}
}

func TestLoad_Errors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		getenv map[string]string
		yaml   string // if set, written to a file passed with --config
		want   []string
	}{
		{"missing data-dir", nil, nil, "", []string{"data-dir: required"}},
		{"bad duration flag", []string{"--data-dir=/d", "--heartbeat-timeout=abc"}, nil, "",
			[]string{"heartbeat-timeout:", `"abc"`, "flag --heartbeat-timeout"}},
		{"bad duration env", []string{"--data-dir=/d"}, map[string]string{"ROWBOAT_ELECTION_TIMEOUT": "soon"}, "",
			[]string{"election-timeout:", "ROWBOAT_ELECTION_TIMEOUT"}},
		{"bad bool file", []string{"--data-dir=/d"}, nil, "voter: maybe",
			[]string{"voter:", `"maybe"`, "config file"}},
		{"bad bool flag", []string{"--data-dir=/d", "--foreign-keys=sometimes"}, nil, "",
			[]string{"foreign-keys:", "flag --foreign-keys"}},
		{"duration without unit in file", []string{"--data-dir=/d"}, nil, "heartbeat-timeout: 500",
			[]string{"heartbeat-timeout:", "unit"}},
		{"bad int env", []string{"--data-dir=/d"}, map[string]string{"ROWBOAT_MAX_BATCH": "lots"}, "",
			[]string{"max-batch:", `"lots"`, "ROWBOAT_MAX_BATCH"}},
		{"negative uint", []string{"--data-dir=/d", "--trailing-logs=-1"}, nil, "",
			[]string{"trailing-logs:", "non-negative"}},
		{"negative uint file", []string{"--data-dir=/d"}, nil, "snapshot-threshold: -5",
			[]string{"snapshot-threshold:", "non-negative"}},
		{"int out of range", []string{"--data-dir=/d", "--max-body-bytes=99999999999999999999"}, nil, "",
			[]string{"max-body-bytes:", "out of range"}},
		{"fractional int", []string{"--data-dir=/d"}, nil, "max-batch: 1.5",
			[]string{"max-batch:", "integer"}},
		{"list of maps", []string{"--data-dir=/d"}, nil, "join: [{a: 1}]",
			[]string{"join:", "list of strings"}},
		{"map for string", []string{"--data-dir=/d"}, nil, "http-addr: {host: x}",
			[]string{`unknown key "http-addr.host"`}},
		{"several bad values reported together", []string{"--data-dir=/d", "--max-batch=x", "--apply-timeout=y"}, nil, "",
			[]string{"max-batch:", "apply-timeout:"}},
		{"unknown key", []string{"--data-dir=/d"}, nil, "heartbeat: 1s",
			[]string{"config:", `unknown key "heartbeat"`}},
		{"unknown nested key", []string{"--data-dir=/d"}, nil, "raft:\n  heartbeat: 1s",
			[]string{`unknown key "raft.heartbeat"`}},
		{"config is not a file key", []string{"--data-dir=/d"}, nil, "config: other.yaml",
			[]string{`unknown key "config"`}},
		{"bad yaml", []string{"--data-dir=/d"}, nil, "join: [unclosed",
			[]string{"config:"}},
		{"missing file", []string{"--data-dir=/d", "--config=/nonexistent/rowboatd.yaml"}, nil, "",
			[]string{"config:", "/nonexistent/rowboatd.yaml"}},
		{"unknown flag", []string{"--data-dir=/d", "--heartbeat=1s"}, nil, "",
			[]string{"unknown flag", "--heartbeat"}},
		{"missing flag value", []string{"--data-dir"}, nil, "",
			[]string{"data-dir"}},
		{"positional argument", []string{"--data-dir=/d", "extra"}, nil, "",
			[]string{"unexpected argument", `"extra"`}},
		{"bool flag does not take the next argument", []string{"--data-dir=/d", "--voter", "false"}, nil, "",
			[]string{"unexpected argument", `"false"`}},
		{"validation runs", []string{"--data-dir=/d", "--leader-lease-timeout=1s"}, nil, "",
			[]string{"leader-lease-timeout: must be <= heartbeat-timeout"}},
		{"validation sees the file", []string{"--data-dir=/d"}, nil, "log-level: verbose",
			[]string{"log-level:", `"verbose"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				args = append(append([]string(nil), args...), "--config", writeFile(t, tc.yaml+"\n"))
			}
			var out bytes.Buffer
			_, err := Load(args, env(tc.getenv), &out)
			if err == nil {
				t.Fatalf("Load(%q): no error, want one containing %q", args, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%q) error %q does not contain %q", args, err, w)
				}
			}
			if errors.Is(err, pflag.ErrHelp) {
				t.Errorf("Load(%q) error wraps ErrHelp", args)
			}
			if out.Len() != 0 {
				t.Errorf("Load(%q) wrote usage on error:\n%s", args, out.String())
			}
		})
	}
}

func TestLoad_Help(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var out bytes.Buffer
			// Help wins over everything else, including a missing data dir and a bad value.
			_, err := Load([]string{arg, "--heartbeat-timeout=abc"}, env(nil), &out)
			if !errors.Is(err, pflag.ErrHelp) || !errors.Is(err, ErrHelp) {
				t.Fatalf("Load(%s) error=%v, want ErrHelp", arg, err)
			}
			help := out.String()
			for _, o := range options {
				if !strings.Contains(help, "--"+o.name+" ") {
					t.Errorf("help does not mention --%s", o.name)
				}
			}
			for _, w := range []string{"--config", "ROWBOAT_HTTP_ADDR", "ROWBOAT_CONFIG", `(default "127.0.0.1:4001")`, "(default 500ms)"} {
				if !strings.Contains(help, w) {
					t.Errorf("help does not contain %q:\n%s", w, help)
				}
			}
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	valid := func() Config { return defaultsWith("/d") }
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"underived fields are fine", func(c *Config) { c.ID, c.HTTPAdvertise, c.RaftAdvertise = "", "", "" }, ""},
		{"port 0 for tests", func(c *Config) { c.HTTPAddr, c.RaftAddr = "127.0.0.1:0", "127.0.0.1:0" }, ""},
		{"hostname", func(c *Config) { c.HTTPAdvertise = "node1.example:4001" }, ""},
		{"join forms", func(c *Config) { c.Join = []string{"a:1", "http://b:2", "http://[::1]:3/"} }, ""},
		{"bootstrap-expect 3", func(c *Config) { c.BootstrapExpect, c.Join = 3, []string{"a:1"} }, ""},
		{"short timings", func(c *Config) {
			c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout, c.CommitTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, time.Millisecond
		}, ""},

		{"data-dir", func(c *Config) { c.DataDir = "" }, "data-dir: required"},
		{"id with spaces", func(c *Config) { c.ID = " n1" }, "id:"},
		{"http-addr no port", func(c *Config) { c.HTTPAddr = "localhost" }, "http-addr: want host:port"},
		{"http-addr bad port", func(c *Config) { c.HTTPAddr = "localhost:http" }, "http-addr: want a port number"},
		{"http-addr port too big", func(c *Config) { c.HTTPAddr = "localhost:70000" }, "http-addr: want a port number"},
		{"raft-addr", func(c *Config) { c.RaftAddr = "x" }, "raft-addr: want host:port"},
		{"same addresses", func(c *Config) { c.RaftAddr = c.HTTPAddr }, "raft-addr: same as http-addr"},
		{"http-advertise unspecified", func(c *Config) { c.HTTPAdvertise = "0.0.0.0:4001" }, "http-advertise: want a host peers can dial"},
		{"raft-advertise no host", func(c *Config) { c.RaftAdvertise = ":4002" }, "raft-advertise: want a host peers can dial"},
		{"join no port", func(c *Config) { c.Join = []string{"a"} }, "join: want host:port"},
		{"join https", func(c *Config) { c.Join = []string{"https://a:1"} }, "join: want host:port or http://host:port"},
		{"join path", func(c *Config) { c.Join = []string{"http://a:1/db"} }, "join:"},
		{"join port 0", func(c *Config) { c.Join = []string{"a:0"} }, "join: want a port number 1-65535"},
		{"bootstrap-expect negative", func(c *Config) { c.BootstrapExpect = -1 }, "bootstrap-expect: must be >= 0"},
		{"bootstrap-expect without join", func(c *Config) { c.BootstrapExpect = 3 }, "bootstrap-expect: 3 needs --join"},
		{"bootstrap-expect non-voter", func(c *Config) { c.BootstrapExpect, c.Join, c.Voter = 3, []string{"a:1"}, false }, "bootstrap-expect: a read replica"},
		{"heartbeat zero", func(c *Config) { c.HeartbeatTimeout, c.LeaderLeaseTimeout = 0, 0 }, "heartbeat-timeout: must be > 0"},
		{"heartbeat below raft minimum", func(c *Config) { c.HeartbeatTimeout, c.LeaderLeaseTimeout = time.Millisecond, time.Millisecond }, "heartbeat-timeout: must be at least 5ms"},
		{"election negative", func(c *Config) { c.ElectionTimeout = -time.Second }, "election-timeout: must be > 0"},
		{"election below heartbeat", func(c *Config) { c.ElectionTimeout = 400 * time.Millisecond }, "election-timeout: must be >= heartbeat-timeout"},
		{"lease zero", func(c *Config) { c.LeaderLeaseTimeout = 0 }, "leader-lease-timeout: must be > 0"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second }, "leader-lease-timeout: must be <= heartbeat-timeout"},
		{"commit zero", func(c *Config) { c.CommitTimeout = 0 }, "commit-timeout: must be > 0"},
		{"commit below raft minimum", func(c *Config) { c.CommitTimeout = time.Microsecond }, "commit-timeout: must be at least 1ms"},
		{"apply zero", func(c *Config) { c.ApplyTimeout = 0 }, "apply-timeout: must be > 0"},
		{"snapshot-interval zero", func(c *Config) { c.SnapshotInterval = 0 }, "snapshot-interval: must be > 0"},
		{"snapshot-threshold zero", func(c *Config) { c.SnapshotThreshold = 0 }, "snapshot-threshold: must be > 0"},
		{"snapshot-log-bytes zero", func(c *Config) { c.SnapshotLogBytes = 0 }, "snapshot-log-bytes: must be > 0"},
		{"max-body-bytes zero", func(c *Config) { c.MaxBodyBytes = 0 }, "max-body-bytes: must be > 0"},
		{"max-batch negative", func(c *Config) { c.MaxBatch = -1 }, "max-batch: must be > 0"},
		{"log-level", func(c *Config) { c.LogLevel = "trace" }, `log-level: want debug, info, warn or error, got "trace"`},
		{"log-level is case-sensitive", func(c *Config) { c.LogLevel = "INFO" }, "log-level:"},
		{"log-format", func(c *Config) { c.LogFormat = "xml" }, `log-format: want text or json, got "xml"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate()=%v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate()=%v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfig_WithDerived(t *testing.T) {
	tests := []struct {
		name                 string
		in                   Config
		id, httpAdv, raftAdv string
	}{
		{"from bind addresses", Config{HTTPAddr: "10.0.0.1:1", RaftAddr: "10.0.0.1:2"}, "10.0.0.1:2", "10.0.0.1:1", "10.0.0.1:2"},
		{"unspecified hosts", Config{HTTPAddr: "0.0.0.0:1", RaftAddr: ":2"}, "127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2"},
		{"set fields kept", Config{ID: "n1", HTTPAddr: ":1", HTTPAdvertise: "h:1", RaftAddr: ":2", RaftAdvertise: "h:2"}, "n1", "h:1", "h:2"},
		{"malformed derives nothing", Config{HTTPAddr: "bad", RaftAddr: "bad"}, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.in.WithDerived()
			if got, want := [3]string{c.ID, c.HTTPAdvertise, c.RaftAdvertise}, [3]string{tc.id, tc.httpAdv, tc.raftAdv}; got != want {
				t.Fatalf("WithDerived() id, http-advertise, raft-advertise = %q, want %q", got, want)
			}
		})
	}
}

// A ROWBOAT_* variable that names no setting is reported (a typo would otherwise leave the default in place
// without a word); settings, ROWBOAT_CONFIG, and the variables rowboat's tools read are not.
func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{"ROWBOAT_HTTP_ADR=x", "ROWBOAT_HTTP_ADDR=127.0.0.1:4001", "ROWBOAT_CONFIG=a.yaml",
		"ROWBOAT_PPROF_ADDR=127.0.0.1:6060", "ROWBOAT_CLUSTER_DIR=/tmp/x", "HOME=/root", "ROWBOAT_VOTER=false"})
	if !reflect.DeepEqual(got, []string{"ROWBOAT_HTTP_ADR"}) {
		t.Fatalf("UnknownEnv = %v, want [ROWBOAT_HTTP_ADR]", got)
	}
}
