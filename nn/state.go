package nn

import (
	"fmt"
	"sort"
	"strings"

	"github.com/chnet/chnet/ops"
)

// HostTensor is a tensor's shape and values in host memory, as checkpoints hold them.
type HostTensor struct {
	Shape []int
	Data  []float32
}

// State is a module's full state in host memory: tensors by state-dict name, integer counters,
// and the names in PyTorch's order.
type State struct {
	Tensors  map[string]HostTensor
	Counters map[string]int64
	Order    []string
}

// StateOf copies m's parameters, buffers and counters to the host.
func StateOf(b ops.Backend, m Module) (*State, error) {
	s := &State{Tensors: map[string]HostTensor{}, Counters: map[string]int64{}}
	var err error
	Walk(m, "", func(name string, e Entry) {
		if err != nil {
			return
		}
		t := *e.Ptr
		v, derr := b.Download(t)
		if derr != nil {
			err = fmt.Errorf("state %s: %w", name, derr)
			return
		}
		s.Tensors[name] = HostTensor{Shape: append([]int(nil), t.Shape()...), Data: v}
		s.Order = append(s.Order, name)
	})
	WalkCounters(m, "", func(name string, c Counter) {
		s.Counters[name] = *c.Ptr
	})
	return s, err
}

// LoadOptions control how a state is matched to a module.
type LoadOptions struct {
	// Rename maps a name in the source to the module's name; return "" to ignore the entry.
	Rename func(string) string
	// Prefix, when set, loads only the module's entries under it (e.g. "encode1." for a
	// backbone), matched against source names with the prefix added.
	Prefix string
	// AllowMissing lets module entries absent from the source keep their values.
	AllowMissing bool
	// IgnoreUnexpected lets source entries with no module counterpart pass.
	IgnoreUnexpected bool
}

// LoadReport lists what a load did.
type LoadReport struct {
	Loaded, Missing, Unexpected, Ignored []string
}

// LoadState copies values from src into m's tensors (uploading to b), checking every shape.
// Counters missing from src are left as they are (PyTorch tolerates absent num_batches_tracked).
func LoadState(b ops.Backend, m Module, src *State, opt LoadOptions) (LoadReport, error) {
	var rep LoadReport
	byName := map[string]string{} // module name -> source name
	for name := range src.Tensors {
		dst := name
		if opt.Rename != nil {
			dst = opt.Rename(name)
		}
		if dst == "" {
			rep.Ignored = append(rep.Ignored, name)
			continue
		}
		if prev, dup := byName[dst]; dup {
			return rep, fmt.Errorf("source tensors %q and %q both map to %q", prev, name, dst)
		}
		byName[dst] = name
	}
	used := map[string]bool{}
	var errs []string
	defer ops.ParamsWritten() // folded batch norms (ConvBN) fold again
	Walk(m, "", func(name string, e Entry) {
		if opt.Prefix != "" && !strings.HasPrefix(name, opt.Prefix) {
			return
		}
		srcName, ok := byName[name]
		if !ok {
			rep.Missing = append(rep.Missing, name)
			return
		}
		used[name] = true
		st := src.Tensors[srcName]
		t := *e.Ptr
		if !shapeEqual(st.Shape, t.Shape()) {
			errs = append(errs, fmt.Sprintf("tensor %q: model has shape %v, source %q has %v", name, t.Shape(), srcName, st.Shape))
			return
		}
		if err := b.Upload(t, st.Data); err != nil {
			errs = append(errs, fmt.Sprintf("tensor %q: %v", name, err))
			return
		}
		rep.Loaded = append(rep.Loaded, name)
	})
	WalkCounters(m, "", func(name string, c Counter) {
		for srcName, v := range src.Counters {
			dst := srcName
			if opt.Rename != nil {
				dst = opt.Rename(srcName)
			}
			if dst == name {
				*c.Ptr = v
			}
		}
	})
	for dst, srcName := range byName {
		if !used[dst] && (opt.Prefix == "" || strings.HasPrefix(dst, opt.Prefix)) {
			rep.Unexpected = append(rep.Unexpected, srcName)
		}
	}
	sort.Strings(rep.Missing)
	sort.Strings(rep.Unexpected)
	if len(errs) > 0 {
		sort.Strings(errs)
		return rep, fmt.Errorf("%d shape/upload errors: %s", len(errs), strings.Join(errs, "; "))
	}
	if len(rep.Missing) > 0 && !opt.AllowMissing {
		return rep, fmt.Errorf("%d tensors missing from the source, e.g. %s", len(rep.Missing), strings.Join(firstN(rep.Missing, 5), ", "))
	}
	if len(rep.Unexpected) > 0 && !opt.IgnoreUnexpected {
		return rep, fmt.Errorf("%d unexpected tensors in the source, e.g. %s", len(rep.Unexpected), strings.Join(firstN(rep.Unexpected, 5), ", "))
	}
	return rep, nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func shapeEqual(a []int, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
