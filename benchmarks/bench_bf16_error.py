"""How far precision="bf16" predictions are from float32 ones, on a real photo's crop (issue 27).

    PYTHONPATH=build/python /usr/bin/python3 benchmarks/bench_bf16_error.py [PHOTO] [--seed 0]

Official-size networks (ViT-S/16 DINO at 512 x 512, UV and normals) with seeded random weights (LibTorch's default
initialisation; the official weights are the user's), the photo preprocessed as `pixel3dmm predict` does (default:
one of Debian's dlib example faces), both predictors with mirror averaging. Prints the largest and mean absolute
difference of the raw outputs against their range, the normals' angle (degrees) and the UV difference in texels of
a 512 x 512 texture. Refuses on a CPU without native bfloat16 (the predictor's own error).
"""
import argparse

import torch

import pixel3dmm  # noqa: F401  (before torch's first use: the process settings)
from pixel3dmm import preprocess
from pixel3dmm.nn import Pixel3DMMNet, official_config
from pixel3dmm.predict import Predictor


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photo", nargs="?", default="/usr/share/doc/libdlib19.1/examples/faces/2008_001322.jpg")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    crop = preprocess.preprocess_file(args.photo).crop
    torch.manual_seed(args.seed)
    uv, normals = Pixel3DMMNet(official_config("uv_map")), Pixel3DMMNet(official_config("normals"))
    uv.eval()
    normals.eval()
    f32 = Predictor(uv_net=uv, normals_net=normals).predict(crop)
    b16 = Predictor(uv_net=uv, normals_net=normals, precision="bf16").predict(crop)
    print(f"{args.photo}: crop {tuple(crop.shape)}, seed {args.seed}")
    for key in ("uv_raw", "normals_raw"):
        d = (f32[key] - b16[key]).abs()
        print(f"{key:<12} range [{f32[key].min().item():+.4f}, {f32[key].max().item():+.4f}]  "
              f"max |diff| {d.max().item():.3g}  mean {d.mean().item():.3g}")
    angle = torch.rad2deg(torch.acos((f32["normals"] * b16["normals"]).sum(1).clamp(-1, 1)))
    print(f"normals angle (degrees): max {angle.max().item():.3f}  mean {angle.mean().item():.3f}")
    texels = (f32["uv"] - b16["uv"]).abs() * 512
    print(f"uv (texels of 512):      max {texels.max().item():.3f}  mean {texels.mean().item():.4f}")


if __name__ == "__main__":
    main()
