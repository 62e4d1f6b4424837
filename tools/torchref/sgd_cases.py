#!/usr/bin/python3
"""Golden cases for the SGD update, computed by torch.optim.SGD itself (Debian python3-torch
1.13) in float64.

Writes ops/optest/testdata/sgd_cases.safetensors, read by optest.GoldenSGD. Each case runs three
steps of one configuration from a zero momentum buffer, with a new gradient and a new learning
rate every step (as the per-epoch triangular schedule changes it), and stores the change to the
parameter since the start (delta<k> = param after step k - param0, exact in float64 before
rounding) and the momentum buffer after every step. Configurations: the official recipe (nesterov, momentum 0.9,
weight decay 5e-4), plain momentum, no momentum, nesterov without weight decay, and a strong
weight decay with momentum 0.5, so dropping or reordering any term changes some result by far
more than float32 rounding. Parameters of order 1 and gradients of order 0.1 keep the weight
decay term (5e-4 x 1) at 1/200 of the gradient; for the recipe, a tensor of 17000 values also
crosses the CPU kernel's parallel chunks (16384) and many Vulkan workgroups.

Run from the repository root: /usr/bin/python3 tools/torchref/sgd_cases.py
"""
import json
import os

import torch
from safetensors_io import write_safetensors

torch.manual_seed(20261204)

OUT = os.path.join("ops", "optest", "testdata", "sgd_cases.safetensors")
LRS = [0.05, 0.03, 0.01]
CONFIGS = {
    "recipe": dict(momentum=0.9, weight_decay=5e-4, nesterov=True),
    "momentum": dict(momentum=0.9, weight_decay=5e-4, nesterov=False),
    "plain": dict(momentum=0.0, weight_decay=5e-4, nesterov=False),
    "nesterov_no_wd": dict(momentum=0.9, weight_decay=0.0, nesterov=True),
    "strong_wd": dict(momentum=0.5, weight_decay=0.1, nesterov=True),
}
SHAPES = {"small": [7, 5], "large": [17000]}

tensors, cases = {}, []
for cname, cfg in CONFIGS.items():
    for sname, shape in SHAPES.items():
        if sname == "large" and cname != "recipe":
            continue
        name = "%s_%s" % (cname, sname)
        p = torch.randn(shape, dtype=torch.float32).double()  # float32 values: what the kernel starts from
        grads = [(0.1 * torch.randn(shape, dtype=torch.float32)).double() for _ in LRS]
        tensors[name + ".param0"] = p.float()
        w = torch.nn.Parameter(p.clone())
        opt = torch.optim.SGD([w], lr=LRS[0], dampening=0, **cfg)
        for k, (lr, g) in enumerate(zip(LRS, grads), 1):
            for group in opt.param_groups:
                group["lr"] = lr
            w.grad = g.clone()
            opt.step()
            tensors["%s.grad%d" % (name, k)] = g.float()
            tensors["%s.delta%d" % (name, k)] = (w.detach() - p).float()
            if cfg["momentum"] != 0:
                tensors["%s.momentum%d" % (name, k)] = opt.state[w]["momentum_buffer"].float()
        cases.append({"name": name, "lrs": LRS, **cfg})

write_safetensors(OUT, tensors, {"cases": json.dumps(cases), "torch": torch.__version__,
                                 "what": "torch.optim.SGD in float64, three steps per case, results rounded to float32"})
print("wrote %d tensors for %d cases to %s" % (len(tensors), len(cases), OUT))
