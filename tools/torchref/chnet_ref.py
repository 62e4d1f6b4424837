"""CHNet in PyTorch, written from docs/reference.md §1.1-§2 (not the official code), used as an
independent reference for the Go engine.

It first proves it is the official model: with shared/golden/chnet_v1_seed0.pth loaded it must
reproduce the official code's outputs in shared/golden/chnet_v1_io.safetensors (eval logits,
training loss and gradients). Then it writes chnet/testdata/eval_backward.safetensors: gradients
of the structure loss in EVAL mode (batch norm with running statistics) computed in float64,
which, unlike the training-mode gradients of the golden file, are well conditioned, so the Go
model can be held to tight tolerances there, together with every ReLU pre-activation whose
exact value lies within float32 rounding of zero (its call, index and exact value: the Go test
pins those units to their exact side on every backend); and
chnet/testdata/train_backward64.safetensors: the golden training step computed in float64, the
exact result that float32 engines (PyTorch's included) approximate. Training-mode batch norm
over 32 values per channel makes that step ill-conditioned: PyTorch's own float32 gradients lie
up to a few percent from it (printed below).

Run: /usr/bin/python3 tools/torchref/chnet_ref.py ../shared chnet/testdata
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors_io import write_safetensors

torch.set_num_threads(2)


class Bottle2neck(nn.Module):
    def __init__(self, inplanes, planes, stride, stage):
        super().__init__()
        width = planes * 26 // 64
        self.width, self.stage, self.stride = width, stage, stride
        self.conv1 = nn.Conv2d(inplanes, 4 * width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4 * width)
        self.convs = nn.ModuleList([nn.Conv2d(width, width, 3, stride, 1, bias=False) for _ in range(3)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(3)])
        self.conv3 = nn.Conv2d(4 * width, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = None
        if stride != 1 or inplanes != 4 * planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, 4 * planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(4 * planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        spx = torch.split(out, self.width, 1)
        outs = []
        for i in range(3):
            sp = spx[i] if (i == 0 or self.stage) else sp + spx[i]
            sp = F.relu(self.bns[i](self.convs[i](sp)))
            outs.append(sp)
        outs.append(F.avg_pool2d(spx[3], 3, self.stride, 1) if self.stage else spx[3])
        out = self.bn3(self.conv3(torch.cat(outs, 1)))
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(out + res)


def layer(inplanes, planes, blocks, stride):
    mods = [Bottle2neck(inplanes, planes, stride, True)]
    mods += [Bottle2neck(planes * 4, planes, 1, False) for _ in range(blocks - 1)]
    return nn.Sequential(*mods)


class CHNet(nn.Module):
    """Same module tree (and so state_dict names) as the official CHNet."""

    def __init__(self, width=32):
        super().__init__()
        self.encode1 = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        self.encode2 = nn.Sequential(nn.MaxPool2d(3, 2, 1), layer(64, 64, 3, 1))
        self.encode3 = layer(256, 128, 4, 2)
        self.encode4 = layer(512, 256, 6, 2)
        self.tf1, self.tf2 = nn.Conv2d(64, 64, 1), nn.Conv2d(256, 64, 1)
        self.tf3, self.tf4 = nn.Conv2d(512, 64, 1), nn.Conv2d(1024, 64, 1)
        self.classifier = nn.Sequential(nn.Conv2d(256, width, 1), nn.ReLU(), nn.BatchNorm2d(width), nn.Conv2d(width, 1, 1))

    def forward(self, x):
        f1 = self.encode1(x)
        f2 = self.encode2(f1)
        f3 = self.encode3(f2)
        f4 = self.encode4(f3)
        size = x.shape[2:]
        ups = [F.interpolate(tf(f), size=size, mode="bilinear", align_corners=False)
               for tf, f in zip((self.tf1, self.tf2, self.tf3, self.tf4), (f1, f2, f3, f4))]
        return self.classifier(torch.cat(ups, 1))


def structure_loss(pred, mask):
    weit = 1 + 5 * torch.abs(F.avg_pool2d(mask, 31, 1, 15) - mask)
    bce = F.binary_cross_entropy_with_logits(pred, mask)
    p = torch.sigmoid(pred)
    inter = ((p * mask) * weit).sum((2, 3))
    union = ((p + mask) * weit).sum((2, 3))
    return (bce + 1 - (inter + 1) / (union - inter + 1)).mean()


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        dt = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}[v["dtype"]]
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(data[a:b]), dtype=dt).reshape(v["shape"])
    return out, header.get("__metadata__", {})


def relerr(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


# ReLU units whose exact pre-activation lies within BAND x (that ReLU call's largest |input|) of
# zero are "ambiguous in float32": see main, step 2.
BAND = 1e-5


class ReLUTap:
    """Stands in for F.relu, which the nn.ReLU modules call too, inside a with block: keeps every
    call's input in forward order (the Go model's tape order: stem; per Bottle2neck relu(bn1), the
    three split relus, the output relu; the head's relu) and returns F.relu's own result, except
    at the units of pins ({call: [(flat index, exact value)]}), whose output becomes max(exact, 0)
    and whose gradient passes exactly where the exact value is positive."""

    def __init__(self, pins=None):
        self.inputs, self.pins = [], pins or {}

    def __enter__(self):
        self.relu, F.relu = F.relu, self
        return self

    def __exit__(self, *exc):
        F.relu = self.relu

    def __call__(self, x, inplace=False):
        assert not inplace
        n = len(self.inputs)
        self.inputs.append(x.detach().clone())
        if n not in self.pins:
            return self.relu(x)
        idx = torch.tensor([i for i, _ in self.pins[n]])
        exact = torch.tensor([v for _, v in self.pins[n]], dtype=x.dtype)
        gate = (x.detach() > 0).to(x.dtype).flatten()
        gate[idx] = (exact > 0).to(x.dtype)
        y = x * gate.view_as(x)  # ReLU's value and gradient, with the pinned units' gate
        fix = torch.zeros_like(gate)
        fix[idx] = exact.clamp(min=0) - y.detach().flatten()[idx]
        return y + fix.view_as(x)


def n_relu_calls(net):
    """ReLU calls in one forward: the nn.ReLU modules (stem, head) and five per Bottle2neck."""
    return sum(isinstance(m, nn.ReLU) for m in net.modules()) + 5 * sum(isinstance(m, Bottle2neck) for m in net.modules())


def load_net(shared, dtype):
    net = CHNet().to(dtype)
    net.load_state_dict({k: (v.to(dtype) if v.is_floating_point() else v)
                         for k, v in torch.load(os.path.join(shared, "golden/chnet_v1_seed0.pth"), map_location="cpu").items()})
    return net


def eval_backward(shared, x, mask, dtype, pins=None):
    """The eval-mode structure loss's backward in dtype: results by name, and every ReLU input."""
    net = load_net(shared, dtype)
    net.eval()
    xx = x.detach().clone().to(dtype).requires_grad_(True)
    with ReLUTap(pins) as tap:
        lg = net(xx)
    ls = structure_loss(lg, mask.to(dtype))
    ls.backward()
    res = {"logits": lg.detach(), "loss": ls.detach().reshape(1), "grad.input": xx.grad,
           "grad_norms": torch.stack([p.grad.double().norm() for p in net.parameters()])}
    for n, p in net.named_parameters():
        res["grad." + n] = p.grad
    return res, tap.inputs


def find_kinks(v32, v64, band):
    """The ReLU units whose exact pre-activation lies within band x (that call's largest |input|)
    of zero, given a float32 run's (v32) and the exact run's (v64) ReLU inputs in forward order.
    Returns the worst float32 deviation (relative to each call's largest |input|), the kinks for
    the Go test, the pins for ReLUTap, the calls' metadata and the number of flipped units."""
    scales = [v.abs().max().item() for v in v64]
    dev = [((a.double() - b).abs().max() / s).item() for a, b, s in zip(v32, v64, scales)]
    worst = max(range(len(dev)), key=lambda i: dev[i])
    print("  %d ReLU calls; float32 forward vs float64 at the ReLU inputs: worst %.2g (call %d %s), median %.2g" % (
        len(dev), dev[worst], worst, list(v64[worst].shape), sorted(dev)[len(dev) // 2]))
    assert dev[worst] <= band / 5, "float32 deviates more than the ambiguity band allows for"
    kinks, pins, flipped = [], {}, 0
    for n, (a, b, s) in enumerate(zip(v32, v64, scales)):
        a, b = a.flatten(), b.flatten()
        near = (b.abs() <= band * s).nonzero().flatten().tolist()
        flips = ((a > 0) != (b > 0)).nonzero().flatten().tolist()
        assert set(flips) <= set(near), "float32 flips a ReLU unit outside the band: %d %s" % (n, flips)
        flipped += len(flips)
        for i in near:
            assert abs(b[i].item()) > 1e-12 * s, "a pre-activation at zero even in float64"
            kinks.append({"call": n, "index": i, "exact": b[i].item()})
            pins.setdefault(n, []).append((i, b[i].item()))
    print("  %d ambiguous ReLU units (|exact| <= %g x the call's largest |input|), %d of them on the other side in PyTorch's float32" % (
        len(kinks), band, flipped))
    calls = [{"shape": list(v.shape), "max_abs": s} for v, s in zip(v64, scales)]
    return dev[worst], kinks, pins, calls


def errors(r32, r64, names):
    """Relative error of every float32 result against the float64 one, and of every parameter's
    gradient norm (norm.<name>) and update norm (delta_norm.<name>) where r64 has them."""
    err = {k: relerr(r32[k].double(), r64[k]) for k in r64 if not k.endswith("_norms")}
    for key, prefix in (("grad_norms", "norm."), ("delta_norms", "delta_norm.")):
        if key in r64:
            for i, n in enumerate(names):
                err[prefix + n] = abs(r32[key][i].item() - r64[key][i].item()) / r64[key][i].item()
    return err


def train_step(shared, x, mask, dtype, pins=None):
    """The golden training step in dtype: training-mode forward (batch statistics), structure
    loss, backward, one torch.optim.SGD step (lr 0.05, momentum 0.9, weight decay 5e-4,
    nesterov, as the golden file's sgd1.*). Returns results by name (sgd1.delta.<p> is the
    change the step made to p, computed in dtype as after - before) and every ReLU input."""
    net = load_net(shared, dtype)
    net.train()
    xx = x.detach().clone().to(dtype).requires_grad_(True)
    with ReLUTap(pins) as tap:
        lg = net(xx)
    ls = structure_loss(lg, mask.to(dtype))
    ls.backward()
    res = {"logits": lg.detach(), "loss": ls.detach().reshape(1), "grad.input": xx.grad}
    for n, p in net.named_parameters():
        res["grad." + n] = p.grad
    res["grad_norms"] = torch.stack([p.grad.double().norm() for p in net.parameters()])
    for n, m in net.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            res["after.%s.running_mean" % n] = m.running_mean.clone()
            res["after.%s.running_var" % n] = m.running_var.clone()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True).step()
    deltas = []
    for n, p in net.named_parameters():
        res["sgd1.delta." + n] = p.detach() - before[n]
        deltas.append(res["sgd1.delta." + n].double().norm())
    res["delta_norms"] = torch.stack(deltas)
    return res, tap.inputs


# In training mode batch statistics over as few as 32 values per channel (layer3 at 4x4, batch
# 2) amplify rounding: a float32 forward lies up to ~5e-5 of each ReLU call's largest |input|
# from the exact one (30 times more than in eval mode), so the ambiguity band is wider.
TRAIN_BAND = 3e-4


def main(shared, outdir):
    net = load_net(shared, torch.float32)
    io, meta = read_safetensors(os.path.join(shared, "golden/chnet_v1_io.safetensors"))
    x, mask = io["input"], io["target"]
    names = [n for n, _ in net.named_parameters()]

    # 1. Prove this is the official model: the exact (float64) results against the official
    #    code's float32 ones. Forward values agree to float32 rounding (in training mode batch
    #    statistics amplify it to ~5e-5); the training step's
    #    input gradient only to ~3%, because PyTorch's float32 run flipped ReLU units at kinks
    #    (see step 3); a different model would miss by far more.
    ev64, _ = eval_backward(shared, x, mask, torch.float64)
    tr64, _ = train_step(shared, x, mask, torch.float64)
    for name, got, want, tol in (
            ("eval logits", ev64["logits"], io["eval.logits"], 1e-5),
            ("train logits", tr64["logits"], io["train.logits"], 1e-4),
            ("train loss", tr64["loss"], io["train.loss"], 1e-5),
            ("train grad input", tr64["grad.input"], io["train.grad.input"], 0.05)):
        e = relerr(want.double(), got)
        print("%s, official float32 vs exact: %.2g" % (name, e))
        assert e < tol, (name, e)

    # 2. The eval-mode backward, exactly: in float64 (eval-mode batch norm is affine, so the
    #    problem is well conditioned and float64 is the truth that float32 engines approximate),
    #    with every ReLU input recorded in forward order.
    #    How far a float32 forward pass lies from the exact one, per ReLU call, relative to that
    #    call's largest |input|: ~1e-6 (deep layers accumulate rounding). Another float32 engine
    #    (other summation orders) lands a similar distance away on either side, so a
    #    pre-activation within about this distance of zero may land on either side in float32:
    #    its ReLU's mask bit is a coin flip, and every gradient below it moves by that unit's
    #    contribution. BAND (1e-5, asserted to stay at least five times the worst deviation) marks
    #    those units; their exact sign is certain (float64 deviates by ~1e-15) and the Go test
    #    pins them to it on every backend. Pinning a unit that does not flip changes nothing, so a
    #    generous band costs nothing, while one too narrow would let a flip through.
    print("eval mode:")
    r64, v64 = eval_backward(shared, x, mask, torch.float64)
    r32, v32 = eval_backward(shared, x, mask, torch.float32)
    assert len(v64) == len(v32) == n_relu_calls(net), (len(v64), n_relu_calls(net))
    dev, kinks, pins, calls = find_kinks(v32, v64, BAND)

    # PyTorch's float32 against the exact result, as it falls and pinned to the exact pattern:
    # the first shows what one mask bit does, the second what float32 rounding alone does.
    r32p, _ = eval_backward(shared, x, mask, torch.float32, pins)
    err32 = errors(r32, r64, names)
    err32p = errors(r32p, r64, names)
    print("  PyTorch float32 vs float64: grad input %.3g as it falls, %.3g pinned; pinned worst "
          "parameter gradient %.3g, worst norm %.3g" % (
              err32["grad.input"], err32p["grad.input"], max(v for k, v in err32p.items() if k.startswith("grad.")),
              max(v for k, v in err32p.items() if k.startswith("norm."))))

    # Small parameters are stored whole; the file stays under 1 MB. Stored as float32 (rounding
    # the float64 result once); the norms stay float64.
    out = {k: (v if k == "grad_norms" else v.float()) for k, v in r64.items()
           if k in ("logits", "loss", "grad.input", "grad_norms") or (k.startswith("grad.") and v.numel() <= 20000)}
    os.makedirs(outdir, exist_ok=True)
    write_safetensors(os.path.join(outdir, "eval_backward.safetensors"), out, {
        "grad_norm_order": json.dumps(names), "torch": torch.__version__,
        "what": "CHNet seed-0 weights, golden input/target, eval mode, official structure loss, float64",
        "relu_calls": json.dumps(calls),
        "relu_band": json.dumps(BAND),
        "relu_float32_dev": json.dumps(float("%.4g" % dev)),
        "relu_kinks": json.dumps(kinks),
        "torch_float32_relerr": json.dumps({k: float("%.4g" % v) for k, v in err32p.items()})})
    print("  wrote", len(out), "tensors")

    # 3. The golden training step (forward, backward, one SGD step) in float64, pinned the same
    #    way. Without pinning PyTorch's own float32 gradients lie up to 30% from the exact ones
    #    (the golden file's, on the machine that made it; a few percent here): a handful of
    #    flipped units in layer3, where batch norm normalises 32 values per channel, move whole
    #    channels. At the exact pattern float32 rounding alone is left, ~1e-4 at worst, and the
    #    Go test holds each tensor to a stated multiple of PyTorch's own pinned error on it.
    print("training mode:")
    r64, v64 = train_step(shared, x, mask, torch.float64)
    r32, v32 = train_step(shared, x, mask, torch.float32)
    assert len(v64) == len(v32) == n_relu_calls(net), (len(v64), n_relu_calls(net))
    dev, kinks, pins, calls = find_kinks(v32, v64, TRAIN_BAND)
    r32p, _ = train_step(shared, x, mask, torch.float32, pins)
    err32 = errors(r32, r64, names)
    err32p = errors(r32p, r64, names)
    for lab, e in (("as it falls", err32), ("pinned", err32p)):
        print("  PyTorch float32 vs float64, %s: grad input %.3g, worst parameter gradient %.3g, worst gradient norm %.3g, "
              "worst SGD update %.3g" % (lab, e["grad.input"], max(v for k, v in e.items() if k.startswith("grad.")),
                                         max(v for k, v in e.items() if k.startswith("norm.")),
                                         max(v for k, v in e.items() if k.startswith("sgd1."))))
    # How far the official golden file (PyTorch float32, as it fell on the machine that made
    # it) lies from the exact result, per tensor it holds: the Go test compares with the golden
    # file within its own bound plus this distance. Its SGD updates are sgd1 - the seed-0 value.
    seed0 = {n: p.detach().double() for n, p in load_net(shared, torch.float64).named_parameters()}
    official = {"logits": io["train.logits"], "loss": io["train.loss"], "grad.input": io["train.grad.input"]}
    for k, v in io.items():
        if k.startswith("train.grad.") and k != "train.grad.input":
            official[k[len("train."):]] = v
        elif k.startswith("train.after."):
            official[k[len("train."):]] = v
        elif k.startswith("sgd1."):
            official["sgd1.delta." + k[len("sgd1."):]] = v.double() - seed0[k[len("sgd1."):]]
    err_official = {k: relerr(v.double(), r64[k]) for k, v in official.items()}
    for i, n in enumerate(names):
        err_official["norm." + n] = abs(io["train.grad_norms"][i].item() - r64["grad_norms"][i].item()) / r64["grad_norms"][i].item()
    print("  official golden file vs float64: grad input %.3g, worst gradient %.3g, worst update %.3g, worst norm %.3g" % (
        err_official["grad.input"], max(v for k, v in err_official.items() if k.startswith("grad.")),
        max(v for k, v in err_official.items() if k.startswith("sgd1.")),
        max(v for k, v in err_official.items() if k.startswith("norm."))))
    # Stored: the outputs, every small parameter's gradient and update, all running statistics;
    # float32, rounding the float64 result once; the norms stay float64.
    out = {k: (v if k.endswith("_norms") else v.float()) for k, v in r64.items()
           if k in ("logits", "loss", "grad.input", "grad_norms", "delta_norms") or k.startswith("after.") or
           ((k.startswith("grad.") or k.startswith("sgd1.delta.")) and v.numel() <= 20000)}
    write_safetensors(os.path.join(outdir, "train_backward64.safetensors"), out, {
        "grad_norm_order": json.dumps(names), "torch": torch.__version__,
        "what": "CHNet seed-0 weights, golden input/target, training mode, official structure loss, one nesterov SGD step, float64",
        "relu_calls": json.dumps(calls),
        "relu_band": json.dumps(TRAIN_BAND),
        "relu_float32_dev": json.dumps(float("%.4g" % dev)),
        "relu_kinks": json.dumps(kinks),
        "torch_float32_relerr": json.dumps({k: float("%.4g" % v) for k, v in err32p.items()}),
        "torch_float32_relerr_unpinned": json.dumps({k: float("%.4g" % v) for k, v in err32.items()}),
        "official_float32_relerr": json.dumps({k: float("%.4g" % v) for k, v in err_official.items()})})
    print("  wrote", len(out), "tensors")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
