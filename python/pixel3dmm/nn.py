"""The Pixel3DMM network: a DINO / DINOv2 ViT backbone (timm layout) and the official prediction head.

Networks are ``torch.nn.Module`` wrappers around the C++ modules (parameters shared, ``forward`` in C++):

    net = pixel3dmm.nn.load_network("uv.safetensors")          # uv.json beside it
    out = net(image)                                           # B x 3 x 512 x 512 in [0, 1] -> B x 2 x 512 x 512

Convert the official Lightning checkpoints first: ``python -m pixel3dmm.convert_checkpoint uv.ckpt``.
"""
from typing import Any, Dict, Optional

import torch
from torch.nn.cpp import ModuleWrapper

from ._C import nn as _nn

resize_bicubic_antialias = _nn.resize_bicubic_antialias
resample_abs_pos_embed = _nn.resample_abs_pos_embed
resize_pil_bicubic = _nn.resize_pil_bicubic
resize_pil_bicubic_u8 = _nn.resize_pil_bicubic_u8
official_config = _nn.official_config


class Pixel3DMMNet(ModuleWrapper):
    """Backbone + head, a ``torch.nn.Module`` whose parameters live in C++ (``cpp_module``).

    ``Pixel3DMMNet(config)`` builds a randomly initialised network from a config dict (see ``official_config``);
    ``load_network`` builds and loads one. ``forward(image)``: B x 3 x H x W float32 in [0, 1] -> the raw output
    B x C x 16H/p x 16W/p (UV in [-1, 1] units, C = 2; unnormalised normals, C = 3).
    """

    def __init__(self, config: Any):
        cpp = config if isinstance(config, _nn.cpp.Pixel3DMMNet) else _nn.cpp.Pixel3DMMNet(config)
        super().__init__(cpp)
        # torch's ModuleWrapper exposes the C++ children, which lack Python's state_dict machinery: present the
        # whole tree as one module with dotted parameter names instead (backbone.*, head.*), evaluated live.
        self._parameters = _LiveDict(cpp.named_parameters)
        self._buffers = _LiveDict(cpp.named_buffers)
        self._modules = {}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.cpp_module.forward(image)

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copies a state dict of this module's names (backbone.*, head.*). strict: the C++ loader's check (one
        ValueError listing every missing, unexpected or mis-shaped tensor); otherwise matching names only."""
        official = {_official_name(k): v for k, v in state_dict.items()}
        if strict:
            self.cpp_module.load_official_state_dict(official, "state_dict")
            return torch.nn.modules.module._IncompatibleKeys([], [])
        own = dict(self.cpp_module.named_parameters().items())
        own.update(self.cpp_module.named_buffers().items())
        with torch.no_grad():
            for k, v in state_dict.items():
                if k in own and own[k].shape == v.shape:
                    own[k].copy_(v)
        return torch.nn.modules.module._IncompatibleKeys(sorted(set(own) - set(state_dict)),
                                                         sorted(set(state_dict) - set(own)))

    def __repr__(self) -> str:
        return repr(self.cpp_module)


class _LiveDict:
    """A read-through view of a C++ OrderedTensorDict getter (so parameters replaced in C++ are seen)."""

    def __init__(self, getter):
        self._getter = getter

    def _d(self):
        return dict(self._getter().items())

    def items(self):
        return self._d().items()

    def keys(self):
        return self._d().keys()

    def values(self):
        return self._d().values()

    def __iter__(self):
        return iter(self._d())

    def __len__(self):
        return len(self._d())

    def __contains__(self, key):
        return key in self._d()

    def __getitem__(self, key):
        return self._d()[key]

    def get(self, key, default=None):
        return self._d().get(key, default)


def load_network(weights: str, config: Optional[str] = None) -> Pixel3DMMNet:
    """Loads a converted network (weights .safetensors, config .json defaulting to the weights' name), in eval mode.
    Raises FileNotFoundError, or ValueError listing every missing, unexpected or mis-shaped tensor."""
    return Pixel3DMMNet(_nn.load_network(weights, config or ""))


def save_network(net: Pixel3DMMNet, weights: str, config: Optional[str] = None) -> None:
    """Writes a network's weights (official names) and config JSON, atomically."""
    _nn.save_network(_cpp(net), weights, config or "")


def _official_name(name: str) -> str:
    if name.startswith("backbone."):
        return "img_encoder.model." + name[len("backbone."):]
    if name.startswith("head."):
        return name[len("head."):]
    return name


def _cpp(net):
    return net.cpp_module if isinstance(net, ModuleWrapper) else net


__all__ = ["Pixel3DMMNet", "load_network", "save_network", "official_config", "resize_bicubic_antialias",
           "resample_abs_pos_embed", "resize_pil_bicubic", "resize_pil_bicubic_u8"]
