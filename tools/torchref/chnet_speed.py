"""PyTorch reference speed for `chnet bench speed`: the same CHNet (tools/torchref/chnet_ref.py,
which reproduces the official model exactly), the same training step (structure loss, SGD
nesterov momentum 0.9, weight decay 5e-4) and inference, on random inputs.

Run: /usr/bin/python3 tools/torchref/chnet_speed.py --batch 16 --size 352 [--device cuda] [--threads 2]
Prints one JSON object per mode, with the same fields chnet prints.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chnet_ref import CHNet, structure_loss  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=352)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mode", default="both", choices=["train", "infer", "both"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "amp16"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    net = CHNet().to(dev)
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
    y = (torch.rand(a.batch, 1, a.size, a.size, device=dev) < 0.2).float()
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4, nesterov=True)
    scaler = torch.cuda.amp.GradScaler(enabled=a.precision == "amp16")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train_step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, enabled=a.precision == "amp16"):
            loss = structure_loss(net(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        loss.item()

    def infer_step():
        with torch.no_grad(), torch.autocast(dev.type, enabled=a.precision == "amp16"):
            torch.sigmoid(net(x)).cpu()

    modes = ["train", "infer"] if a.mode == "both" else [a.mode]
    for mode in modes:
        net.train(mode == "train")
        step = train_step if mode == "train" else infer_step
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(a.warmup + a.repeat):
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1000)
        s = sorted(times)
        med = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
        if dev.type == "cuda":
            peak, where = torch.cuda.max_memory_allocated(), "torch.cuda.max_memory_allocated"
        else:
            peak, where = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak resident memory"
        print(json.dumps({"mode": mode, "backend": "pytorch " + torch.__version__, "device": str(dev), "precision": a.precision,
                          "threads": a.threads, "batch": a.batch, "size": a.size, "step_ms": times, "median_ms": med,
                          "min_ms": s[0], "max_ms": s[-1], "images_per_s": a.batch / (med / 1000), "peak_memory_bytes": peak,
                          "peak_memory_of": where}))


if __name__ == "__main__":
    main()
