package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/chnet/chnet/train/metrics"
	"github.com/urfave/cli/v2"
)

// flagsAfterArgs catches flags written after positional arguments, which urfave/cli passes
// through as arguments, and says how to fix the command line.
func flagsAfterArgs(c *cli.Context) error {
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			return usageErr(fmt.Errorf("flag %s comes after the arguments; put flags first: chnet %s [flags] ARGS", a, c.Command.Name))
		}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func firstN(s []string, n int) []string {
	sort.Strings(s)
	if len(s) > n {
		return s[:n]
	}
	return s
}

// finiteOrNull is a float64 written to JSON as null when it is NaN or infinite, which JSON
// cannot hold: a metric undefined on some data (the MATLAB toolbox's specificity on an
// all-foreground mask) is written as null and the other metrics are kept.
type finiteOrNull float64

func (f finiteOrNull) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

func jsonValues(m map[string]float64) map[string]finiteOrNull {
	out := make(map[string]finiteOrNull, len(m))
	for k, v := range m {
		out[k] = finiteOrNull(v)
	}
	return out
}

// jsonTaskValue is metrics.TaskValue with the same JSON field names.
type jsonTaskValue struct {
	Column, Key string
	Value       finiteOrNull
	Note        string
}

func jsonTable(vals []metrics.TaskValue) []jsonTaskValue {
	out := make([]jsonTaskValue, len(vals))
	for i, v := range vals {
		out[i] = jsonTaskValue{v.Column, v.Key, finiteOrNull(v.Value), v.Note}
	}
	return out
}
