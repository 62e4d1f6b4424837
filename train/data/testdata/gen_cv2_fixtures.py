#!/usr/bin/python3
"""Make cv2_fixtures.json: reference outputs of OpenCV's resize (INTER_LINEAR) and
getRotationMatrix2D + warpAffine (INTER_LINEAR, BORDER_CONSTANT) on small float32 arrays.

Run offline with Debian's python3-opencv (used: OpenCV 4.6.0, numpy 1.24):
    /usr/bin/python3 train/data/testdata/gen_cv2_fixtures.py
The Go tests read the JSON only; they never need Python. Arrays are stored planar (C, H, W) as
one string of space-separated float32 values, each the shortest decimal that parses back to the
same float32 (numpy's float32 str), so the Go side recovers every bit with ParseFloat(s, 32).
"""
import json
import os

import cv2
import numpy as np

rng = np.random.RandomState(20240611)


def planar(a):
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[:, :, None]
    return " ".join(str(np.float32(v)) for v in a.transpose(2, 0, 1).ravel())


def src_array(h, w, c, kind):
    if kind == "normal":
        a = rng.standard_normal((h, w, c)).astype(np.float32) * 2
    else:  # 8-bit values as float, the raw-image case
        a = rng.randint(0, 256, size=(h, w, c)).astype(np.float32)
    return a if c > 1 else a[:, :, 0]


resize_cases = []
for name, (c, sh, sw, dh, dw, kind) in {
    "up_3ch": (3, 4, 5, 7, 9, "normal"),
    "down_3ch": (3, 11, 13, 6, 5, "normal"),
    "down_1ch_mixed": (1, 30, 40, 23, 17, "normal"),
    "area2x_3ch": (3, 8, 10, 4, 5, "normal"),
    "one_pixel": (1, 1, 1, 2, 3, "normal"),
    "one_row": (1, 1, 7, 4, 3, "normal"),
    "big_ratio": (1, 24, 30, 4, 5, "bytes"),
    "same_size": (3, 5, 6, 5, 6, "normal"),
    "raw_to_base": (3, 29, 37, 22, 22, "bytes"),
    "up_1ch_bytes": (1, 9, 6, 22, 15, "bytes"),
}.items():
    a = src_array(sh, sw, c, kind)
    out = cv2.resize(a, (dw, dh), interpolation=cv2.INTER_LINEAR)
    # The official image path runs in float64 (numpy promotes against the float64 mean).
    out64 = cv2.resize(a.astype(np.float64), (dw, dh), interpolation=cv2.INTER_LINEAR)
    resize_cases.append(dict(name=name, c=c, sw=sw, sh=sh, dw=dw, dh=dh,
                             src=planar(a), out=planar(out),
                             out64=planar(out64.astype(np.float32))))

warp_cases = []
for name, (c, h, w, angle, center, border) in {
    "sq_m10": (3, 16, 16, -10.0, None, 0.0),
    "sq_m3.3": (3, 16, 16, -3.3, None, 0.0),
    "sq_0": (3, 16, 16, 0.0, None, 0.0),
    "sq_0.7": (3, 16, 16, 0.7, None, 0.0),
    "sq_9.99": (3, 16, 16, 9.99, None, 0.0),
    "sq_45": (1, 16, 16, 45.0, None, 0.0),
    "rect_7_official_centre": (1, 16, 20, 7.0, None, 0.0),
    "rect_m8_border": (1, 15, 21, -8.25, (10.5, 7.0), 0.5),
    "tiny": (1, 2, 3, 30.0, (1.0, 1.0), 0.0),
}.items():
    a = src_array(h, w, c, "normal")
    if center is None:
        center = (h * 0.5, w * 0.5)  # as the official RandomRotate: (rows*0.5, cols*0.5)
    M = cv2.getRotationMatrix2D(center, angle, 1)
    out = cv2.warpAffine(a, M, (w, h), borderValue=border)
    out64 = cv2.warpAffine(a.astype(np.float64), M, (w, h), borderValue=border)
    warp_cases.append(dict(name=name, c=c, w=w, h=h, angle=angle, cx=center[0], cy=center[1],
                           border=border, M=[float(v) for v in M.ravel()],
                           src=planar(a), out=planar(out),
                           out64=planar(out64.astype(np.float32))))

doc = dict(opencv=cv2.__version__, numpy=np.__version__, resize=resize_cases, warp=warp_cases)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cv2_fixtures.json")
with open(path, "w") as f:
    json.dump(doc, f, separators=(",", ":"))
    f.write("\n")
print("wrote", path, os.path.getsize(path), "bytes")
