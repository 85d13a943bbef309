"""A reference of facer's RetinaFace mobilenet0.25 detector (`retinaface/mobilenet`, as pixel3dmm's
run_facer_segmentation.py runs it), written for the tests from official-preprocessing.md section 7.2: the network
with the official state-dict names, anchors, decoding of boxes and five keypoints, the 0.8 threshold, facer's torch
NMS and its final sort, and facer's colour quirk (RGB minus the BGR means).

Everything is torch on the CPU, as facer's post-processing is: the C++ port runs the same LibTorch kernels, so the
comparison is exact (argsort included, LibTorch 1.13 = PyTorch 1.13).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from random_weights import randomize_conv_bn_

SLOPE = 0.1  # every LeakyReLU of the mobilenet0.25 configuration


def _bn_act(cin, cout, k, stride, act, groups=1):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.LeakyReLU(SLOPE))
    return nn.Sequential(*layers)


def _dw(cin, cout, stride):
    """Depthwise 3x3 + BN + act, pointwise 1x1 + BN + act: parameters at indices 0, 1, 3, 4."""
    return nn.Sequential(*_bn_act(cin, cin, 3, stride, True, groups=cin), *_bn_act(cin, cout, 1, 1, True))


class Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(_bn_act(3, 8, 3, 2, True), _dw(8, 16, 1), _dw(16, 32, 2), _dw(32, 32, 1),
                                    _dw(32, 64, 2), _dw(64, 64, 1))
        self.stage2 = nn.Sequential(_dw(64, 128, 2), *[_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_dw(128, 256, 2), _dw(256, 256, 1))

    def forward(self, x):
        a = self.stage1(x)
        b = self.stage2(a)
        return a, b, self.stage3(b)


class FPN(nn.Module):
    def __init__(self):
        super().__init__()
        self.output1 = _bn_act(64, 64, 1, 1, True)
        self.output2 = _bn_act(128, 64, 1, 1, True)
        self.output3 = _bn_act(256, 64, 1, 1, True)
        self.merge1 = _bn_act(64, 64, 3, 1, True)
        self.merge2 = _bn_act(64, 64, 3, 1, True)

    def forward(self, a, b, c):
        o1, o2, o3 = self.output1(a), self.output2(b), self.output3(c)
        o2 = self.merge2(o2 + F.interpolate(o3, size=list(o2.shape[2:]), mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=list(o1.shape[2:]), mode="nearest"))
        return o1, o2, o3


class SSH(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv3X3 = _bn_act(64, 32, 3, 1, False)
        self.conv5X5_1 = _bn_act(64, 16, 3, 1, True)
        self.conv5X5_2 = _bn_act(16, 16, 3, 1, False)
        self.conv7X7_2 = _bn_act(16, 16, 3, 1, True)
        self.conv7x7_3 = _bn_act(16, 16, 3, 1, False)

    def forward(self, x):
        t = self.conv5X5_1(x)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(t), self.conv7x7_3(self.conv7X7_2(t))], 1))


class Head(nn.Module):
    def __init__(self, values):
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(64, 2 * values, 1)

    def forward(self, x):
        y = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return y.view(y.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """RetinaFace(cfg_mnet, phase='test'): (loc N x A x 4, softmax conf N x A x 2, landmarks N x A x 10)."""

    def __init__(self):
        super().__init__()
        self.body = Body()
        self.fpn = FPN()
        self.ssh1, self.ssh2, self.ssh3 = SSH(), SSH(), SSH()
        self.ClassHead = nn.ModuleList([Head(2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([Head(4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([Head(10) for _ in range(3)])

    def forward(self, x):
        p = self.fpn(*self.body(x))
        feats = [self.ssh1(p[0]), self.ssh2(p[1]), self.ssh3(p[2])]
        cat = lambda heads: torch.cat([h(f) for h, f in zip(heads, feats)], 1)
        return cat(self.BboxHead), F.softmax(cat(self.ClassHead), dim=-1), cat(self.LandmarkHead)


def randomize_(net: RetinaFace, seed: int, face_bias: float = 6.0) -> RetinaFace:
    """Seeded weights that give a usable detector: He-scaled convolutions, BN statistics drawn per channel, face
    logits raised so that some anchors pass 0.8 (and some saturate), small box and keypoint offsets."""
    g = torch.Generator().manual_seed(seed)
    randomize_conv_bn_(net, g)
    with torch.no_grad():
        for h in net.ClassHead:
            h.conv1x1.bias.view(-1, 2)[:, 1] += face_bias
        for h in list(net.BboxHead) + list(net.LandmarkHead):
            h.conv1x1.weight.mul_(0.05)
    return net.eval()


def network_input(rgb: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W uint8 RGB -> float32 minus (104, 117, 123) in the given channel order (facer's quirk: BGR
    means on RGB)."""
    return rgb.float() - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)


def anchors(height: int, width: int) -> torch.Tensor:
    """A x 4 float32 (cx, cy, w, h): values computed as Python floats, rounded once by torch.tensor."""
    values = []
    for step, sizes in ((8, (16, 32)), (16, (64, 128)), (32, (256, 512))):
        for i in range(math.ceil(height / step)):
            for j in range(math.ceil(width / step)):
                for s in sizes:
                    values += [(j + 0.5) * step / width, (i + 0.5) * step / height, s / width, s / height]
    return torch.tensor(values, dtype=torch.float32).view(-1, 4)


def decode(loc, conf, landmarks, height, width):
    """One image's raw outputs -> (boxes A x 4, points A x 10 in pixels, scores A), facer's operation order."""
    pri = anchors(height, width)
    xy, wh = pri[:, :2], pri[:, 2:]
    boxes = torch.cat((xy + loc[:, :2] * 0.1 * wh, wh * torch.exp(loc[:, 2:] * 0.2)), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    boxes = boxes * torch.tensor([width, height, width, height], dtype=torch.float32)
    pts = torch.cat([xy + landmarks[:, 2 * k:2 * k + 2] * 0.1 * wh for k in range(5)], 1)
    pts = pts * torch.tensor([width, height] * 5, dtype=torch.float32)
    return boxes, pts, conf[:, 1]


def nms(dets: torch.Tensor, thresh: float):
    """facer's torch NMS: visiting order flip(argsort(scores)), areas with +1, keep ovr <= thresh."""
    x1, y1, x2, y2, s = dets.unbind(1)
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = torch.flip(s.argsort(), [0])
    keep = []
    while order.numel() > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = torch.clamp_min(torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + 1, 0.0)
        h = torch.clamp_min(torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + 1, 0.0)
        inter = w * h
        ovr = inter / (area[i] + area[rest] - inter)
        order = rest[ovr <= thresh]
    return keep


def detections(loc, conf, landmarks, height, width, thresh=0.8, nms_thresh=0.4):
    """-> list of (box 4, points 5 x 2, score float), highest score first, as facer's post_process."""
    boxes, pts, scores = decode(loc, conf, landmarks, height, width)
    sel = scores > thresh
    boxes, pts, scores = boxes[sel], pts[sel], scores[sel]
    order = torch.flip(scores.argsort(), [0])[:5000]
    boxes, pts, scores = boxes[order], pts[order], scores[order]
    dets = torch.cat([boxes, scores[:, None]], 1)
    keep = nms(dets, nms_thresh)[:750]
    out = [(dets[k, :4], pts[k].view(5, 2), float(dets[k, 4])) for k in keep]
    return sorted(out, key=lambda d: d[2], reverse=True)


def detect(net: RetinaFace, rgb: torch.Tensor, thresh=0.8):
    """rgb: 1 x 3 x H x W uint8 -> detections."""
    with torch.no_grad():
        loc, conf, lm = net(network_input(rgb))
    return detections(loc[0], conf[0], lm[0], rgb.shape[2], rgb.shape[3], thresh)
