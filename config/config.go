// Package config owns rowboatd's settings: the Config struct, its defaults, and loading it from
// command-line flags, ROWBOAT_* environment variables and a YAML file, in that order of precedence.
// It is the only rowboat package that imports viper (and pflag): everything else receives a validated
// Config and never reads flags, the environment or settings files itself. It imports nothing of rowboat's.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// ErrHelp is returned (wrapped) by Load when the arguments ask for help with -h or --help, after the
// usage has been printed. It is pflag.ErrHelp, so errors.Is works with either name.
var ErrHelp = pflag.ErrHelp

// EnvPrefix starts the name of every environment variable Load reads: --http-addr is ROWBOAT_HTTP_ADDR.
const EnvPrefix = "ROWBOAT_"

// Config is everything a rowboatd node is told at start-up. Each field is set by the flag named in its
// comment, by the environment variable EnvPrefix + that name in upper case with '-' as '_', or by the
// YAML key of that name.
type Config struct {
	ID            string   // --id: unique, stable node ID; default: the raft advertise address
	HTTPAddr      string   // --http-addr: where the HTTP API listens
	HTTPAdvertise string   // --http-advertise: HTTP address peers and redirected clients dial; default HTTPAddr
	RaftAddr      string   // --raft-addr: where Raft listens
	RaftAdvertise string   // --raft-advertise: Raft address peers dial; default RaftAddr
	DataDir       string   // --data-dir: database, Raft log and snapshots; required
	Join          []string // --join: HTTP addresses of members, "host:port" or "http://host:port", tried in turn
	Voter         bool     // --voter: false makes the node a read replica (a non-voting member)

	// BootstrapExpect (--bootstrap-expect) is how many voters, found through Join, form a new cluster
	// together. 0 or 1: a node with no Join bootstraps a cluster of one.
	BootstrapExpect int
	// VoteBeforeJoin (--vote-before-join) lets a node started without data vote before it has joined (see
	// node.Config.VoteBeforeJoin).
	VoteBeforeJoin bool

	HeartbeatTimeout   time.Duration // --heartbeat-timeout: follower's wait for the leader before it campaigns
	ElectionTimeout    time.Duration // --election-timeout: candidate's wait before a new election
	LeaderLeaseTimeout time.Duration // --leader-lease-timeout: leader steps down after this long without a quorum; <= HeartbeatTimeout
	CommitTimeout      time.Duration // --commit-timeout: longest a leader waits to tell followers the commit index
	ApplyTimeout       time.Duration // --apply-timeout: how long a write waits for Raft
	MaxTimeout         time.Duration // --max-timeout: the longest ?timeout a request may ask for

	SnapshotThreshold uint64        // --snapshot-threshold: log entries since the last snapshot that trigger one
	SnapshotInterval  time.Duration // --snapshot-interval: how often to check whether a snapshot is due
	SnapshotLogBytes  int64         // --snapshot-log-bytes: log bytes since the last snapshot that trigger one
	TrailingLogs      uint64        // --trailing-logs: entries kept after a snapshot for slow followers

	MaxBodyBytes int64 // --max-body-bytes: largest HTTP request body; larger is refused with 413
	MaxBatch     int   // --max-batch: most write requests committed together in one group commit
	ForeignKeys  bool  // --foreign-keys: enforce SQLite foreign keys (on the leader)

	LogLevel  string // --log-level: debug, info, warn or error
	LogFormat string // --log-format: text or json
}

// Default returns the built-in settings. DataDir is empty (it is required), and ID, HTTPAdvertise and
// RaftAdvertise are empty, meaning "derive from the others" (see WithDerived).
func Default() Config {
	return Config{
		HTTPAddr:           "127.0.0.1:4001",
		RaftAddr:           "127.0.0.1:4002",
		Voter:              true,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		ApplyTimeout:       10 * time.Second,
		MaxTimeout:         10 * time.Minute,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		SnapshotLogBytes:   256 << 20,
		TrailingLogs:       10240,
		MaxBodyBytes:       64 << 20,
		MaxBatch:           1024,
		ForeignKeys:        true,
		LogLevel:           "info",
		LogFormat:          "text",
	}
}

// option is one setting: its flag name (also its YAML key and, transformed, its environment variable),
// its help text, and the Config field it fills. The table is the single list of settings; flags, the
// file's allowed keys and the environment variables are all derived from it.
type option struct {
	name  string
	usage string
	field func(*Config) any // a pointer to the field
}

var options = []option{
	{"id", "node ID, unique in the cluster and stable across restarts (default: the raft advertise address)",
		func(c *Config) any { return &c.ID }},
	{"http-addr", "`host:port` the HTTP API listens on",
		func(c *Config) any { return &c.HTTPAddr }},
	{"http-advertise", "`host:port` other nodes and redirected clients use to reach the HTTP API (default: --http-addr, with 127.0.0.1 for an unspecified host)",
		func(c *Config) any { return &c.HTTPAdvertise }},
	{"raft-addr", "`host:port` Raft listens on",
		func(c *Config) any { return &c.RaftAddr }},
	{"raft-advertise", "`host:port` other nodes use to reach Raft (default: --raft-addr, with 127.0.0.1 for an unspecified host)",
		func(c *Config) any { return &c.RaftAdvertise }},
	{"data-dir", "`directory` for the database, Raft log and snapshots (required)",
		func(c *Config) any { return &c.DataDir }},
	{"join", "HTTP `addresses` of cluster members, comma-separated, tried in turn; none: bootstrap a new cluster or restart",
		func(c *Config) any { return &c.Join }},
	{"voter", "join as a voting member; false makes a read replica",
		func(c *Config) any { return &c.Voter }},
	{"bootstrap-expect", "voters, found through --join, that form a new cluster together; 0 or 1: a node with no --join bootstraps alone",
		func(c *Config) any { return &c.BootstrapExpect }},
	{"vote-before-join", "a node started without data votes at once, not only once it has joined; only for when the voters left cannot elect a leader without it (two voters, one of which lost its data): it risks losing writes only the lost data held",
		func(c *Config) any { return &c.VoteBeforeJoin }},
	{"heartbeat-timeout", "how long a follower goes without hearing from the leader before it starts an election",
		func(c *Config) any { return &c.HeartbeatTimeout }},
	{"election-timeout", "how long a candidate waits before starting a new election",
		func(c *Config) any { return &c.ElectionTimeout }},
	{"leader-lease-timeout", "how long a leader keeps leading without contact from a quorum; at most --heartbeat-timeout",
		func(c *Config) any { return &c.LeaderLeaseTimeout }},
	{"commit-timeout", "longest a leader waits before telling followers the commit index",
		func(c *Config) any { return &c.CommitTimeout }},
	{"apply-timeout", "how long a write waits for Raft to commit and apply it",
		func(c *Config) any { return &c.ApplyTimeout }},
	{"max-timeout", "the longest ?timeout a request may ask for (a write holds the single writer that long at most)",
		func(c *Config) any { return &c.MaxTimeout }},
	{"snapshot-threshold", "log `entries` since the last snapshot that trigger a new one",
		func(c *Config) any { return &c.SnapshotThreshold }},
	{"snapshot-interval", "how often to check whether a snapshot is due",
		func(c *Config) any { return &c.SnapshotInterval }},
	{"snapshot-log-bytes", "log `bytes` since the last snapshot that trigger a new one",
		func(c *Config) any { return &c.SnapshotLogBytes }},
	{"trailing-logs", "log `entries` kept after a snapshot so a slow follower can catch up without one",
		func(c *Config) any { return &c.TrailingLogs }},
	{"max-body-bytes", "largest HTTP request body in `bytes`; larger is refused with 413",
		func(c *Config) any { return &c.MaxBodyBytes }},
	{"max-batch", "most write `requests` committed together in one group commit",
		func(c *Config) any { return &c.MaxBatch }},
	{"foreign-keys", "enforce SQLite foreign-key constraints, on the leader",
		func(c *Config) any { return &c.ForeignKeys }},
	{"log-level", "log `level`: debug, info, warn or error",
		func(c *Config) any { return &c.LogLevel }},
	{"log-format", "log `format`: text or json",
		func(c *Config) any { return &c.LogFormat }},
}

// configFlag names the YAML file; it is a flag and an environment variable but not a file key.
const configFlag = "config"

// otherEnv are the ROWBOAT_* variables that are no setting of Load's but that rowboat's programs, scripts
// and tests read, so that UnknownEnv does not take them for typos.
var otherEnv = []string{"PPROF_ADDR", "RAFT_DIAL_MAP", "BASE_PORT", "CLUSTER_DIR", "START_TIMEOUT", "RACE", "SOAK",
	"SOAK_NODES", "SOAK_SEED", "SNAPSHOT_BENCH", "TEST_LOG_LINES", "LEADER_ID", "LEADER_URL"}

// UnknownEnv returns the names of the ROWBOAT_* variables in environ (os.Environ's form, NAME=value) that
// name no setting: most likely typos, which would otherwise leave the default in place without a word (a
// YAML file's unknown key is an error; the environment is shared with other programs, so these are for a
// warning).
func UnknownEnv(environ []string) []string {
	known := map[string]bool{envName(configFlag): true}
	for _, o := range options {
		known[envName(o.name)] = true
	}
	for _, n := range otherEnv {
		known[EnvPrefix+n] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !known[name] {
			out = append(out, name)
		}
	}
	return out
}

// envName is the environment variable for the setting name: http-addr is ROWBOAT_HTTP_ADDR.
func envName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Load builds the Config from args (without the program name), the environment read through getenv,
// and the YAML file named by --config or ROWBOAT_CONFIG. For each setting the first source that has it
// wins: a flag, then the environment, then the file, then Default(). An empty environment variable counts
// as unset. Load then fills the derived defaults (WithDerived) and returns Validate's verdict.
//
// getenv is passed in (cmd passes os.Getenv, tests a map) so nothing reads the process environment
// behind the caller's back; nil means an empty environment. usage receives the help text for -h/--help,
// in which case the error wraps ErrHelp; nil discards it. Every other error starts with the name of the
// setting it is about (`heartbeat-timeout: ...`) and, for a bad value, says where the value came from.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if usage == nil {
		usage = io.Discard
	}
	fs := newFlagSet(usage)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: settings are flags, --name=value", fs.Arg(0))
	}

	path := getenv(envName(configFlag))
	if f := fs.Lookup(configFlag); f.Changed {
		path = f.Value.String()
	}
	var file *viper.Viper
	if path != "" {
		var err error
		if file, err = readFile(path); err != nil {
			return Config{}, err
		}
	}

	c := Default()
	var errs []error
	for _, o := range options {
		raw, source, ok := lookup(o.name, fs, getenv, file, path)
		if !ok {
			continue
		}
		if err := decode(o.field(&c), raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (from %s)", o.name, err, source))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	c = c.WithDerived()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// lookup returns the raw value of setting name from the highest-precedence source that has one, and
// that source for error messages; ok is false when none has it and the default stands.
func lookup(name string, fs *pflag.FlagSet, getenv func(string) string, file *viper.Viper, path string) (raw any, source string, ok bool) {
	if f := fs.Lookup(name); f.Changed {
		return f.Value.String(), "flag --" + name, true
	}
	if s := getenv(envName(name)); s != "" {
		return s, envName(name), true
	}
	// A key with no value (`id:`) is YAML null, which leaves the default, like an absent key.
	if file != nil && file.InConfig(name) {
		if v := file.Get(name); v != nil {
			return v, "config file " + path, true
		}
	}
	return nil, "", false
}

// readFile parses the YAML file at path. A key that names no setting is an error, so a typo is caught
// instead of silently leaving the default in place.
func readFile(path string) (*viper.Viper, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	known := make(map[string]bool, len(options))
	for _, o := range options {
		known[o.name] = true
	}
	var unknown []string
	for _, k := range v.AllKeys() {
		if !known[k] {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config: %s: unknown key %s (keys are the flag names, see --help)", path, strings.Join(unknown, ", "))
	}
	return v, nil
}

// newFlagSet declares a flag per option, plus --config. Flags hold their text unparsed; decode parses
// it later, so a bad value reads the same whether it came from a flag, the environment or the file.
func newFlagSet(out io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("rowboatd", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(out)
	fs.Var(&textValue{typ: "string"}, configFlag, "YAML `file` of settings, keyed by flag name")
	def := Default()
	for _, o := range options {
		v := &textValue{}
		switch p := o.field(&def).(type) {
		case *string:
			v.typ, v.text = "string", *p
		case *bool:
			v.typ, v.text = "bool", strconv.FormatBool(*p)
		case *int:
			v.typ, v.text = "int", strconv.Itoa(*p)
		case *int64:
			v.typ, v.text = "int", strconv.FormatInt(*p, 10)
		case *uint64:
			v.typ, v.text = "uint", strconv.FormatUint(*p, 10)
		case *time.Duration:
			v.typ, v.text = "duration", p.String()
		case *[]string:
			v.typ, v.text, v.list = "strings", strings.Join(*p, ","), true
		default:
			panic(fmt.Sprintf("config: option %s has unsupported type %T", o.name, p))
		}
		f := fs.VarPF(v, o.name, "", o.usage)
		if v.typ == "bool" {
			f.NoOptDefVal = "true" // --voter alone means --voter=true
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(out, `Usage: rowboatd [flags]

Flags:
%s
Each flag can also be set by an environment variable, %s and the flag name in upper case
with '-' as '_' (%s for --http-addr), or by a key of the same name in the YAML file
named by --config (or %s). A flag beats the environment, which beats the file.

Also: --version prints the build and exits; %sPPROF_ADDR=host:port serves Go's pprof there
(never on the API port).
`, fs.FlagUsages(), EnvPrefix, envName("http-addr"), envName(configFlag), EnvPrefix)
	}
	return fs
}

// textValue is a pflag.Value that keeps the flag's text; typ is only shown in --help. A list flag
// given several times accumulates: --join a --join b is --join a,b.
type textValue struct {
	text string
	typ  string
	list bool
	set  bool
}

func (v *textValue) String() string { return v.text }
func (v *textValue) Type() string   { return v.typ }

func (v *textValue) Set(s string) error {
	if v.list && v.set {
		v.text += "," + s
	} else {
		v.text = s
	}
	v.set = true
	return nil
}

// decode stores raw, a flag's or environment variable's text or a value decoded from YAML, into the
// field dst points to. Its errors describe the value; the caller names the setting.
func decode(dst any, raw any) error {
	switch p := dst.(type) {
	case *string:
		switch v := raw.(type) {
		case string:
			*p = strings.TrimSpace(v)
		case int, int64, uint64: // `id: 1` in YAML
			*p = fmt.Sprint(v)
		default:
			return fmt.Errorf("want a string, got %s", describe(raw))
		}
	case *bool:
		b, err := toBool(raw)
		if err != nil {
			return err
		}
		*p = b
	case *int:
		n, err := toInt(raw, math.MinInt, math.MaxInt)
		if err != nil {
			return err
		}
		*p = int(n)
	case *int64:
		n, err := toInt(raw, math.MinInt64, math.MaxInt64)
		if err != nil {
			return err
		}
		*p = n
	case *uint64:
		n, err := toUint(raw)
		if err != nil {
			return err
		}
		*p = n
	case *time.Duration:
		d, err := toDuration(raw)
		if err != nil {
			return err
		}
		*p = d
	case *[]string:
		l, err := toList(raw)
		if err != nil {
			return err
		}
		*p = l
	default:
		panic(fmt.Sprintf("config: decode into unsupported type %T", dst))
	}
	return nil
}

func toBool(raw any) (bool, error) {
	switch v := raw.(type) {
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "t", "1", "yes", "on":
			return true, nil
		case "false", "f", "0", "no", "off":
			return false, nil
		}
	}
	return false, fmt.Errorf("want true or false, got %s", describe(raw))
}

func toInt(raw any, lo, hi int64) (int64, error) {
	var n int64
	switch v := raw.(type) {
	case int:
		n = int64(v)
	case int64:
		n = v
	case uint64:
		if v > math.MaxInt64 {
			return 0, fmt.Errorf("%d is out of range", v)
		}
		n = int64(v)
	case float64: // YAML 1e6
		if v != math.Trunc(v) || v < math.MinInt64 || v >= math.MaxInt64 {
			return 0, fmt.Errorf("want an integer, got %v", v)
		}
		n = int64(v)
	case string:
		var err error
		n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is out of range", v)
		}
		if err != nil {
			return 0, fmt.Errorf("want an integer, got %q", v)
		}
	default:
		return 0, fmt.Errorf("want an integer, got %s", describe(raw))
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range", n)
	}
	return n, nil
}

func toUint(raw any) (uint64, error) {
	if v, ok := raw.(uint64); ok {
		return v, nil
	}
	if s, ok := raw.(string); ok {
		s = strings.TrimSpace(s)
		if !strings.HasPrefix(s, "-") {
			n, err := strconv.ParseUint(s, 10, 64)
			if errors.Is(err, strconv.ErrRange) {
				return 0, fmt.Errorf("%q is out of range", s)
			}
			if err != nil {
				return 0, fmt.Errorf("want a non-negative integer, got %q", s)
			}
			return n, nil
		}
	}
	n, err := toInt(raw, math.MinInt64, math.MaxInt64)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("want a non-negative integer, got %d", n)
	}
	return uint64(n), nil
}

// toDuration wants text with a unit. A bare YAML number is refused rather than read as nanoseconds,
// which would turn `heartbeat-timeout: 500` into 500ns.
func toDuration(raw any) (time.Duration, error) {
	switch v := raw.(type) {
	case time.Duration:
		return v, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("want a duration like 500ms or 10s, got %q", v)
		}
		return d, nil
	}
	return 0, fmt.Errorf("want a duration with a unit, like 500ms or 10s, got %s", describe(raw))
}

// toList accepts a YAML list or a comma-separated string. Items are trimmed and empty ones dropped, so
// "" means no items (nil).
func toList(raw any) ([]string, error) {
	var items []string
	switch v := raw.(type) {
	case string:
		items = strings.Split(v, ",")
	case []string:
		items = v
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want a list of strings, got an item %s", describe(e))
			}
			items = append(items, s)
		}
	default:
		return nil, fmt.Errorf("want a list or a comma-separated string, got %s", describe(raw))
	}
	var out []string
	for _, s := range items {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func describe(raw any) string {
	switch v := raw.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	default:
		return fmt.Sprintf("%v (%T)", v, v)
	}
}

// WithDerived returns c with the derived defaults filled in where empty: HTTPAdvertise and RaftAdvertise
// from HTTPAddr and RaftAddr (an unspecified host, "" or 0.0.0.0 or ::, becomes 127.0.0.1, since peers
// cannot dial it), then ID from RaftAdvertise. Load calls it; a Config built by hand from Default()
// should too. A malformed address derives nothing, and Validate reports it.
func (c Config) WithDerived() Config {
	if c.HTTPAdvertise == "" {
		c.HTTPAdvertise = advertised(c.HTTPAddr)
	}
	if c.RaftAdvertise == "" {
		c.RaftAdvertise = advertised(c.RaftAddr)
	}
	if c.ID == "" {
		c.ID = c.RaftAdvertise
	}
	return c
}

func advertised(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if host == "" || isUnspecified(host) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// Raft's own minimums (hashicorp/raft ValidateConfig), checked here so the error names the flag.
const (
	minRaftTimeout   = 5 * time.Millisecond
	minCommitTimeout = time.Millisecond
)

// Validate reports every setting that is unusable, one line per problem, each starting with the
// setting's flag name (`heartbeat-timeout: must be > 0`); nil means c can start a node. Empty ID,
// HTTPAdvertise and RaftAdvertise are accepted: they mean "derive" (WithDerived). Port 0 is accepted
// in addresses, for tests that let the OS pick a port.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf(name+": "+format, args...))
	}
	if strings.TrimSpace(c.ID) != c.ID {
		bad("id", "must not start or end with a space, got %q", c.ID)
	}
	if err := checkAddr(c.HTTPAddr, false); err != nil {
		bad("http-addr", "%v", err)
	}
	if err := checkAddr(c.HTTPAdvertise, true); c.HTTPAdvertise != "" && err != nil {
		bad("http-advertise", "%v", err)
	}
	if err := checkAddr(c.RaftAddr, false); err != nil {
		bad("raft-addr", "%v", err)
	}
	if err := checkAddr(c.RaftAdvertise, true); c.RaftAdvertise != "" && err != nil {
		bad("raft-advertise", "%v", err)
	}
	if c.HTTPAddr == c.RaftAddr && !strings.HasSuffix(c.HTTPAddr, ":0") {
		bad("raft-addr", "same as http-addr (%s)", c.HTTPAddr)
	}
	if c.DataDir == "" {
		bad("data-dir", "required")
	}
	for _, j := range c.Join {
		if err := checkJoin(j); err != nil {
			bad("join", "%v", err)
		}
	}
	switch {
	case c.BootstrapExpect < 0:
		bad("bootstrap-expect", "must be >= 0, got %d", c.BootstrapExpect)
	case c.BootstrapExpect > 1 && len(c.Join) == 0:
		bad("bootstrap-expect", "%d needs --join to find the other voters", c.BootstrapExpect)
	case c.BootstrapExpect > 1 && !c.Voter:
		bad("bootstrap-expect", "a read replica (--voter=false) cannot bootstrap a cluster")
	}

	for _, d := range []struct {
		name     string
		val, min time.Duration
	}{
		{"heartbeat-timeout", c.HeartbeatTimeout, minRaftTimeout},
		{"election-timeout", c.ElectionTimeout, minRaftTimeout},
		{"leader-lease-timeout", c.LeaderLeaseTimeout, minRaftTimeout},
		{"commit-timeout", c.CommitTimeout, minCommitTimeout},
		{"apply-timeout", c.ApplyTimeout, 0},
		{"max-timeout", c.MaxTimeout, 0},
		{"snapshot-interval", c.SnapshotInterval, minRaftTimeout},
	} {
		switch {
		case d.val <= 0:
			bad(d.name, "must be > 0, got %s", d.val)
		case d.val < d.min:
			bad(d.name, "must be at least %s, got %s", d.min, d.val)
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("leader-lease-timeout", "must be <= heartbeat-timeout (%s), got %s", c.HeartbeatTimeout, c.LeaderLeaseTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		bad("election-timeout", "must be >= heartbeat-timeout (%s), got %s", c.HeartbeatTimeout, c.ElectionTimeout)
	}

	if c.SnapshotThreshold == 0 {
		bad("snapshot-threshold", "must be > 0")
	}
	if c.SnapshotLogBytes <= 0 {
		bad("snapshot-log-bytes", "must be > 0, got %d", c.SnapshotLogBytes)
	}
	if c.MaxBodyBytes <= 0 {
		bad("max-body-bytes", "must be > 0, got %d", c.MaxBodyBytes)
	}
	if c.MaxBatch <= 0 {
		bad("max-batch", "must be > 0, got %d", c.MaxBatch)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log-format", "want text or json, got %q", c.LogFormat)
	}
	return errors.Join(errs...)
}

// checkAddr reports why addr is not host:port with a numeric port. A listen address may leave the host
// empty or unspecified (all interfaces); an advertised one must name a host peers can dial.
func checkAddr(addr string, advertise bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("want a port number 0-65535, got %q in %q", port, addr)
	}
	if advertise && (host == "" || isUnspecified(host)) {
		return fmt.Errorf("want a host peers can dial, got %q", addr)
	}
	return nil
}

// checkJoin reports why s is not a member's HTTP address: host:port or http://host:port.
func checkJoin(s string) error {
	addr := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("want host:port or http://host:port, got %q", s)
		}
		addr = u.Host
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("want host:port or http://host:port, got %q", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("want a port number 1-65535, got %q in %q", port, s)
	}
	return nil
}
