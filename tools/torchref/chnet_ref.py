"""CHNet in PyTorch, written from docs/reference.md §1.1-§2 (not the official code), used as an
independent reference for the Go engine.

It first proves it is the official model: with shared/golden/chnet_v1_seed0.pth loaded it must
reproduce the official code's outputs in shared/golden/chnet_v1_io.safetensors (eval logits,
training loss and gradients). Then it writes chnet/testdata/eval_backward.safetensors: gradients
of the structure loss in EVAL mode (batch norm with running statistics), which, unlike the
training-mode gradients of the golden file, are well conditioned, so the Go model can be held
to tight tolerances there; and chnet/testdata/train_backward64.safetensors: the golden training
step computed in float64, the exact result that float32 engines (PyTorch's included) approximate.
Training-mode batch norm over 32 values per channel makes that step ill-conditioned: PyTorch's
own float32 gradients lie up to a few percent from it (printed below).

Run: /usr/bin/python3 tools/torchref/chnet_ref.py ../shared chnet/testdata
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

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


def write_safetensors(path, tensors, meta):
    dtn = {torch.float32: "F32", torch.float64: "F64"}
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous()
        b = t.numpy().tobytes()
        header[k] = {"dtype": dtn[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def relerr(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def main(shared, outdir):
    net = CHNet()
    net.load_state_dict(torch.load(os.path.join(shared, "golden/chnet_v1_seed0.pth"), map_location="cpu"))
    io, meta = read_safetensors(os.path.join(shared, "golden/chnet_v1_io.safetensors"))
    x, mask = io["input"], io["target"]

    # 1. Prove this is the official model.
    net.eval()
    with torch.no_grad():
        e = relerr(net(x), io["eval.logits"])
    print("eval logits vs official: %.2g" % e)
    assert e < 1e-6, e
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    xg = x.clone().requires_grad_(True)
    loss = structure_loss(net(xg), mask)
    loss.backward()
    e = relerr(xg.grad, io["train.grad.input"])
    print("train loss %.8f vs %.8f, grad input vs official: %.2g" % (loss.item(), io["train.loss"].item(), e))
    assert e < 1e-6, e
    net.load_state_dict(snapshot)  # undo the running-statistics update
    net.zero_grad()

    # 2. Eval-mode backward reference.
    net.eval()
    xg = x.clone().requires_grad_(True)
    logits = net(xg)
    loss = structure_loss(logits, mask)
    loss.backward()
    names = [n for n, _ in net.named_parameters()]
    out = {"logits": logits.detach(), "loss": loss.detach().reshape(1), "grad.input": xg.grad,
           "grad_norms": torch.stack([p.grad.double().norm() for p in net.parameters()])}
    # Small parameters are stored whole; the file stays well under 1 MB.
    for n, p in net.named_parameters():
        if p.numel() <= 20000:
            out["grad." + n] = p.grad
    os.makedirs(outdir, exist_ok=True)
    write_safetensors(os.path.join(outdir, "eval_backward.safetensors"), out,
                      {"grad_norm_order": json.dumps(names), "torch": torch.__version__,
                       "what": "CHNet seed-0 weights, golden input/target, eval mode, official structure loss"})
    print("wrote", len(out), "tensors")

    # 3. The golden training step in float64, and how far PyTorch's float32 (the golden file) is
    #    from it, per tensor: the Go test holds its own float32 to the same accuracy.
    def train_step(dtype):
        net = CHNet().to(dtype)
        net.load_state_dict({k: (v.to(dtype) if v.is_floating_point() else v)
                             for k, v in torch.load(os.path.join(shared, "golden/chnet_v1_seed0.pth"), map_location="cpu").items()})
        net.train()
        xx = x.detach().clone().to(dtype).requires_grad_(True)
        lg = net(xx)
        ls = structure_loss(lg, mask.to(dtype))
        ls.backward()
        res = {"logits": lg.detach(), "loss": ls.detach().reshape(1), "grad.input": xx.grad}
        for n, p in net.named_parameters():
            res["grad." + n] = p.grad
        res["grad_norms"] = torch.stack([p.grad.double().norm() for p in net.parameters()])
        return res
    r32, r64 = train_step(torch.float32), train_step(torch.float64)
    err32 = {k: relerr(r32[k].double(), r64[k]) for k in r64 if k != "grad_norms"}
    for i, n in enumerate(names):
        err32["norm." + n] = abs(r32["grad_norms"][i].item() - r64["grad_norms"][i].item()) / r64["grad_norms"][i].item()
    assert relerr(r32["grad.input"], io["train.grad.input"]) == 0  # the float32 run is the golden one
    print("PyTorch float32 vs float64: grad input %.3g, worst parameter gradient %.3g, worst norm %.3g" % (
        err32["grad.input"], max(v for k, v in err32.items() if k.startswith("grad.")),
        max(v for k, v in err32.items() if k.startswith("norm."))))
    out = {k: v for k, v in r64.items() if k in ("logits", "loss", "grad.input", "grad_norms")
           or (k.startswith("grad.") and v.numel() <= 20000)}
    # Stored as float32 (rounding the float64 result once); the norms stay float64.
    out = {k: (v if k == "grad_norms" else v.float()) for k, v in out.items()}
    write_safetensors(os.path.join(outdir, "train_backward64.safetensors"), out,
                      {"grad_norm_order": json.dumps(names), "torch": torch.__version__,
                       "torch_float32_relerr": json.dumps({k: float("%.4g" % v) for k, v in err32.items()}),
                       "what": "CHNet seed-0 weights, golden input/target, training mode, official structure loss, float64"})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
