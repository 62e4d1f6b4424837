#!/usr/bin/python3
"""Times CHNet's convolutions (forward, then grad input and grad weight) and a 1024³ SGEMM in
PyTorch on two threads: the reference that bench/torchref compares ops/cpu's BenchmarkConv2D
and BenchmarkSGEMM with.

Run with Debian's interpreter (python3-torch 1.13): /usr/bin/python3 torchref.py [-reps 3]
[-only name,...] [-list]. Prints one JSON object per line: {"name", "fwd_ms", "bwd_ms", "ms"}
for each layer, or {"name": "sgemm_1024", "ms", "gflops"}; -list prints the names instead.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

# name, (N, C, H, W), O, kernel, stride, pad, bias: the list in ops/cpu/conv2d_bench_test.go.
LAYERS = [
    ("stem_7x7_s2_b16", (16, 3, 352, 352), 64, 7, 2, 3, False),
    ("layer1_3x3_b16", (16, 26, 88, 88), 26, 3, 1, 1, False),
    ("layer1_1x1_64to104_b16", (16, 64, 88, 88), 104, 1, 1, 0, False),
    ("layer2_3x3_s2_b16", (16, 52, 88, 88), 52, 3, 2, 1, False),
    ("layer2_3x3_b16", (16, 52, 44, 44), 52, 3, 1, 1, False),
    ("layer2_3x3_b1", (1, 52, 44, 44), 52, 3, 1, 1, False),
    ("layer2_1x1_512to208_b16", (16, 512, 44, 44), 208, 1, 1, 0, False),
    ("layer3_3x3_b16", (16, 104, 22, 22), 104, 3, 1, 1, False),
    ("layer3_1x1_416to1024_b16", (16, 416, 22, 22), 1024, 1, 1, 0, False),
    ("head_1x1_256to32_b16", (16, 256, 352, 352), 32, 1, 1, 0, True),
]


def time_conv(xshape, o, k, stride, pad, bias, reps):
    x = torch.randn(xshape).requires_grad_()
    w = torch.randn(o, xshape[1], k, k).requires_grad_()
    # The bias is a constant: its gradient is a reduction, not part of the Go kernels' timing.
    b = torch.randn(o) if bias else None
    fwd, bwd = [], []
    gy = None
    for i in range(reps + 1):  # the first run warms up allocator and oneDNN primitives
        t0 = time.perf_counter()
        y = F.conv2d(x, w, b, stride=stride, padding=pad)
        t1 = time.perf_counter()
        if gy is None:
            gy = torch.randn_like(y)
        gx, gw = torch.autograd.grad(y, (x, w), gy)
        t2 = time.perf_counter()
        del y, gx, gw
        if i > 0:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
    f, g = sum(fwd) / reps * 1e3, sum(bwd) / reps * 1e3
    return {"fwd_ms": f, "bwd_ms": g, "ms": f + g}


def time_sgemm(n, reps):
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    ms = (time.perf_counter() - t0) / reps * 1e3
    return {"ms": ms, "gflops": 2 * n**3 / (ms / 1e3) / 1e9}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-reps", type=int, default=3, help="timed repetitions after one warm-up")
    ap.add_argument("-only", default="", help="comma-separated names to run (default: all)")
    ap.add_argument("-list", action="store_true", help="print the benchmark names and exit")
    args = ap.parse_args()
    if args.list:
        print("sgemm_1024")
        for layer in LAYERS:
            print(layer[0])
        return
    torch.set_num_threads(2)
    only = set(filter(None, args.only.split(",")))
    if not only or "sgemm_1024" in only:
        r = time_sgemm(1024, max(args.reps, 10))
        print(json.dumps({"name": "sgemm_1024", **r}), flush=True)
    for name, xshape, o, k, stride, pad, bias in LAYERS:
        if only and name not in only:
            continue
        r = time_conv(xshape, o, k, stride, pad, bias, args.reps)
        print(json.dumps({"name": name, **r}), flush=True)


if __name__ == "__main__":
    main()
