package train

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/chnet/chnet/internal/safetensors"
	"github.com/chnet/chnet/nn"
)

// CheckpointFormat names the layout of chnet's checkpoint files in their metadata.
const CheckpointFormat = "chnet-checkpoint/1"

// optimPrefix marks optimiser tensors; model tensors keep their plain state-dict names, so a
// checkpoint is also an ordinary safetensors state dict for other tools.
const optimPrefix = "optimizer.momentum."

// Checkpoint is everything needed to predict with a model or resume its training exactly.
type Checkpoint struct {
	Model *nn.State
	// Momentum holds SGD buffers by parameter name; empty in inference-only files.
	Momentum map[string]nn.HostTensor
	// ModelConfig and TrainState are JSON documents owned by the caller.
	ModelConfig json.RawMessage
	TrainState  json.RawMessage
}

// SaveCheckpoint writes ck atomically (temp file, fsync, rename). With half set, model tensors
// are stored as float16 (smaller, for inference; resume needs float32).
func SaveCheckpoint(path string, ck *Checkpoint, half bool) error {
	ts := map[string]safetensors.Tensor{}
	for name, t := range ck.Model.Tensors {
		if half && !strings.Contains(name, "running_") {
			ts[name] = safetensors.F16Tensor(t.Data, t.Shape)
		} else {
			ts[name] = safetensors.F32Tensor(t.Data, t.Shape)
		}
	}
	for name, v := range ck.Model.Counters {
		ts[name] = safetensors.I64Scalar(v)
	}
	for name, t := range ck.Momentum {
		ts[optimPrefix+name] = safetensors.F32Tensor(t.Data, t.Shape)
	}
	meta := map[string]string{"format": CheckpointFormat}
	if ck.ModelConfig != nil {
		meta["model_config"] = string(ck.ModelConfig)
	}
	if ck.TrainState != nil {
		meta["train_state"] = string(ck.TrainState)
	}
	order, err := json.Marshal(ck.Model.Order)
	if err != nil {
		return err
	}
	meta["order"] = string(order)
	return safetensors.WriteFile(path, ts, meta)
}

// LoadCheckpoint reads a checkpoint written by SaveCheckpoint, refusing non-finite values.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if got := f.Metadata["format"]; got != CheckpointFormat {
		return nil, fmt.Errorf("%s: not a chnet checkpoint (format %q, want %q); convert PyTorch files with `chnet convert`", path, got, CheckpointFormat)
	}
	return fromFile(path, f)
}

// LoadStateDict reads model weights from any safetensors state dict: a chnet checkpoint (its
// model part) or a file written by another tool (float tensors by name, I64 scalars as counters).
func LoadStateDict(path string) (*nn.State, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ck, err := fromFile(path, f)
	if err != nil {
		return nil, err
	}
	return ck.Model, nil
}

// fromFile splits a parsed file into model state, optimiser state and metadata.
func fromFile(path string, f *safetensors.File) (*Checkpoint, error) {
	ck := &Checkpoint{
		Model:    &nn.State{Tensors: map[string]nn.HostTensor{}, Counters: map[string]int64{}},
		Momentum: map[string]nn.HostTensor{},
	}
	if s, ok := f.Metadata["model_config"]; ok {
		ck.ModelConfig = json.RawMessage(s)
	}
	if s, ok := f.Metadata["train_state"]; ok {
		ck.TrainState = json.RawMessage(s)
	}
	if s, ok := f.Metadata["order"]; ok {
		if err := json.Unmarshal([]byte(s), &ck.Model.Order); err != nil {
			return nil, fmt.Errorf("%s: metadata order: %w", path, err)
		}
	}
	for _, name := range f.Names {
		t := f.Tensors[name]
		if t.DType == "I64" {
			v, err := t.Int64()
			if err != nil || len(v) != 1 {
				return nil, fmt.Errorf("%s: tensor %q: integer state must be one value", path, name)
			}
			ck.Model.Counters[name] = v[0]
			continue
		}
		v, err := t.Float32()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("%s: tensor %q holds a non-finite value (%v at index %d)", path, name, x, i)
			}
		}
		h := nn.HostTensor{Shape: t.Shape, Data: v}
		if rest, ok := strings.CutPrefix(name, optimPrefix); ok {
			ck.Momentum[rest] = h
		} else {
			ck.Model.Tensors[name] = h
		}
	}
	return ck, nil
}
