package nn

import (
	"fmt"

	"github.com/chnet/chnet/internal/pth"
)

// LoadPth reads a PyTorch checkpoint (.pth, zip or legacy container) into a State without
// executing anything: float tensors become tensors (every value must be finite), integer
// scalars (num_batches_tracked) become counters.
func LoadPth(path string) (*State, error) {
	sd, err := pth.Load(path)
	if err != nil {
		return nil, err
	}
	st := &State{Tensors: map[string]HostTensor{}, Counters: map[string]int64{}}
	for _, k := range sd.Keys {
		t := sd.Tensors[k]
		if t.F32 == nil {
			if len(t.I64) == 1 && len(t.Shape) == 0 {
				st.Counters[k] = t.I64[0]
				continue
			}
			return nil, fmt.Errorf("%s: tensor %q is %s %v, expected float weights or an integer scalar", path, k, t.DType, t.Shape)
		}
		if err := t.CheckFinite(); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, k, err)
		}
		st.Tensors[k] = HostTensor{Shape: t.Shape, Data: t.F32}
		st.Order = append(st.Order, k)
	}
	return st, nil
}
