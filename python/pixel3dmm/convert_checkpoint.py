"""Converts an official Pixel3DMM Lightning checkpoint (``uv.ckpt``, ``normals.ckpt``) into pixel3dmm's format.

    /usr/bin/python3 -m pixel3dmm.convert_checkpoint uv.ckpt [-o uv.safetensors] [--config uv.json]

writes ``uv.safetensors`` (the network's state dict with the ``net.`` prefix removed, float32) and ``uv.json``
(the architecture: prediction type, timm backbone layout derived from the tensors and checked against the
checkpoint's ``encoder_backbone`` name, head hyper-parameters). Then it loads the result with the C++ loader, which
is strict, so a checkpoint that does not fit the architecture fails here with every offending tensor named, and
leaves no output behind.

The checkpoint is read with Debian's torch only: Lightning, timm and OmegaConf need not be installed. Its pickle is
read by a restricted unpickler (``pixel3dmm.restricted_pickle``) that builds tensors and plain containers and turns
OmegaConf / Lightning objects into inert stubs; any other global is refused by name.
"""
import argparse
import json
import math
import os
import re
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import torch

from . import restricted_pickle as rp

__all__ = ["load_checkpoint", "hyper_parameters", "network_config", "convert", "main"]

# Packages whose pickled classes become stubs: the checkpoint's configuration (OmegaConf), Lightning's bookkeeping
# and the typing / pathlib objects they reference. Stubs execute nothing; their pickled state is kept for reading.
_STUB_PACKAGES = {"omegaconf", "pytorch_lightning", "lightning", "lightning_fabric", "typing", "pathlib"}

def _bounded_rebuild(rebuild):
    """A torch tensor-rebuild function that first refuses a size whose dense copy would exceed the allocation limit
    (a stride of 0 lets one stored element declare any size; the converter later writes tensors densely)."""
    def rebuild_checked(storage, storage_offset, size, stride, *args, **kwargs):
        numel = 1
        for n in size:
            numel *= max(int(n), 0)
        rp.refuse_large("a pickled tensor", numel * getattr(storage, "element_size", lambda: 8)())
        return rebuild(storage, storage_offset, size, stride, *args, **kwargs)
    return rebuild_checked


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor"): _bounded_rebuild(torch._utils._rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _bounded_rebuild(torch._utils._rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("collections", "OrderedDict"): __import__("collections").OrderedDict,
}
for _name in ("_rebuild_parameter_with_state",):
    if hasattr(torch._utils, _name):
        _TORCH_GLOBALS[("torch._utils", _name)] = getattr(torch._utils, _name)
for _dtype in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"):
    _TORCH_GLOBALS[("torch", _dtype)] = getattr(torch, _dtype)


def _stub_getitem(obj, key):
    """``operator.getitem`` for subscripted typing annotations (``typing.Dict[str, Any]``) in OmegaConf metadata:
    allowed only on stubs, where it returns the stub."""
    if isinstance(obj, type) and issubclass(obj, rp.Stub):
        return obj
    raise rp.RefusedGlobal(f"refusing operator.getitem on {type(obj).__name__} (only typing stubs)")


_TORCH_GLOBALS[("_operator", "getitem")] = _stub_getitem
_TORCH_GLOBALS[("operator", "getitem")] = _stub_getitem


class _DictStub(dict):
    """Stands in for dict subclasses such as Lightning's AttributeDict."""


def _stub_training_class(module: str, name: str) -> Optional[type]:
    """Stand-ins for the training code's classes (configs, Lightning's AttributeDict); anything else is refused."""
    if module.split(".")[0] not in _STUB_PACKAGES:
        return None
    if name.endswith("Dict") and module.split(".")[0] != "typing":
        return type(name, (_DictStub,), {"__module__": module})
    return rp.stub_class(module, name)


def _pickle_module(source: str):
    return rp.pickle_module(_TORCH_GLOBALS, source, stub=_stub_training_class)


def _torch_load(path: str, pickle_module) -> Any:
    """torch.load(path, map_location='cpu', pickle_module=pickle_module), made safe on torch 1.13.0.

    Debian's torch 1.13 replaces any ``pickle_module`` by the unrestricted ``pickle`` unless ``weights_only`` is
    set (fixed upstream in 1.13.1), so the restricted unpickler would silently not be used. Call the reader
    torch.load dispatches to with our module instead; newer versions keep the same private functions, and where
    they are missing, torch.load honours pickle_module."""
    ser = torch.serialization
    if not all(hasattr(ser, n) for n in ("_is_zipfile", "_open_zipfile_reader", "_load", "_legacy_load")):
        return torch.load(path, map_location="cpu", pickle_module=pickle_module)
    with open(path, "rb") as f:
        if ser._is_zipfile(f):
            with ser._open_zipfile_reader(f) as zf:
                return ser._load(zf, "cpu", pickle_module, encoding="utf-8")
        return ser._legacy_load(f, "cpu", pickle_module, encoding="utf-8")


def load_checkpoint(path: str) -> Dict[str, Any]:
    """The checkpoint as a dict (tensors on the CPU; OmegaConf / Lightning objects as stubs)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = _torch_load(path, _pickle_module(path))
    except rp.RefusedGlobal:
        raise
    except Exception as e:  # a truncated zip or pickle surfaces as many exception types
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ValueError(f"{path}: not a Lightning checkpoint (expected a dict with a 'state_dict' entry)")
    return ckpt


def _plain(obj: Any) -> Any:
    """OmegaConf stubs (DictConfig/ListConfig `_content`, value nodes `_val`) -> plain dicts, lists and values."""
    if isinstance(obj, rp.Stub):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = state[0] or state[1]
        if isinstance(state, dict):
            if "_content" in state:
                return _plain(state["_content"])
            if "_val" in state:
                return _plain(state["_val"])
        return repr(obj)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist() if obj.numel() <= 16 else f"<tensor {list(obj.shape)}>"
    return obj


def hyper_parameters(ckpt: Dict[str, Any], source: str = "<checkpoint>") -> Dict[str, Any]:
    """The checkpoint's configuration (``hyper_parameters['cfg']``) as plain dicts; interpolations unresolved."""
    hp = ckpt.get("hyper_parameters")
    if hp is None:
        raise ValueError(f"{source}: no 'hyper_parameters' entry (not a checkpoint of the official system)")
    hp = _plain(hp)
    cfg = hp.get("cfg", hp) if isinstance(hp, dict) else hp
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise ValueError(f"{source}: hyper_parameters hold no 'cfg' with a 'model' section")
    return cfg


_INTERP = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")


class _Config:
    def __init__(self, cfg: Dict[str, Any], source: str):
        self.cfg, self.source = cfg, source

    def get(self, path: str, default: Any = KeyError, _depth: int = 0) -> Any:
        node: Any = self.cfg
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is KeyError:
                    raise ValueError(f"{self.source}: hyper-parameter '{path}' is missing")
                return default
            node = node[part]
        if isinstance(node, str):
            m = _INTERP.match(node)
            if m:
                if _depth > 16:
                    raise ValueError(f"{self.source}: interpolation loop at '{path}'")
                return self.get(m.group(1), default, _depth + 1)
            if node.startswith("${"):
                raise ValueError(f"{self.source}: cannot resolve the interpolation '{node}' of '{path}'")
        return node


# ---------------------------------------------------------------------------------------------------------------
_VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}


def _vit_from_name(name: str) -> Dict[str, Any]:
    """What a timm name promises (mirrors VisionTransformerOptions::from_timm_name)."""
    m = re.match(r"^(?:timm/)?vit_(tiny|small|base|large)_patch(\d+)_(.+)$", name)
    if not m:
        raise ValueError(f"unsupported encoder_backbone '{name}': expected a timm ViT such as "
                         "vit_small_patch16_224.dino or vit_base_patch14_reg4_dinov2")
    dim, depth, heads = _VIT_SIZES[m.group(1)]
    out = {"embed_dim": dim, "depth": depth, "num_heads": heads, "patch_size": int(m.group(2))}
    d2 = re.match(r"^(?:reg(\d+)_)?dinov2(?:\..*)?$", m.group(3))
    sized = re.match(r"^(\d+)(?:\..*)?$", m.group(3))
    if d2:
        regs = int(d2.group(1) or 0)
        out.update(img_size=518, layer_scale=True, reg_tokens=regs, no_embed_class=regs > 0)
    elif sized:
        out.update(img_size=int(sized.group(1)), layer_scale=False, reg_tokens=0, no_embed_class=False)
    else:
        raise ValueError(f"unsupported encoder_backbone '{name}'")
    return out


def _derive_backbone(sd: Dict[str, torch.Tensor], name: str, source: str) -> Dict[str, Any]:
    p = "img_encoder.model."
    need = [p + "cls_token", p + "pos_embed", p + "patch_embed.proj.weight", p + "blocks.0.mlp.fc1.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise ValueError(f"{source}: no timm ViT backbone in the state dict (missing: {', '.join(missing)})")
    blocks = {int(m.group(1)) for k in sd for m in [re.match(re.escape(p) + r"blocks\.(\d+)\.", k)] if m}
    depth = max(blocks) + 1
    embed_dim = sd[p + "cls_token"].shape[-1]
    patch = sd[p + "patch_embed.proj.weight"].shape[-1]
    reg = sd[p + "reg_token"].shape[1] if p + "reg_token" in sd else 0
    hidden = sd[p + "blocks.0.mlp.fc1.weight"].shape[0]
    L = sd[p + "pos_embed"].shape[1]
    expected = _vit_from_name(name)
    no_embed_class = expected["no_embed_class"]
    grid2 = L if no_embed_class else L - 1 - reg
    g = int(round(math.sqrt(max(grid2, 0))))
    if g * g != grid2:
        raise ValueError(f"{source}: pos_embed holds {L} tokens, not a square grid plus {0 if no_embed_class else 1 + reg}"
                         " prefix tokens")
    derived = {"patch_size": patch, "embed_dim": embed_dim, "depth": depth, "num_heads": embed_dim // 64,
               "mlp_ratio": hidden / embed_dim, "img_size": g * patch,
               "layer_scale": p + "blocks.0.ls1.gamma" in sd, "reg_tokens": reg, "no_embed_class": no_embed_class,
               "eps": 1e-6}
    bad = [f"{k} (the name says {expected[k]}, the tensors {derived[k]})"
           for k in ("patch_size", "embed_dim", "depth", "num_heads", "img_size", "layer_scale", "reg_tokens")
           if derived[k] != expected[k]]
    if bad:
        raise ValueError(f"{source}: the backbone's tensors do not match encoder_backbone '{name}': " + "; ".join(bad))
    if derived["mlp_ratio"] != 4.0:
        raise ValueError(f"{source}: backbone MLP width {hidden} is not 4 x {embed_dim} (unsupported)")
    return derived


_PRED_TYPES = ("pos_map", "normals", "albedo", "uv_map", "depth", "nocs")
_PRED_CHANNELS = {"uv_map": 2, "normals": 3}


def network_config(sd: Dict[str, torch.Tensor], cfg: Dict[str, Any], source: str = "<checkpoint>") -> Dict[str, Any]:
    """The pixel3dmm network JSON (see pixel3dmm/nn/network.h) from a state dict without ``net.`` and the
    checkpoint's plain config. Raises ValueError for checkpoints the port does not support."""
    c = _Config(cfg, source)
    refused = [flag for flag, default in (("use_pos_enc", False), ("prior_input", False), ("use_uv_enc", False),
                                          ("use_plucker", False), ("pred_disentangled", False))
               if c.get("model." + flag, default)]
    if c.get("model.n_facial_components", 0):
        refused.append("n_facial_components")
    if refused:
        raise ValueError(f"{source}: the checkpoint needs {', '.join(refused)}, which the official inference never "
                         "feeds (extra batch inputs); pixel3dmm supports only networks that predict from the image "
                         "alone")
    fmt = c.get("model.feature_map_type", "DINO")
    if fmt != "DINO":
        raise ValueError(f"{source}: feature_map_type '{fmt}' is not supported (only DINO / timm ViT backbones)")
    if not c.get("model.conv_dec", True):
        raise ValueError(f"{source}: conv_dec=False (patch-16 unpatchify) is not supported")
    ptype = c.get("model.prediction_type")
    ptype_s = ",".join(ptype) if isinstance(ptype, list) else str(ptype)
    kinds = [t for t in _PRED_TYPES if t in ptype_s]  # the official network tests membership the same way
    if len(kinds) != 1 or kinds[0] not in _PRED_CHANNELS:
        raise ValueError(f"{source}: prediction_type '{ptype_s}' is not supported (expected exactly one of "
                         "'uv_map', 'normals')")
    kind = kinds[0]
    n_views = int(c.get("n_views"))
    head = {"in_dim": None, "n_views": n_views, "view_embed_dim": int(c.get("model.view_embed_dim", 16)),
            "embedding_dim": int(c.get("model.embedding_dim")), "num_layers": int(c.get("model.num_layers")),
            "num_heads": int(c.get("model.num_heads")), "mlp_ratio": 4.0, "eps": 1e-5,
            "pred_dim": _PRED_CHANNELS[kind]}
    # Cross-checks that name the tensor at fault (the C++ loader then checks every tensor).
    problems = []
    if "token_2_patch_content.weight" in sd:
        rows = sd["token_2_patch_content.weight"].shape[0]
        if rows != 4 * head["pred_dim"]:
            problems.append(f"token_2_patch_content.weight has {rows} rows = 2x2 x {rows / 4:g} channels, but "
                            f"prediction_type '{kind}' has {head['pred_dim']} (a checkpoint of another head type?)")
    if n_views > 1 and "view_embed" in sd and tuple(sd["view_embed"].shape[:3]) != (1, n_views, head["view_embed_dim"]):
        problems.append(f"view_embed has shape {list(sd['view_embed'].shape)}, the config says n_views {n_views}, "
                        f"view_embed_dim {head['view_embed_dim']}")
    layers = {int(m.group(1)) for k in sd for m in [re.match(r"vol_decoder\.layers\.(\d+)\.", k)] if m}
    if layers and max(layers) + 1 != head["num_layers"]:
        problems.append(f"vol_decoder has {max(layers) + 1} layers, the config says num_layers {head['num_layers']}")
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))
    name = str(c.get("model.encoder_backbone"))
    backbone = _derive_backbone(sd, name, source)
    head["in_dim"] = backbone["embed_dim"]
    return {"format": "pixel3dmm-network", "version": 1, "prediction_type": kind,
            "image_size": 32 * backbone["patch_size"], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
            "backbone": dict(name=name, **backbone), "head": head}


# ---------------------------------------------------------------------------------------------------------------
_ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.int64: "I64",
              torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def _write_safetensors_py(path: str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> None:
    """A minimal safetensors writer (used when the C++ writer is not available)."""
    header: Dict[str, Any] = {}
    blobs: List[bytes] = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    _write_atomically(path, lambda f: [f.write(len(h).to_bytes(8, "little")), f.write(h)] + [f.write(b) for b in blobs])


def _write_atomically(path: str, write) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _save_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> None:
    try:
        from .io import save_safetensors  # the C++ writer, when pixel3dmm.io provides it
    except ImportError:
        save_safetensors = None
    if save_safetensors is not None:
        save_safetensors(path, tensors, metadata)
    else:
        _write_safetensors_py(path, tensors, metadata)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def convert(checkpoint: str, output: Optional[str] = None, config: Optional[str] = None,
            verify: bool = True) -> Tuple[str, str]:
    """Converts ``checkpoint``; returns (weights path, config path). ``verify`` loads the result with the C++
    loader (strict) and removes both outputs if that fails."""
    output = output or os.path.splitext(checkpoint)[0] + ".safetensors"
    config = config or os.path.splitext(output)[0] + ".json"
    ckpt = load_checkpoint(checkpoint)
    cfg = hyper_parameters(ckpt, checkpoint)
    sd = {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    if not sd:
        raise ValueError(f"{checkpoint}: the state dict has no 'net.' parameters")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{checkpoint}: state dict entries that are not tensors: {', '.join(bad)}")
    net_cfg = network_config(sd, cfg, checkpoint)
    net_cfg["source"] = {"checkpoint": os.path.basename(checkpoint), "converter": "pixel3dmm.convert_checkpoint",
                         "hyper_parameters": _jsonable(cfg)}
    tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    _save_safetensors(output, tensors, {"format": "pixel3dmm-network", "source": os.path.basename(checkpoint)})
    try:
        _write_atomically(config, lambda f: f.write((json.dumps(net_cfg, indent=2) + "\n").encode()))
        if verify:
            from ._C import nn as _nn
            _nn.load_network(output, config)
    except BaseException:
        for p in (output, config):
            if os.path.exists(p):
                os.unlink(p)
        raise
    return output, config


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pixel3dmm.convert_checkpoint", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="official Lightning checkpoint (uv.ckpt or normals.ckpt)")
    ap.add_argument("-o", "--output", help="weights to write (default: <checkpoint>.safetensors)")
    ap.add_argument("--config", help="config to write (default: <output>.json)")
    ap.add_argument("--no-verify", action="store_true", help="skip loading the result with the C++ loader")
    args = ap.parse_args(argv)
    try:
        out, cfg = convert(args.checkpoint, args.output, args.config, verify=not args.no_verify)
    except (ValueError, FileNotFoundError, RuntimeError, rp.pickle.UnpicklingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} and {cfg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
