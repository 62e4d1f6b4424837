// Package golden locates the shared reference data (../shared beside the module root, or
// $CHNET_SHARED) for tests. Without it tests skip loudly; with CHNET_REQUIRE_SHARED=1 (set by
// .ci/run) they fail instead, so CI can never pass by skipping.
package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SharedDir returns the shared data directory, or an error saying where it looked.
func SharedDir() (string, error) {
	if d := os.Getenv("CHNET_SHARED"); d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "", fmt.Errorf("CHNET_SHARED=%s is not a directory", d)
		}
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			shared := filepath.Join(filepath.Dir(dir), "shared")
			if st, err := os.Stat(shared); err == nil && st.IsDir() {
				return shared, nil
			}
			return "", fmt.Errorf("no shared data at %s (set CHNET_SHARED)", shared)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory, so no ../shared (set CHNET_SHARED)")
		}
		dir = parent
	}
}

// Path returns the path of a file under the shared directory (e.g. "golden/ops_cases.safetensors"),
// skipping the test loudly when it is absent, or failing it under CHNET_REQUIRE_SHARED=1.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	dir, err := SharedDir()
	if err == nil {
		p := filepath.Join(dir, rel)
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("SHARED REFERENCE DATA MISSING (%s): %v — this test checks nothing without it", rel, err)
	if os.Getenv("CHNET_REQUIRE_SHARED") == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}
