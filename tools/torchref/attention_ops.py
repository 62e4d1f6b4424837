#!/usr/bin/python3
"""Golden cases for the attention baselines' ops, computed by PyTorch (Debian python3-torch 1.13).

Writes ops/optest/testdata/attention_ops.safetensors, read by optest.GoldenTransformer. For each
case: the inputs, an output gradient gy, the output y and the gradients of sum(y * gy) with
respect to every input. Everything is float32; inputs come from a seeded generator.

Cases: batched matmul with every transpose combination and with a matrix shared by the batch,
one with K = 260 (past the CPU GEMM's 256-deep blocking), softmax over the last dimension
(including a row of logits near 100, where exp overflows float32 without the max shift),
layer_norm (eps 1e-5 with an offset input, eps 1e-6 at ViT-B's width 768), exact GELU,
permutations NCHW→NHWC and [B T h d]→[B h T d], linear, and torch.nn.MultiheadAttention (an
independent implementation of the attention the Go code composes from these ops).

Run from the repository root: /usr/bin/python3 tools/torchref/attention_ops.py
"""
import os

import torch
import torch.nn.functional as F
from safetensors_io import write_safetensors

torch.manual_seed(20240611)
torch.set_num_threads(1)

OUT = os.path.join("ops", "optest", "testdata", "attention_ops.safetensors")
tensors = {}


def put(name, t):
    tensors[name] = t.detach().contiguous().to(torch.float32)


def leaf(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).requires_grad_()


def run(name, inputs, fn, input_names):
    """Stores inputs, y = fn(*inputs), a random gy and d(sum(y*gy))/d input for each input."""
    y = fn(*inputs)
    gy = torch.randn_like(y)
    grads = torch.autograd.grad(y, inputs, gy)
    for n, x in zip(input_names, inputs):
        put(f"{name}.{n}", x)
    put(f"{name}.y", y)
    put(f"{name}.gy", gy)
    for n, g in zip(input_names, grads):
        put(f"{name}.g{n}", g)


def tr(x, flag):
    return x.transpose(-1, -2) if flag else x


# matmul: name, a shape, b shape, transA, transB
for name, sa, sb, ta, tb in [
    ("matmul_nn", (2, 3, 4), (2, 4, 5), False, False),
    ("matmul_tn", (2, 4, 3), (2, 4, 5), True, False),
    ("matmul_nt", (2, 3, 4), (2, 5, 4), False, True),
    ("matmul_tt", (2, 4, 3), (2, 5, 4), True, True),
    ("matmul_shared_b", (3, 4, 6), (6, 5), False, False),
    ("matmul_shared_b_t", (3, 4, 6), (5, 6), False, True),
    ("matmul_t_shared_b", (3, 6, 4), (6, 5), True, False),
    ("matmul_shared_a_t", (6, 4), (3, 6, 5), True, False),
    ("matmul_k260", (1, 20, 260), (1, 260, 12), False, False),
]:
    a, b = leaf(*sa), leaf(*sb)
    run(name, [a, b], lambda a, b, ta=ta, tb=tb: torch.matmul(tr(a, ta), tr(b, tb)), ["a", "b"])
    put(f"{name}.cfg", torch.tensor([float(ta), float(tb)]))

x = leaf(2, 3, 7, scale=3.0)
with torch.no_grad():
    x[1, 2] += 95.0  # logits near 100: exp(100) is inf in float32 without the max shift
run("softmax", [x], lambda x: torch.softmax(x, dim=-1), ["x"])

run("layer_norm", [leaf(2, 3, 8, scale=2.0, shift=5.0), leaf(8, shift=1.0), leaf(8)],
    lambda x, w, b: F.layer_norm(x, (8,), w, b, eps=1e-5), ["x", "w", "b"])
put("layer_norm.cfg", torch.tensor([1e-5]))
run("layer_norm_vit", [leaf(1, 2, 768), leaf(768, shift=1.0), leaf(768)],
    lambda x, w, b: F.layer_norm(x, (768,), w, b, eps=1e-6), ["x", "w", "b"])
put("layer_norm_vit.cfg", torch.tensor([1e-6]))

run("gelu", [leaf(2, 3, 5, scale=3.0)], lambda x: F.gelu(x), ["x"])

for name, perm in [("permute_0231", (0, 2, 3, 1)), ("permute_0213", (0, 2, 1, 3)), ("permute_3120", (3, 1, 2, 0))]:
    run(name, [leaf(2, 3, 4, 5)], lambda x, perm=perm: x.permute(*perm).contiguous(), ["x"])
    put(f"{name}.cfg", torch.tensor([float(p) for p in perm]))

run("linear", [leaf(2, 3, 6), leaf(4, 6), leaf(4)], lambda x, w, b: F.linear(x, w, b), ["x", "w", "b"])

# Multi-head attention: torch.nn.MultiheadAttention (batch_first) is the reference; its packed
# in_proj weight is split into the query/key/value projections the Go module keeps separately.
E, H = 8, 2
mha = torch.nn.MultiheadAttention(E, H, batch_first=True)
x = leaf(2, 5, E)
y, _ = mha(x, x, x, need_weights=False)
gy = torch.randn_like(y)
params = [mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight, mha.out_proj.bias]
gx, gw_in, gb_in, gw_out, gb_out = torch.autograd.grad(y, [x] + params, gy)
put("mha.x", x)
put("mha.y", y)
put("mha.gy", gy)
put("mha.gx", gx)
for i, part in enumerate(["query", "key", "value"]):
    put(f"mha.{part}.weight", mha.in_proj_weight[i * E:(i + 1) * E])
    put(f"mha.{part}.bias", mha.in_proj_bias[i * E:(i + 1) * E])
    put(f"mha.{part}.gweight", gw_in[i * E:(i + 1) * E])
    put(f"mha.{part}.gbias", gb_in[i * E:(i + 1) * E])
put("mha.out.weight", mha.out_proj.weight)
put("mha.out.bias", mha.out_proj.bias)
put("mha.out.gweight", gw_out)
put("mha.out.gbias", gb_out)
put("mha.cfg", torch.tensor([float(H)]))


write_safetensors(OUT, tensors, {"generator": "tools/torchref/attention_ops.py", "torch": torch.__version__})
print(f"wrote {OUT}: {len(tensors)} tensors, {os.path.getsize(OUT)} bytes")
