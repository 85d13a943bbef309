"""Converts MICA's official weights (``mica.tar``) into pixel3dmm's ``mica.safetensors``.

    /usr/bin/python3 -m pixel3dmm.convert_mica mica.tar [-o mica.safetensors]

``mica.tar`` is not a tar archive but a ``torch.save`` dict (MICA's trainer saves ``arcface``, ``flameModel``,
``opt``, ``scheduler``, ``validator``, ``epoch``, ...). It is read with the restricted unpickler
(``pixel3dmm.restricted_pickle``): tensors and plain containers are built, any other class becomes an inert stub
that executes nothing. Only ``arcface`` (the IResNet-100 state dict) and the ``regressor.*`` entries of
``flameModel`` (the mapping network; its ``generator.*`` FLAME buffers are not needed for the identity code) are
kept, under ``arcface.<name>`` and ``regressor.<name>``, as float32, without BatchNorm's ``num_batches_tracked``.
The result is loaded by the C++ loader, which is strict: missing, unexpected and mis-shaped tensors are all named,
with expected and found shapes, and nothing is written. The output is written atomically.
"""
import argparse
import os
import sys
from typing import Any, Dict, Optional

import torch

from . import restricted_pickle as rp
from .convert_checkpoint import _TORCH_GLOBALS, _torch_load

__all__ = ["load_mica_tar", "mica_tensors", "convert", "main"]

# Modules whose globals are never stubbed: an unknown builtin (eval, getattr, ...) is refused by name.
_NEVER_STUB = {"builtins", "__builtin__", "os", "posix", "nt", "subprocess", "sys", "importlib", "runpy", "shutil",
               "socket", "io", "codecs", "pickle", "marshal", "types", "functools", "operator", "_operator"}


def _stub_unknown_class(module: str, name: str) -> Optional[type]:
    """mica.tar pickles classes of MICA's training code: they become inert stand-ins, but a global of a module that
    can run code (builtins, os, subprocess, ...) or of torch is refused by name."""
    if module.split(".")[0] in _NEVER_STUB or module.split(".")[0] == "torch":
        return None
    return rp.stub_class(module, name)


def _pickle_module(source: str):
    return rp.pickle_module(_TORCH_GLOBALS, source, stub=_stub_unknown_class)


def load_mica_tar(path: str) -> Dict[str, Any]:
    """The whole ``torch.save`` dict (tensors on the CPU, unknown classes as stubs)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: MICA checkpoint not found")
    try:
        obj = _torch_load(path, _pickle_module(path))
    except rp.RefusedGlobal:
        raise
    except Exception as e:  # truncated zips and pickles fail in many ways
        raise ValueError(f"{path}: not a readable PyTorch file ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict with keys 'arcface' and 'flameModel', found {type(obj).__name__}")
    return obj


def _state_dict(ckpt: Dict[str, Any], key: str, path: str) -> Dict[str, torch.Tensor]:
    if key not in ckpt:
        raise ValueError(f"{path}: key '{key}' is missing (found keys: {', '.join(map(str, ckpt))})")
    sd = ckpt[key]
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: key '{key}': expected a state dict, found {type(sd).__name__}")
    for name, t in sd.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{path}: '{key}.{name}': expected a tensor, found {type(t).__name__}")
    return sd


def mica_tensors(ckpt: Dict[str, Any], path: str = "<mica.tar>") -> Dict[str, torch.Tensor]:
    """``arcface.*`` and ``regressor.*`` float32 tensors (official names) from the loaded dict."""
    out: Dict[str, torch.Tensor] = {}
    for name, t in _state_dict(ckpt, "arcface", path).items():
        if not name.endswith("num_batches_tracked"):
            out["arcface." + name] = t
    regressor = {k: v for k, v in _state_dict(ckpt, "flameModel", path).items() if k.startswith("regressor.")}
    if not regressor:
        raise ValueError(f"{path}: 'flameModel' holds no 'regressor.*' tensors (the mapping network)")
    out.update(regressor)
    for name, t in out.items():
        if not t.is_floating_point():
            raise ValueError(f"{path}: '{name}': expected a floating-point tensor, found {t.dtype}")
    return {k: v.detach().to(torch.float32).contiguous() for k, v in out.items()}


def convert(src: str, dst: str = "") -> str:
    """mica.tar -> mica.safetensors (default: beside the input). Returns the output path."""
    from . import _C

    dst = dst or os.path.splitext(src)[0] + ".safetensors"
    tensors = mica_tensors(load_mica_tar(src), src)
    mica = _C.identity.mica_from_state_dict(tensors, src)  # strict: raises naming src, keys and shapes
    _C.identity.save_mica(mica, dst)
    return dst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixel3dmm.convert_mica", description=__doc__.split("\n\n")[0])
    parser.add_argument("mica_tar", help="MICA's pretrained weights (mica.tar, a torch.save dict)")
    parser.add_argument("-o", "--output", default="", help="output .safetensors (default: beside the input)")
    args = parser.parse_args(argv)
    try:
        out = convert(args.mica_tar, args.output)
    except (ValueError, FileNotFoundError, rp.pickle.UnpicklingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
