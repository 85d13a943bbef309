"""Writes docs/images/benchmark-network-maps.png: for a few cases of a synthetic benchmark, the case's photo, the
embedded demo networks' UV and normal maps predicted from it, and the exact maps the other rows fit (method (d)
against (c) in docs/benchmark.md).

    PYTHONPATH=build/python /usr/bin/python3 scripts/make_benchmark_figure.py BENCH [out.png] [case ...]
"""
import os
import sys

import torch
import torch.nn.functional as F

import pixel3dmm
from pixel3dmm import predict

PANEL = 192


def panel(img):
    """3 x H x W float in [0, 1] or H x W x 3 uint8 -> 3 x PANEL x PANEL float."""
    if img.dtype == torch.uint8:
        img = img.permute(2, 0, 1).float() / 255
    return F.interpolate(img[None], size=(PANEL, PANEL), mode="bilinear", align_corners=False)[0].clamp(0, 1)


def main(bench, out="docs/images/benchmark-network-maps.png", cases=("case_001", "case_017")):
    net = predict.demo_predictor()
    rows = []
    for case in cases:
        folder = os.path.join(bench, case, "fit_inputs")
        photo = pixel3dmm.io.load_image(os.path.join(folder, "crop.png"))
        p = net.predict(photo)
        rows.append(torch.cat([
            panel(photo[0]),
            panel(predict.uv_png(p["uv_raw"])[0]),
            panel(pixel3dmm.io.load_image(os.path.join(folder, "uv_map.png"))[0]),
            panel(predict.normals_png(p["normals_raw"])[0]),
            panel(pixel3dmm.io.load_image(os.path.join(folder, "normals.png"))[0]),
        ], 2))
    pixel3dmm.io.save_image(out, torch.cat(rows, 1)[None])
    print("wrote", out)


if __name__ == "__main__":
    main(sys.argv[1], *(sys.argv[2:3] or []), **({"cases": sys.argv[3:]} if len(sys.argv) > 3 else {}))
