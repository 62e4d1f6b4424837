package nn

// Seq is a container that only names its children, like torch.nn.Sequential (or ModuleList) in a
// state dict: numbered entries may skip indices that hold parameter-free layers (ReLU, pooling).
type Seq []Child

// Children implements Module.
func (s Seq) Children() []Child { return s }

// Tensors implements Module; a container owns no tensors itself.
func (s Seq) Tensors() []Entry { return nil }
