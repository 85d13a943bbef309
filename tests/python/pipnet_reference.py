"""A reference of the official PIPNet stage (pixel3dmm's pipnet_utils.demo_image, stage 2: Pip_resnet18 with config
pip_32_16_60_r18_l2_l1_10_1_nb10, forward_pip, get_meanface's neighbour lists, the merge and the float64 export),
written for the tests from official-preprocessing.md section 5: the network with the official state-dict names, the
network input with the debug rectangle, the decoding, the merge and the export.

The decoding and merge are written per landmark with NumPy (float32), not with the official code's batched gathers,
so that the C++ port's tensor version is checked against an independent formulation. OpenCV's uint8 INTER_LINEAR
resize is the one building block taken from the library under test (pixel3dmm's official_crop_image wraps
cv::resize; python3-opencv is not a dependency).
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from random_weights import randomize_conv_bn_


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, same attribute names."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + skip)


class PipResnet18(nn.Module):
    """Pip_resnet18(resnet18, num_nb=10, num_lms=98, input_size=256, net_stride=32)."""

    def __init__(self, num_lms=98, num_nb=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths = [64, 64, 128, 256, 512]
        for i in range(1, 5):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(widths[i - 1], widths[i], stride),
                                                     BasicBlock(widths[i], widths[i], 1)))
        self.cls_layer = nn.Conv2d(512, num_lms, 1)
        self.x_layer = nn.Conv2d(512, num_lms, 1)
        self.y_layer = nn.Conv2d(512, num_lms, 1)
        self.nb_x_layer = nn.Conv2d(512, num_lms * num_nb, 1)
        self.nb_y_layer = nn.Conv2d(512, num_lms * num_nb, 1)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return (self.cls_layer(x), self.x_layer(x), self.y_layer(x), self.nb_x_layer(x), self.nb_y_layer(x))


def randomize_(net: PipResnet18, seed: int, head_std: float = 0.05) -> PipResnet18:
    """Seeded weights: He-scaled convolutions, BN statistics drawn per channel, heads with a larger spread (so each
    landmark's best cell is not a near-tie)."""
    g = torch.Generator().manual_seed(seed)
    heads = {net.cls_layer, net.x_layer, net.y_layer, net.nb_x_layer, net.nb_y_layer}
    randomize_conv_bn_(net, g, lambda m: head_std if m in heads else math.sqrt(2.0 / m.weight[0].numel()))
    return net.eval()


def neighbours(meanface: np.ndarray, num_nb: int = 10):
    """get_meanface: -> (neighbours L x N, reverse_landmark L x max_len, reverse_neighbour L x max_len, max_len)."""
    pts = np.asarray(meanface, dtype=np.float64).reshape(-1, 2)
    n_pts = pts.shape[0]
    nb = np.zeros((n_pts, num_nb), dtype=np.int64)
    for i in range(n_pts):
        d = ((pts[i] - pts) ** 2).sum(axis=1)
        nb[i] = np.argsort(d)[1:1 + num_nb]
    lists = [[] for _ in range(n_pts)]
    for i in range(n_pts):
        for j in range(num_nb):
            lists[nb[i, j]].append((i, j))
    max_len = max(len(v) for v in lists)
    rl = np.zeros((n_pts, max_len), dtype=np.int64)
    rn = np.zeros((n_pts, max_len), dtype=np.int64)
    for t, v in enumerate(lists):
        padded = (v * (max_len // len(v) + 1))[:max_len]  # cyclic repetition
        rl[t] = [p[0] for p in padded]
        rn[t] = [p[1] for p in padded]
    return nb, rl, rn, max_len


def draw_debug_rectangle(bgr: np.ndarray, x, y, xmax, ymax) -> np.ndarray:
    """The pixels of cv2.rectangle(img, (x, y), (xmax, ymax), (0, 0, 255), 2) that fall inside rows y .. ymax - 1,
    columns x .. xmax - 1 (all the network sees): a 3-pixel line centred on each edge, so rows y, y + 1, ymax - 1
    and columns x, x + 1, xmax - 1 of the region."""
    out = bgr.copy()
    red = np.array([0, 0, 255], dtype=np.uint8)
    for r in (y, y + 1, ymax - 1):
        out[r, x:xmax] = red
    for c in (x, x + 1, xmax - 1):
        out[y:ymax, c] = red
    return out


def network_input(bgr: np.ndarray, box, resize) -> torch.Tensor:
    """The 512 crop (uint8 BGR) and PIPNet's box (x, y, xmax, ymax) -> 1 x 3 x 256 x 256 float32. `resize(image,
    (ymin, ymax, xmin, xmax), size)` must be OpenCV's INTER_LINEAR of image[ymin:ymax, xmin:xmax]."""
    x, y, xmax, ymax = box
    painted = draw_debug_rectangle(bgr, x, y, xmax, ymax)
    crop = resize(torch.from_numpy(painted), (y, ymax, x, xmax), 256).numpy()
    rgb = torch.from_numpy(crop[:, :, ::-1].copy()).permute(2, 0, 1).float().div(255)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float32).view(3, 1, 1)
    return ((rgb - mean) / std)[None]


def decode(heads, meanface, num_nb=10, grid=8):
    """Heads (batch 1) -> L x 2 float32 merged landmarks as fractions of the input, per landmark in NumPy."""
    cls, ox, oy, nbx, nby = [h[0].detach().numpy().astype(np.float32) for h in heads]
    n_lms = cls.shape[0]
    _, rl, rn, max_len = neighbours(meanface, num_nb)
    own = np.zeros((n_lms, 2), np.float32)
    by_nb = np.zeros((n_lms, num_nb, 2), np.float32)
    for l in range(n_lms):
        k = int(np.argmax(cls[l].reshape(-1)))  # first maximum
        gy, gx = divmod(k, grid)
        r, c = gy, gx
        own[l, 0] = (np.float32(gx) + ox[l, r, c]) / np.float32(grid)
        own[l, 1] = (np.float32(gy) + oy[l, r, c]) / np.float32(grid)
        for n in range(num_nb):
            by_nb[l, n, 0] = (np.float32(gx) + nbx[l * num_nb + n, r, c]) / np.float32(grid)
            by_nb[l, n, 1] = (np.float32(gy) + nby[l * num_nb + n, r, c]) / np.float32(grid)
    merged = np.zeros((n_lms, 2), np.float32)
    for t in range(n_lms):
        values = np.concatenate([own[t][None], by_nb[rl[t], rn[t]]], 0)  # 1 + max_len rows
        assert values.shape == (1 + max_len, 2)
        merged[t] = values.astype(np.float64).mean(0).astype(np.float32)
    return merged


def export(merged: np.ndarray, box, height=512, width=512) -> np.ndarray:
    """(float64(merged) * bw + x) / width, likewise y; bw = xmax - x + 1."""
    x, y, xmax, ymax = box
    out = np.zeros((merged.shape[0], 2), np.float64)
    out[:, 0] = (merged[:, 0].astype(np.float64) * (xmax - x + 1) + x) / width
    out[:, 1] = (merged[:, 1].astype(np.float64) * (ymax - y + 1) + y) / height
    return out


# official-preprocessing.md 5.5, written out
IBUG68_FROM_WFLW = (list(range(0, 33, 2)) + [33, 34, 35, 36, 37, 42, 43, 44, 45, 46] + list(range(51, 60)) +
                    [60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75] + list(range(76, 96)))
