// Package version tells which build of rowboat is running, from what the Go toolchain recorded in the binary.
package version

import (
	"runtime/debug"
	"strings"
)

// String is the module version (or "devel" for a build from a checkout), the commit it was built from when
// known (with "+dirty" if the tree had uncommitted changes), and the Go version, such as
// "devel 7d05a13 (go1.26.8)".
func String() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := strings.Trim(info.Main.Version, "()")
	if v == "" {
		v = "devel"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	out := v
	if rev != "" {
		out += " " + rev + dirty
	}
	return out + " (" + info.GoVersion + ")"
}
