"""Seeded weights for the reference networks of the preprocessing parity tests (FaceBoxesV2, PIPNet, RetinaFace):
one draw order, so that a reference and the C++ port load the same tensors."""
import math
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn


def randomize_conv_bn_(net: nn.Module, g: torch.Generator,
                       conv_std: Optional[Callable[[nn.Conv2d], float]] = None,
                       running_var: Tuple[float, float] = (0.5, 1.5)) -> None:
    """In module order: convolution weights ~ N(0, conv_std(m)^2) (default He: sqrt(2 / fan_in)), biases
    ~ N(0, 0.1^2); BatchNorm affine near (1, 0), running means ~ N(0, 0.1^2), running variances uniform in
    ``running_var``, 1000 steps tracked."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                std = conv_std(m) if conv_std else math.sqrt(2.0 / m.weight[0].numel())
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * std)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                lo, hi = running_var
                m.running_var.copy_(lo + (hi - lo) * torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(1000)
