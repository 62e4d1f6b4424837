#!/usr/bin/python3
"""PyTorch renderings of chnet/baselines (U-Net, Attention U-Net, UTNet, TransUNet on Res2Net-50
v1b through layer3), written from the designs in the Go doc comments and the methods' reference
code (TransUNet vit_seg_modeling.py, Oktay's grid_attention_layer.py, UTNet conv_trans_utils.py),
not from the Go code. They give the Go models an independent reference for:

  * operation counts: multiply-adds of every aten convolution and matrix product (mm, addmm,
    bmm), counted by a TorchDispatchMode as PyTorch's FlopCounterMode does (torch 1.13 has no
    FlopCounterMode), and parameter counts, at 256x256 (Table 5's size) and 352x352, default
    configurations;
  * state-dict names and shapes;
  * eval-mode logits for a 2x3x64x64 input with deterministic parameters (a formula of each
    tensor's name and shape that chnet/baselines' test evaluates identically), small enough
    configurations to keep the run light (TransUNet with 2 layers and a 6x6 position grid
    resized to the 4x4 token grid).

Writes chnet/baselines/testdata/torch_reference.json and forward.safetensors.
Run from the repository root: /usr/bin/python3 tools/torchref/baselines.py
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors_io import write_safetensors
from torch.utils._python_dispatch import TorchDispatchMode

torch.set_num_threads(2)
OUTDIR = os.path.join("chnet", "baselines", "testdata")

# ---------------------------------------------------------------------------------------------
# Res2Net-50 v1b through layer3 (docs/reference.md §2)


class Bottle2neck(nn.Module):
    def __init__(self, inplanes, planes, stride, stage):
        super().__init__()
        w = planes * 26 // 64
        self.w, self.stage, self.stride = w, stage, stride
        self.conv1 = nn.Conv2d(inplanes, 4 * w, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4 * w)
        self.convs = nn.ModuleList([nn.Conv2d(w, w, 3, stride, 1, bias=False) for _ in range(3)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(w) for _ in range(3)])
        self.conv3 = nn.Conv2d(4 * w, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = None
        if stride != 1 or inplanes != 4 * planes:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(inplanes, 4 * planes, 1, bias=False), nn.BatchNorm2d(4 * planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        sp = torch.split(out, self.w, 1)
        ys = []
        for i in range(3):
            s = sp[i] if (i == 0 or self.stage) else s + sp[i]
            s = F.relu(self.bns[i](self.convs[i](s)))
            ys.append(s)
        ys.append(F.avg_pool2d(sp[3], 3, self.stride, 1) if self.stage else sp[3])
        out = self.bn3(self.conv3(torch.cat(ys, 1)))
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(out + res)


class Res2Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 1, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(64)
        inp = 64
        for li, (planes, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2)]):
            layer = []
            for b in range(blocks):
                layer.append(Bottle2neck(inp, planes, stride if b == 0 else 1, b == 0))
                inp = 4 * planes
            setattr(self, f"layer{li + 1}", nn.Sequential(*layer))

    def forward(self, x):
        stem = F.relu(self.bn1(self.conv1(x)))
        l1 = self.layer1(F.max_pool2d(stem, 3, 2, 1))
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        return stem, l1, l2, l3


def up(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------------------------------------
# TransUNet's decoder pieces (U-Net and Attention U-Net reuse them)


def conv_bn_relu(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class DecoderBlock(nn.Module):
    def __init__(self, cin, skip, cout, skip_first=False):
        super().__init__()
        self.conv1 = conv_bn_relu(cin + skip, cout, 3)
        self.conv2 = conv_bn_relu(cout, cout, 3)
        self.skip_first = skip_first

    def forward(self, x, skip, size):
        x = up(x, size)
        if skip is not None:
            x = torch.cat([skip, x] if self.skip_first else [x, skip], 1)
        return self.conv2(self.conv1(x))


class Cascade(nn.Module):
    def __init__(self, cin, widths, skip_first=False):
        super().__init__()
        skips = [512, 256, 64, 0]
        blocks = []
        for w, s in zip(widths, skips):
            blocks.append(DecoderBlock(cin, s, w, skip_first))
            cin = w
        self.blocks = nn.ModuleList(blocks)


class UNet(nn.Module):
    def __init__(self, widths=(256, 128, 64, 16)):
        super().__init__()
        self.backbone = Res2Net()
        self.decoder = Cascade(1024, widths)
        self.segmentation_head = nn.Sequential(nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, x):
        stem, l1, l2, l3 = self.backbone(x)
        y = l3
        for blk, skip in zip(self.decoder.blocks, [l2, l1, stem, None]):
            y = blk(y, skip, skip.shape[2:] if skip is not None else x.shape[2:])
        return self.segmentation_head(y)


class Gate(nn.Module):
    """Oktay's GridAttentionBlock2D (concatenation, inter = in) with MultiAttentionBlock's combine."""

    def __init__(self, cin, cg):
        super().__init__()
        self.W = nn.Sequential(nn.Conv2d(cin, cin, 1), nn.BatchNorm2d(cin))
        self.theta = nn.Conv2d(cin, cin, 2, 2, bias=False)
        self.phi = nn.Conv2d(cg, cin, 1)
        self.psi = nn.Conv2d(cin, 1, 1)
        self.combine_gates = nn.Sequential(nn.Conv2d(cin, cin, 1), nn.BatchNorm2d(cin), nn.ReLU())

    def forward(self, x, g):
        th = self.theta(x)
        ph = F.interpolate(self.phi(g), size=th.shape[2:], mode="bilinear", align_corners=False)
        a = torch.sigmoid(self.psi(F.relu(th + ph)))
        a = F.interpolate(a, size=x.shape[2:], mode="bilinear", align_corners=False)
        return self.combine_gates(self.W(a.expand_as(x) * x))


class AttUNet(nn.Module):
    def __init__(self, widths=(256, 128, 64, 16)):
        super().__init__()
        self.backbone = Res2Net()
        self.gating = conv_bn_relu(1024, 1024, 1)
        self.attentionblocks = nn.ModuleList([Gate(512, 1024), Gate(256, widths[0]), Gate(64, widths[1])])
        self.decoder = Cascade(1024, widths, skip_first=True)
        self.segmentation_head = nn.Sequential(nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, x):
        stem, l1, l2, l3 = self.backbone(x)
        g = self.gating(l3)
        y = l3
        for i, (blk, skip) in enumerate(zip(self.decoder.blocks, [l2, l1, stem, None])):
            size = x.shape[2:]
            if skip is not None:
                size = skip.shape[2:]
                skip = self.attentionblocks[i](skip, g if i == 0 else y)
            y = blk(y, skip, size)
        return self.segmentation_head(y)


# ---------------------------------------------------------------------------------------------
# TransUNet


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, n, d = x.shape

        def heads(t):
            return t.view(b, n, self.h, d // self.h).permute(0, 2, 1, 3)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        p = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.h), dim=-1)
        ctx = torch.matmul(p, v).permute(0, 2, 1, 3).contiguous().view(b, n, d)
        return self.out(ctx)


class Mlp(nn.Module):
    def __init__(self, d, m):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, m), nn.Linear(m, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, d, heads, m):
        super().__init__()
        self.attention_norm = nn.LayerNorm(d, eps=1e-6)
        self.ffn_norm = nn.LayerNorm(d, eps=1e-6)
        self.ffn = Mlp(d, m)
        self.attn = Attention(d, heads)

    def forward(self, x):
        x = x + self.attn(self.attention_norm(x))
        return x + self.ffn(self.ffn_norm(x))


class Embeddings(nn.Module):
    def __init__(self, d, grid):
        super().__init__()
        self.patch_embeddings = nn.Conv2d(1024, d, 1)
        self.position_embeddings = nn.Parameter(torch.zeros(1, grid * grid, d))
        self.grid = grid


class Encoder(nn.Module):
    def __init__(self, d, layers, heads, m):
        super().__init__()
        self.layer = nn.ModuleList([Block(d, heads, m) for _ in range(layers)])
        self.encoder_norm = nn.LayerNorm(d, eps=1e-6)


class Transformer(nn.Module):
    def __init__(self, d, grid, layers, heads, m):
        super().__init__()
        self.embeddings = Embeddings(d, grid)
        self.encoder = Encoder(d, layers, heads, m)


class TransUNet(nn.Module):
    def __init__(self, image_size, layers=12, d=768, heads=12, m=3072, widths=(256, 128, 64, 16)):
        super().__init__()
        self.backbone = Res2Net()
        self.transformer = Transformer(d, image_size // 16, layers, heads, m)
        self.decoder = Cascade(512, widths)
        self.decoder.conv_more = conv_bn_relu(d, 512, 3)
        self.segmentation_head = nn.Sequential(nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, x):
        stem, l1, l2, l3 = self.backbone(x)
        emb = self.transformer.embeddings
        t = emb.patch_embeddings(l3)
        b, d, h, w = t.shape
        t = t.flatten(2).transpose(-1, -2)
        pos = emb.position_embeddings
        if emb.grid != h or emb.grid != w:
            img = pos.view(1, emb.grid, emb.grid, d).permute(0, 3, 1, 2)
            pos = F.interpolate(img, size=(h, w), mode="bilinear", align_corners=True).permute(0, 2, 3, 1).reshape(1, h * w, d)
        t = t + pos
        for blk in self.transformer.encoder.layer:
            t = blk(t)
        t = self.transformer.encoder.encoder_norm(t)
        y = self.decoder.conv_more(t.permute(0, 2, 1).contiguous().view(b, d, h, w))
        for blk, skip in zip(self.decoder.blocks, [l2, l1, stem, None]):
            y = blk(y, skip, skip.shape[2:] if skip is not None else x.shape[2:])
        return self.segmentation_head(y)


# ---------------------------------------------------------------------------------------------
# UTNet


class BasicBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if cin != cout:
            self.shortcut = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)


class DSConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class AttnDecoder(nn.Module):
    def __init__(self, cin, cskip, cout, heads, reduce):
        super().__init__()
        self.to_kv, self.to_q, self.to_out = DSConv(cin, 2 * cout), DSConv(cskip, cout), DSConv(cout, cout)
        self.heads, self.reduce, self.dh = heads, reduce, cout // heads

    def forward(self, q, x):
        k, v = self.to_kv(x).chunk(2, dim=1)
        q = self.to_q(q)
        if x.shape[2] != self.reduce:
            k, v = (F.interpolate(t, size=self.reduce, mode="bilinear", align_corners=True) for t in (k, v))
        b, c, hh, ww = q.shape

        def split(t):  # 'b (dim_head heads) h w -> b heads (h w) dim_head'
            return t.reshape(b, self.dh, self.heads, -1).permute(0, 2, 3, 1)

        a = torch.einsum("bhid,bhjd->bhij", split(q), split(k)) * self.dh ** -0.5
        out = torch.einsum("bhij,bhjd->bhid", F.softmax(a, dim=-1), split(v))
        out = out.permute(0, 3, 1, 2).reshape(b, c, hh, ww)
        return self.to_out(out)


class TransDecoderBlock(nn.Module):
    def __init__(self, cin, cskip, cout, heads, reduce):
        super().__init__()
        self.bn_l, self.bn_h = nn.BatchNorm2d(cin), nn.BatchNorm2d(cskip)
        self.conv_ch = nn.Conv2d(cin, cout, 1)
        self.attn = AttnDecoder(cin, cskip, cout, heads, reduce)
        self.bn2 = nn.BatchNorm2d(cout)
        self.mlp = nn.Conv2d(cout, cout, 1, bias=False)

    def forward(self, x1, x2):
        res = F.interpolate(self.conv_ch(x1), size=x2.shape[-2:], mode="bilinear", align_corners=True)
        out = self.attn(self.bn_h(x2), self.bn_l(x1)) + res
        return self.mlp(F.relu(self.bn2(out))) + out


class UpBlockTrans(nn.Module):
    def __init__(self, cin, cskip, cout, heads, reduce):
        super().__init__()
        self.attn_decoder = TransDecoderBlock(cin, cskip, cout, heads, reduce)
        self.blocks = nn.Sequential(BasicBlock(cout + cskip, cout))

    def forward(self, x1, x2):
        return self.blocks(torch.cat([self.attn_decoder(x1, x2), x2], 1))


class UpBlock(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.conv_ch = nn.Conv2d(cin, cout, 1)
        self.conv = nn.Sequential(BasicBlock(cout + cskip, cout), BasicBlock(cout, cout))

    def forward(self, x1, x2, size):
        y = self.conv_ch(F.interpolate(x1, size=size, mode="bilinear", align_corners=True))
        if x2 is not None:
            y = torch.cat([x2, y], 1)
        return self.conv(y)


class UTNet(nn.Module):
    def __init__(self, widths=(256, 128, 64, 32), heads=(8, 4), reduce=8):
        super().__init__()
        self.backbone = Res2Net()
        self.up1 = UpBlockTrans(1024, 512, widths[0], heads[0], reduce)
        self.up2 = UpBlockTrans(widths[0], 256, widths[1], heads[1], reduce)
        self.up3 = UpBlock(widths[1], 64, widths[2])
        self.up4 = UpBlock(widths[2], 0, widths[3])
        self.outc = nn.Conv2d(widths[3], 1, 1)

    def forward(self, x):
        stem, l1, l2, l3 = self.backbone(x)
        y = self.up2(self.up1(l3, l2), l1)
        y = self.up3(y, stem, stem.shape[2:])
        return self.outc(self.up4(y, None, x.shape[2:]))


# ---------------------------------------------------------------------------------------------
# Counting, deterministic parameters, output


class CountMACs(TorchDispatchMode):
    """Multiply-adds of convolutions and matrix products, FlopCounterMode's op set."""

    def __init__(self):
        super().__init__()
        self.macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name == "convolution":
            w = args[1]
            self.macs += out.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        elif name in ("mm", "addmm"):
            a = args[0] if name == "mm" else args[1]
            self.macs += out.numel() * a.shape[-1]
        elif name in ("bmm", "baddbmm"):
            a = args[0] if name == "bmm" else args[1]
            self.macs += out.numel() * a.shape[-1]
        return out


def count(model, size):
    model.eval()
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad(), CountMACs() as c:
        model(x)
    return c.macs


MASK64 = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


def uniforms(seed, n):
    """splitmix64 of seed+i for i < n, as floats in [0, 1): exact in any language."""
    z = (np.arange(n, dtype=np.uint64) + np.uint64(seed)) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def det_fill(model):
    """Deterministic pseudo-random values from each entry's name and shape (mirrored by
    chnet/baselines' detFill): a fixed formula, so no weights need shipping, and hashed rather
    than periodic, so sums over a layer's inputs do not cancel."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            n = t.numel()
            with np.errstate(over="ignore"):
                u = uniforms(fnv1a64(name), n)
            if name.endswith("running_var"):
                v = 0.5 + u
            elif name.endswith("running_mean"):
                v = 0.1 * (u - 0.5)
            elif t.dim() == 1 and name.endswith("weight"):
                v = 1 + 0.2 * (u - 0.5)
            elif t.dim() == 1:
                v = 0.1 * (u - 0.5)
            else:
                v = math.sqrt(3.0 / (n // t.shape[0])) * 2 * (u - 0.5)
            t.copy_(torch.from_numpy(v).to(torch.float32).view(t.shape))


def main():
    ref = {"generator": "tools/torchref/baselines.py", "torch": torch.__version__, "counts": {}, "keys": {}}
    for name, build in [("unet", lambda s: UNet()), ("attunet", lambda s: AttUNet()),
                        ("utnet", lambda s: UTNet()), ("transunet", lambda s: TransUNet(s))]:
        for size in (256, 352):
            torch.manual_seed(0)
            m = build(size)
            params = sum(p.numel() for p in m.parameters())
            ref["counts"][f"{name}/{size}"] = {"macs": count(m, size), "params": params}
            print(name, size, ref["counts"][f"{name}/{size}"], flush=True)

    # Forward reference: small configurations, deterministic parameters, eval mode.
    x = torch.sin(0.1 * torch.arange(2 * 3 * 64 * 64, dtype=torch.float64)).to(torch.float32).view(2, 3, 64, 64)
    logits = {"x": x}
    for name, m in [("unet", UNet()), ("attunet", AttUNet()), ("utnet", UTNet()),
                    ("transunet", TransUNet(96, layers=2))]:
        det_fill(m)
        m.eval()
        with torch.no_grad():
            logits[name] = m(x)
        ref["keys"][name] = {k: list(v.shape) for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}
    os.makedirs(OUTDIR, exist_ok=True)
    with open(os.path.join(OUTDIR, "torch_reference.json"), "w") as f:
        json.dump(ref, f, indent=1, sort_keys=True)
    write_safetensors(os.path.join(OUTDIR, "forward.safetensors"), logits, {"generator": ref["generator"]})
    print("wrote", OUTDIR)


if __name__ == "__main__":
    main()
