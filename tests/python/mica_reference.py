"""Our own reference of MICA's identity path, written from official-preprocessing.md 6.3-6.4 and the official code
(insightface iresnet / MICA models/arcface.py, models/generator.py, insightface utils/face_align.py), in plain
PyTorch functional form over a state dict with the official names, and NumPy for the alignment. No pixel3dmm code.

    random_mica_weights(seed, layers)  -> {name: tensor}   seeded, BN statistics calibrated (spec 12 step 5)
    mica_forward(weights, blob)        -> B x 300
    umeyama_similarity(keypoints)      -> 2 x 3 float64    (scikit-image SimilarityTransform, float32 inputs)
"""
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

WIDTHS = (64, 128, 256, 512)
EPS = 1e-5
ARCFACE_DST = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                        [70.7299, 92.2041]], dtype=np.float32)


def _bn(x, w, p, calibrate):
    if calibrate:  # the batch's statistics become the running ones (train mode with momentum=None, one batch)
        dims = [0] + list(range(2, x.dim()))
        w[p + "running_mean"] = x.mean(dims).detach()
        w[p + "running_var"] = x.var(dims, unbiased=True).detach()
    return F.batch_norm(x, w[p + "running_mean"], w[p + "running_var"], w[p + "weight"], w[p + "bias"], False, 0.0, EPS)


def _block(x, w, p, stride, calibrate):
    out = _bn(x, w, p + "bn1.", calibrate)
    out = F.conv2d(out, w[p + "conv1.weight"], padding=1)
    out = _bn(out, w, p + "bn2.", calibrate)
    out = F.prelu(out, w[p + "prelu.weight"])
    out = F.conv2d(out, w[p + "conv2.weight"], stride=stride, padding=1)
    out = _bn(out, w, p + "bn3.", calibrate)
    if p + "downsample.0.weight" in w:
        x = _bn(F.conv2d(x, w[p + "downsample.0.weight"], stride=stride), w, p + "downsample.1.", calibrate)
    return out + x


def arcface_forward(w: Dict[str, torch.Tensor], x: torch.Tensor, layers: Sequence[int], calibrate=False):
    """IResNet: B x 3 x 112 x 112 -> B x 512 (before normalisation). Names without the 'arcface.' prefix."""
    h = F.prelu(_bn(F.conv2d(x, w["conv1.weight"], padding=1), w, "bn1.", calibrate), w["prelu.weight"])
    for l, n in enumerate(layers):
        for b in range(n):
            h = _block(h, w, f"layer{l + 1}.{b}.", 2 if b == 0 else 1, calibrate)
    h = _bn(h, w, "bn2.", calibrate)
    h = torch.flatten(h, 1)
    h = F.linear(h, w["fc.weight"], w["fc.bias"])
    return _bn(h, w, "features.", calibrate)


def mapping_forward(w: Dict[str, torch.Tensor], z: torch.Tensor):
    """MappingNetwork(512, 300, 300, hidden 3): names without the 'regressor.' prefix."""
    i = 0
    while f"network.{i}.weight" in w:
        z = F.leaky_relu(F.linear(z, w[f"network.{i}.weight"], w[f"network.{i}.bias"]), 0.2)
        i += 1
    return F.linear(z, w["output.weight"], w["output.bias"])


def _sub(w, prefix):
    return {k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)}


def layers_of(weights: Dict[str, torch.Tensor]) -> List[int]:
    return [1 + max(int(k.split(".")[2]) for k in weights if k.startswith(f"arcface.layer{l}."))
            for l in range(1, 5)]


def mica_forward(weights: Dict[str, torch.Tensor], blob: torch.Tensor) -> torch.Tensor:
    """B x 3 x 112 x 112 -> B x 300: mapping(F.normalize(arcface(blob)))."""
    feats = arcface_forward(_sub(weights, "arcface."), blob, layers_of(weights))
    return mapping_forward(_sub(weights, "regressor."), F.normalize(feats))


def random_mica_weights(seed: int, layers: Sequence[int] = (3, 13, 30, 3), calibration_batch: int = 8):
    """Seeded weights under the official names, BN statistics calibrated on random inputs so that activations stay
    O(1) through every block; BN affine parameters and PReLU slopes drawn away from their defaults."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, std=1.0):
        return torch.randn(*shape, generator=g) * std

    def conv(cout, cin, k):
        return randn(cout, cin, k, k, std=(2.0 / (cin * k * k)) ** 0.5)

    a: Dict[str, torch.Tensor] = {}

    def bn(p, c):
        a[p + "weight"] = 1.0 + randn(c, std=0.2)
        a[p + "bias"] = randn(c, std=0.1)
        a[p + "running_mean"] = torch.zeros(c)
        a[p + "running_var"] = torch.ones(c)
        a[p + "num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)

    a["conv1.weight"] = conv(64, 3, 3)
    bn("bn1.", 64)
    a["prelu.weight"] = 0.25 + randn(64, std=0.05)
    cin = 64
    for l, n in enumerate(layers):
        c = WIDTHS[l]
        for b in range(n):
            p = f"layer{l + 1}.{b}."
            bn(p + "bn1.", cin)
            a[p + "conv1.weight"] = conv(c, cin, 3)
            bn(p + "bn2.", c)
            a[p + "prelu.weight"] = 0.25 + randn(c, std=0.05)
            a[p + "conv2.weight"] = conv(c, c, 3)
            bn(p + "bn3.", c)
            if b == 0:
                a[p + "downsample.0.weight"] = conv(c, cin, 1)
                bn(p + "downsample.1.", c)
            cin = c
    bn("bn2.", 512)
    a["fc.weight"] = randn(512, 512 * 49, std=(1.0 / (512 * 49)) ** 0.5)
    a["fc.bias"] = randn(512, std=0.01)
    bn("features.", 512)
    with torch.no_grad():
        arcface_forward(a, randn(calibration_batch, 3, 112, 112), layers, calibrate=True)
    r: Dict[str, torch.Tensor] = {}
    dims = [(512, 300), (300, 300), (300, 300), (300, 300)]
    for i, (cin, cout) in enumerate(dims):
        # The first layer reads a unit vector: std sqrt(2) keeps its outputs O(1) (kaiming would make them ~1/22).
        r[f"network.{i}.weight"] = randn(cout, cin, std=2.0 ** 0.5 if i == 0 else (2.0 / cin) ** 0.5)
        r[f"network.{i}.bias"] = randn(cout, std=0.01)
    r["output.weight"] = randn(300, 300, std=0.25 * (2.0 / 300) ** 0.5)
    r["output.bias"] = randn(300, std=0.01)
    out = {"arcface." + k: v.contiguous() for k, v in a.items()}
    out.update({"regressor." + k: v.contiguous() for k, v in r.items()})
    return out


def umeyama_similarity(keypoints: np.ndarray) -> np.ndarray:
    """scikit-image's SimilarityTransform.estimate(kps, arcface_dst) on float32 arrays (numpy 1.x rules), first two
    rows: insightface's estimate_norm for image_size 112."""
    src = np.asarray(keypoints, dtype=np.float32)
    dst = ARCFACE_DST
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    A = dst_c.T @ src_c / 5
    d = np.ones((2,), dtype=np.float64)  # float64 in scikit-image: R and S . d are float64
    if np.linalg.det(A) < 0:
        d[1] = -1
    T = np.eye(3, dtype=np.float64)
    U, S, V = np.linalg.svd(A)
    T[:2, :2] = U @ np.diag(d) @ V
    scale = 1.0 / src_c.var(axis=0).sum() * (S @ d)  # numpy 1.x: 1.0 / float32 scalar is float64
    T[:2, 2] = dst_mean - scale * (T[:2, :2] @ src_mean.T)
    T[:2, :2] *= scale
    return T[:2]


def arcface_blob(crop_rgb: np.ndarray) -> np.ndarray:
    """cv2.dnn.blobFromImages(bgr, 1/127.5, (112,112), 127.5, swapRB=True)[0] for an RGB uint8 crop."""
    return ((crop_rgb.astype(np.float32) - np.float32(127.5)) * np.float32(1.0 / 127.5)).transpose(2, 0, 1).copy()
