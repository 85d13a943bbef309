"""Once, outside CI: MICA's and insightface's own code against pixel3dmm on the same seeded random weights
(official-preprocessing.md section 12, steps 5 and 6's alignment part). Needs the official sources as bare git
mirrors and, for the alignment, python3-opencv and python3-skimage (one-off packages, not project dependencies).

    PYTHONPATH=build/python:tests/python /usr/bin/python3 tests/official/compare_mica.py \
        --mica /work/.mirror/Zielon+MICA/repo --insightface /work/.mirror/deepinsight+insightface/repo

The official files are exported to a temporary folder (nothing is copied into the project). It prints the largest
differences: C++ vs MICA's Arcface + MappingNetwork at full depth (IResNet-100), our Python reference vs the same,
and the alignment matrix / aligned crop / blob vs insightface's estimate_norm + norm_crop and MICA's
get_arcface_input.
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch
import torch.nn.functional as F


def export(repo, commit, path, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "wb") as f:
        f.write(subprocess.check_output(["git", "-C", repo, "show", f"{commit}:{path}"]))


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mica", required=True)
    ap.add_argument("--mica-commit", default="af22e7a")
    ap.add_argument("--insightface", required=True)
    ap.add_argument("--insightface-commit", default="668e8d4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="mica_official_")
    for p in ("models/arcface.py", "models/generator.py", "datasets/creation/util.py"):
        export(args.mica, args.mica_commit, p, os.path.join(tmp, "mica", p))
    export(args.insightface, args.insightface_commit, "python-package/insightface/utils/face_align.py",
           os.path.join(tmp, "face_align.py"))

    # Stand-ins for what the two network files import but never use here: loguru, MICA's FLAME.
    loguru = types.ModuleType("loguru")
    loguru.logger = types.SimpleNamespace(info=print, error=print, warning=print)
    sys.modules["loguru"] = loguru
    models = types.ModuleType("models")
    models.__path__ = [os.path.join(tmp, "mica", "models")]
    sys.modules["models"] = models
    flame = types.ModuleType("models.flame")
    flame.FLAME = object
    sys.modules["models.flame"] = flame
    arcface_mod = load("models.arcface", os.path.join(tmp, "mica", "models", "arcface.py"))
    generator_mod = load("models.generator", os.path.join(tmp, "mica", "models", "generator.py"))

    # The official modules, default init (conv std 0.1), BN statistics calibrated (spec 12 step 5).
    torch.manual_seed(args.seed)
    arcface = arcface_mod.Arcface()
    mapping = generator_mod.MappingNetwork(512, 300, 300, 3)
    for m in arcface.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.momentum = None
            with torch.no_grad():
                m.weight.uniform_(0.8, 1.2)
                m.bias.uniform_(-0.1, 0.1)
        if isinstance(m, torch.nn.PReLU):
            with torch.no_grad():
                m.weight.uniform_(0.1, 0.4)
    arcface.train()
    with torch.no_grad():
        for _ in range(3):
            arcface(torch.rand(4, 3, 112, 112) * 2 - 1)
        # The mapping network reads a unit vector: scale the first layer so its output is O(1).
        mapping.network[0].weight.mul_(22.0)
    arcface.eval()
    mapping.eval()

    blob = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(args.seed + 1)) * 2 - 1
    with torch.no_grad():
        official = mapping(F.normalize(arcface(blob)))
    ckpt = {"arcface": arcface.state_dict(),
            "flameModel": {"regressor." + k: v for k, v in mapping.state_dict().items()},
            "epoch": 1}
    tar = os.path.join(tmp, "mica.tar")
    torch.save(ckpt, tar)

    from pixel3dmm import convert_mica, identity
    import mica_reference as ref

    converted = convert_mica.convert(tar, os.path.join(tmp, "mica.safetensors"))
    mica = identity.load_mica(converted)
    with torch.no_grad():
        ours = mica.forward(blob)
        weights = convert_mica.mica_tensors(convert_mica.load_mica_tar(tar), tar)
        reference = ref.mica_forward(weights, blob)
    scale = float(official.abs().max())
    print(f"official code |max| {scale:.4f}, std {float(official.std()):.4f}, "
          f"inputs differ by {float((official[0] - official[1]).abs().max()):.4f}")
    print(f"MICA code, IResNet-100, C++ vs official:       max |diff| {float((ours - official).abs().max()):.3e}")
    print(f"MICA code, IResNet-100, reference vs official: max |diff| {float((reference - official).abs().max()):.3e}")

    # Alignment: insightface estimate_norm / norm_crop and MICA's get_arcface_input.
    import cv2
    face_align = load("face_align_official", os.path.join(tmp, "face_align.py"))
    insightface = types.ModuleType("insightface")
    utils = types.ModuleType("insightface.utils")
    utils.face_align = face_align
    insightface.utils = utils
    sys.modules["insightface"], sys.modules["insightface.utils"] = insightface, utils
    cu = load("mica_creation_util", os.path.join(tmp, "mica", "datasets", "creation", "util.py"))
    rng = np.random.default_rng(args.seed)
    worst_m = worst_t = 0.0
    crop_pixels = blob_diff = 0
    n = 200
    for i in range(n):
        a, s = rng.uniform(-0.5, 0.5), rng.uniform(1.5, 3.5)
        R = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        kps = (ref.ARCFACE_DST @ R.T + rng.uniform(60, 160, 2) + rng.normal(0, 2.0, (5, 2))).astype(np.float32)
        img_bgr = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
        M_off = face_align.estimate_norm(kps)
        M_ours = identity.arcface_similarity(torch.from_numpy(kps)).numpy()
        worst_m = max(worst_m, float(np.abs(M_off[:, :2] - M_ours[:, :2]).max()))
        worst_t = max(worst_t, float(np.abs(M_off[:, 2] - M_ours[:, 2]).max()))
        blob_off, aimg_off = cu.get_arcface_input(types.SimpleNamespace(kps=kps), img_bgr)
        rgb = torch.from_numpy(np.ascontiguousarray(img_bgr[:, :, ::-1]))
        aimg_ours = identity.warp_arcface_crop(rgb, torch.from_numpy(M_ours)).numpy()[:, :, ::-1]
        crop_pixels += int((aimg_ours != aimg_off).any(axis=2).sum())
        blob_ours = identity.arcface_input(rgb, torch.from_numpy(kps)).numpy()
        blob_diff = max(blob_diff, float(np.abs(blob_ours - blob_off).max()))
    print(f"alignment, {n} random keypoint sets: M[:, :2] max |diff| {worst_m:.3e}, M[:, 2] max |diff| {worst_t:.3e}; "
          f"aligned crops: {crop_pixels} of {n * 112 * 112} pixels differ; blob max |diff| {blob_diff:.3e}")


if __name__ == "__main__":
    main()
