"""Exports the official-architecture CHNet (chnet_ref.py, which reproduces the official model
exactly) to ONNX for tools/bench_vs_onnx.sh: eval mode, sigmoid included (what `chnet bench
speed --mode infer` times), batch dimension dynamic, random weights (values do not change the
work).

Run: /usr/bin/python3 tools/torchref/export_onnx.py --size 352 --out chnet.onnx [--opset 13]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chnet_ref import CHNet  # noqa: E402


class Probabilities(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.sigmoid(self.net(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=352)
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=13)
    a = ap.parse_args()
    torch.manual_seed(0)
    net = Probabilities(CHNet()).eval()
    x = torch.randn(1, 3, a.size, a.size)
    with torch.no_grad():
        torch.onnx.export(net, x, a.out, opset_version=a.opset, input_names=["image"],
                          output_names=["probability"],
                          dynamic_axes={"image": {0: "batch"}, "probability": {0: "batch"}})


if __name__ == "__main__":
    main()
