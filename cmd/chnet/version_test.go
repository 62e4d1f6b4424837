package main

import (
	"runtime/debug"
	"testing"
)

// Issue 11, point 10: `chnet --version` said "(devel)"; it names the commit the binary was built
// from, taken from the build's VCS stamp or, where Go cannot stamp (a git worktree), the linker.
func TestVersionNamesTheCommit(t *testing.T) {
	stamped := func(mod string, kv ...string) *debug.BuildInfo {
		info := &debug.BuildInfo{Main: debug.Module{Version: mod}}
		for i := 0; i < len(kv); i += 2 {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return info
	}
	const rev = "0a77129b3c4d5e6f708192a3b4c5d6e7f8091a2b"
	for _, tc := range []struct {
		info   *debug.BuildInfo
		linked string
		want   string
	}{
		{stamped("(devel)", "vcs.revision", rev, "vcs.time", "2026-12-05T07:13:32Z", "vcs.modified", "false"), "", "devel 0a77129b3c4d (2026-12-05T07:13:32Z)"},
		{stamped("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "", "devel 0a77129b3c4d-dirty"},
		{stamped("v1.2.0"), "", "v1.2.0"},
		{stamped("(devel)"), "", "devel"},
		{stamped("(devel)"), rev + "-dirty", "devel 0a77129b3c4d-dirty"},
		{stamped("(devel)"), rev, "devel 0a77129b3c4d"},
		// The stamp wins over the linker's value.
		{stamped("(devel)", "vcs.revision", "ffffffffffffffff"), rev, "devel ffffffffffff"},
	} {
		if got := versionOf(tc.info, true, tc.linked); got != tc.want {
			t.Errorf("versionOf(%v, %q) = %q, want %q", tc.info.Settings, tc.linked, got, tc.want)
		}
	}
	if got := versionOf(nil, false, ""); got == "" || got == "(devel)" {
		t.Errorf("without build information: %q", got)
	}
}
