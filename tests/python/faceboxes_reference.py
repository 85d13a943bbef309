"""A reference of the official FaceBoxesV2 detector (PIPNet's FaceBoxesV2/, as pixel3dmm's pipnet_utils calls it),
written for the tests from official-preprocessing.md section 3 and the official sources: network with the official
state-dict names, prior boxes, decoding, the 0.6 threshold, the compiled cpu_nms and the integer boxes.

NumPy does the sorting (np.argsort, kind 'quicksort', as the official code), so the C++ port's emulation of NumPy's
tie order is checked against NumPy itself.
"""
import itertools
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from random_weights import randomize_conv_bn_


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, k, s=1, p=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch1x1 = BasicConv2d(128, 32, 1)
        self.branch1x1_2 = BasicConv2d(128, 32, 1)
        self.branch3x3_reduce = BasicConv2d(128, 24, 1)
        self.branch3x3 = BasicConv2d(24, 32, 3, p=1)
        self.branch3x3_reduce_2 = BasicConv2d(128, 24, 1)
        self.branch3x3_2 = BasicConv2d(24, 32, 3, p=1)
        self.branch3x3_3 = BasicConv2d(32, 32, 3, p=1)

    def forward(self, x):
        pooled = F.avg_pool2d(x, 3, 1, 1)  # count_include_pad=True
        return torch.cat([self.branch1x1(x), self.branch1x1_2(pooled), self.branch3x3(self.branch3x3_reduce(x)),
                          self.branch3x3_3(self.branch3x3_2(self.branch3x3_reduce_2(x)))], 1)


class FaceBoxesV2(nn.Module):
    def __init__(self):
        super().__init__()
        for i, (cin, cout) in enumerate([(3, 8), (8, 16), (16, 32), (32, 64), (64, 128)], 1):
            setattr(self, f"conv{i}", BasicConv2d(cin, cout, 3, 2, 1))
        self.inception1, self.inception2, self.inception3 = Inception(), Inception(), Inception()
        self.conv6_1 = BasicConv2d(128, 128, 1)
        self.conv6_2 = BasicConv2d(128, 256, 3, 2, 1)
        self.conv7_1 = BasicConv2d(256, 128, 1)
        self.conv7_2 = BasicConv2d(128, 256, 3, 2, 1)
        self.loc = nn.Sequential(nn.Conv2d(128, 84, 3, padding=1), nn.Conv2d(256, 4, 3, padding=1),
                                 nn.Conv2d(256, 4, 3, padding=1))
        self.conf = nn.Sequential(nn.Conv2d(128, 42, 3, padding=1), nn.Conv2d(256, 2, 3, padding=1),
                                  nn.Conv2d(256, 2, 3, padding=1))

    def forward(self, x):
        for i in range(1, 6):
            x = getattr(self, f"conv{i}")(x)
        s1 = self.inception3(self.inception2(self.inception1(x)))
        s2 = self.conv6_2(self.conv6_1(s1))
        s3 = self.conv7_2(self.conv7_1(s2))
        loc = torch.cat([l(s).permute(0, 2, 3, 1).reshape(1, -1) for s, l in zip((s1, s2, s3), self.loc)], 1)
        conf = torch.cat([c(s).permute(0, 2, 3, 1).reshape(1, -1) for s, c in zip((s1, s2, s3), self.conf)], 1)
        return loc.view(1, -1, 4), torch.softmax(conf.view(-1, 2), dim=-1)


def randomize_(net: FaceBoxesV2, seed: int, face_bias: float = 4.0) -> FaceBoxesV2:
    """Seeded weights that give a usable detector: BN statistics drawn per channel, the face logits raised so that
    some anchors pass 0.6 (and some saturate at 1.0, i.e. tie)."""
    g = torch.Generator().manual_seed(seed)
    randomize_conv_bn_(net, g)
    with torch.no_grad():
        for c in net.conf:
            c.bias.view(-1, 2)[:, 1] += face_bias
        for l in net.loc:
            l.weight.mul_(0.05)
    return net.eval()


def network_input(bgr: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 BGR -> 1 x 3 x H x W float32: int32 minus (104, 117, 123), then float."""
    t = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1))).int()
    t -= torch.IntTensor([104, 117, 123]).view(3, 1, 1)
    return t.float().unsqueeze(0)


def priors(height: int, width: int) -> torch.Tensor:
    steps, min_sizes = [32, 64, 128], [[32, 64, 128], [256], [512]]
    anchors = []
    for k, step in enumerate(steps):
        for i, j in itertools.product(range(math.ceil(height / step)), range(math.ceil(width / step))):
            for s in min_sizes[k]:
                skx, sky = s / width, s / height
                if s in (32, 64):
                    offs = [0, 0.25, 0.5, 0.75] if s == 32 else [0, 0.5]
                    for dy, dx in itertools.product(offs, offs):
                        anchors += [(j + dx) * step / width, (i + dy) * step / height, skx, sky]
                else:
                    anchors += [(j + 0.5) * step / width, (i + 0.5) * step / height, skx, sky]
    return torch.Tensor(anchors).view(-1, 4)


def decode(loc: torch.Tensor, pri: torch.Tensor, height: int, width: int) -> torch.Tensor:
    boxes = torch.cat((pri[:, :2] + loc[:, :2] * 0.1 * pri[:, 2:], pri[:, 2:] * torch.exp(loc[:, 2:] * 0.2)), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes * torch.Tensor([width, height, width, height])


def cpu_nms(dets: np.ndarray, thresh: float):
    """The compiled cpu_nms.pyx: float32 throughout, suppress when overlap >= thresh (compared in double)."""
    f = np.float32
    x1, y1, x2, y2, scores = (dets[:, c] for c in range(5))
    areas = (x2 - x1 + f(1)) * (y2 - y1 + f(1))
    order = scores.argsort()[::-1]
    suppressed = np.zeros(len(dets), dtype=bool)
    keep = []
    for oi in range(len(dets)):
        i = order[oi]
        if suppressed[i]:
            continue
        keep.append(int(i))
        for oj in range(oi + 1, len(dets)):
            j = order[oj]
            if suppressed[j]:
                continue
            xx1, yy1 = max(x1[i], x1[j]), max(y1[i], y1[j])
            xx2, yy2 = min(x2[i], x2[j]), min(y2[i], y2[j])
            w = max(f(0), f(xx2 - xx1 + f(1)))
            h = max(f(0), f(yy2 - yy1 + f(1)))
            inter = f(w * h)
            ovr = f(inter / f(areas[i] + areas[j] - inter))
            if float(ovr) >= thresh:
                suppressed[j] = True
    return keep


def detections(loc: torch.Tensor, conf: torch.Tensor, height: int, width: int, thresh: float = 0.6):
    """Raw outputs -> [(score, x, y, w, h)] in the official detect()'s order, then sorted by score (stable)."""
    boxes = decode(loc.squeeze(0), priors(height, width), height, width).numpy()
    scores = conf.numpy()[:, 1]
    inds = np.where(scores > thresh)[0]  # float32 array vs Python float: compared in float32
    boxes, scores = boxes[inds], scores[inds]
    order = scores.argsort()[::-1][:5000]
    dets = np.hstack((boxes[order], scores[order][:, None])).astype(np.float32, copy=False)
    keep = cpu_nms(dets, 0.3) if len(dets) else []
    out = []
    for d in dets[keep][:750]:
        xmin, ymin, xmax, ymax = int(d[0]), int(d[1]), int(d[2]), int(d[3])
        out.append((float(d[4]), xmin, ymin, xmax - xmin, ymax - ymin))
    return sorted(out, key=lambda t: t[0], reverse=True)


def detect(net: FaceBoxesV2, bgr: np.ndarray, thresh: float = 0.6):
    with torch.no_grad():
        loc, conf = net(network_input(bgr))
    return detections(loc, conf, bgr.shape[0], bgr.shape[1], thresh)
