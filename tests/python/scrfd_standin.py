"""A stand-in for insightface's ``scrfd_10g_bnkps.onnx`` (antelopev2), for tests that cannot have the real file.

The network follows the SCRFD-10G-BNKPS configuration of insightface's ``detection/scrfd`` (written here from its
config, not copied): a ResNetV1e backbone (deep 3x3 stem, 2x2 max pool, BasicBlocks (3, 4, 2, 3) of widths
(56, 88, 88, 224), average-pool downsampling), a PAFPN on the last three stages (56 channels; the top-down path
upsamples with ``F.interpolate(size=...)``, which exports a Resize whose sizes are computed from the input's
shape), and a head per stride with three 3x3 conv + BN + ReLU layers (80 channels), a learnable scale on the box
branch and 2 anchors per cell. Exported as insightface's ``detection/scrfd/tools/scrfd2onnx.py`` exports:
opset 11, input ``input.1`` of shape 1 x 3 x ? x ?, nine outputs in the order scores / boxes / keypoints for
strides 8, 16, 32, each of shape (cells * 2, C) with sigmoid scores. ``width`` scales every channel count (tests use a small one).

That tool then runs onnx-simplifier (BN folded into the convolutions, constants folded); the stand-in keeps the
unsimplified graph, which has more op types (BatchNormalization, Shape, Gather, ...), not fewer. The real file was
not available to compare op lists.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from random_weights import randomize_conv_bn_

OUTPUT_NAMES = ["score_8", "score_16", "score_32", "bbox_8", "bbox_16", "bbox_32", "kps_8", "kps_16", "kps_32"]
STRIDES = (8, 16, 32)


def _conv_bn(cin, cout, stride=1, relu=True):
    layers = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, stride), _conv_bn(cout, cout, relu=False))
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                                      nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.body(x) + (x if self.down is None else self.down(x)))


class StandInSCRFD(nn.Module):
    def __init__(self, width: float = 1.0):
        super().__init__()
        c = lambda n: max(4, int(round(n * width)))  # noqa: E731
        base, planes, blocks = c(56), [c(56), c(88), c(88), c(224)], (3, 4, 2, 3)
        self.stem = nn.Sequential(_conv_bn(3, base // 2, 2), _conv_bn(base // 2, base // 2), _conv_bn(base // 2, base),
                                  nn.MaxPool2d(2, 2))
        stages, cin = [], base
        for i, (n, p) in enumerate(zip(blocks, planes)):
            stages.append(nn.Sequential(*[_BasicBlock(cin if j == 0 else p, p, (1 if i == 0 else 2) if j == 0 else 1)
                                          for j in range(n)]))
            cin = p
        self.stages = nn.ModuleList(stages)
        out = c(56)
        self.lateral = nn.ModuleList([nn.Conv2d(p, out, 1) for p in planes[1:]])
        self.fpn = nn.ModuleList([nn.Conv2d(out, out, 3, 1, 1) for _ in range(3)])
        self.down = nn.ModuleList([nn.Conv2d(out, out, 3, 2, 1) for _ in range(2)])
        self.pafpn = nn.ModuleList([nn.Conv2d(out, out, 3, 1, 1) for _ in range(2)])
        feat = c(80)
        self.head_convs = nn.ModuleList([nn.Sequential(_conv_bn(out, feat), _conv_bn(feat, feat), _conv_bn(feat, feat))
                                         for _ in STRIDES])
        self.cls = nn.ModuleList([nn.Conv2d(feat, 2, 3, 1, 1) for _ in STRIDES])
        self.reg = nn.ModuleList([nn.Conv2d(feat, 8, 3, 1, 1) for _ in STRIDES])
        self.kps = nn.ModuleList([nn.Conv2d(feat, 20, 3, 1, 1) for _ in STRIDES])
        self.scales = nn.Parameter(torch.ones(3))

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        lat = [conv(f) for conv, f in zip(self.lateral, feats[1:])]
        for i in (2, 1):
            lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:], mode="nearest")
        inter = [conv(f) for conv, f in zip(self.fpn, lat)]
        for i in range(2):
            inter[i + 1] = inter[i + 1] + self.down[i](inter[i])
        outs = [inter[0]] + [self.pafpn[i - 1](inter[i]) for i in (1, 2)]
        scores, boxes, kps = [], [], []
        for i, f in enumerate(outs):
            h = self.head_convs[i](f)
            scores.append(self.cls[i](h).permute(2, 3, 0, 1).reshape(-1, 1).sigmoid())
            boxes.append((self.reg[i](h) * self.scales[i]).permute(2, 3, 0, 1).reshape(-1, 4))
            kps.append(self.kps[i](h).permute(2, 3, 0, 1).reshape(-1, 10))
        return tuple(scores + boxes + kps)


def randomize(net: nn.Module, seed: int, score_bias: float = 0.0) -> nn.Module:
    """Seeded weights and BN statistics that keep activations O(1); distances positive (exp of the raw output is
    not part of SCRFD, so positive biases do it); ``score_bias`` shifts the score logits."""
    g = torch.Generator().manual_seed(seed)
    randomize_conv_bn_(net, g, lambda m: (1.0 / m.weight[0].numel()) ** 0.5, running_var=(1.0, 1.5))
    with torch.no_grad():
        for i in range(3):
            net.cls[i].bias.add_(score_bias)
            net.reg[i].bias.add_(2.0)
        net.scales.copy_(torch.tensor([1.0, 0.9, 1.1]))
    return net.eval()


def export(net: nn.Module, path: str, size: int = 224) -> None:
    """torch.onnx.export as insightface's scrfd2onnx.py does (opset 11, dynamic batch, height and width)."""
    dynamic = {name: {0: "?", 1: "?"} for name in OUTPUT_NAMES}
    dynamic["input.1"] = {0: "?", 2: "?", 3: "?"}
    with torch.no_grad():
        torch.onnx.export(net, torch.zeros(1, 3, size, size), path, input_names=["input.1"], output_names=OUTPUT_NAMES,
                          dynamic_axes=dynamic, opset_version=11, keep_initializers_as_inputs=False)


def make_standin(path: str, width: float = 0.25, seed: int = 0, score_bias: float = 0.0) -> nn.Module:
    """Builds, randomises and exports a stand-in; returns the torch module (eval mode)."""
    net = randomize(StandInSCRFD(width), seed, score_bias)
    export(net, path)
    return net
