"""Converts the official preprocessing's weight files into pixel3dmm's format (safetensors).

    /usr/bin/python3 -m pixel3dmm.convert_preprocessing faceboxes FaceBoxesV2.pth [-o faceboxes.safetensors]
    /usr/bin/python3 -m pixel3dmm.convert_preprocessing pipnet epoch59.pth --meanface meanface.txt [-o pipnet.safetensors]
    /usr/bin/python3 -m pixel3dmm.convert_preprocessing retinaface mobilenet0.25_Final.pth [-o retinaface.safetensors]

``faceboxes``: PIPNet's ``FaceBoxesV2/weights/FaceBoxesV2.pth`` (a legacy, non-zip ``torch.save`` of a state dict
whose keys carry the ``module.`` prefix of ``nn.DataParallel``) -> ``FaceBoxesV2.safetensors`` with the prefix
removed, floats as float32, metadata ``format = pixel3dmm-faceboxes``. The file is read with pixel3dmm's restricted
unpickler (tensors and an OrderedDict only; any other global is refused by name), checked key by key against the
network (every missing, unexpected or mis-shaped tensor is named), then loaded with the C++ loader; if anything
fails, nothing is left behind.

``pipnet``: the PIPNet snapshot ``epoch59.pth`` of ``pip_32_16_60_r18_l2_l1_10_1_nb10`` (PIPNet's
``snapshots/WFLW/pip_32_16_60_r18_l2_l1_10_1_nb10/``; a ``torch.save`` of ``Pip_resnet18``'s state dict, torchvision
ResNet-18 names plus the five heads) and PIPNet's ``data/WFLW/meanface.txt`` (its first line: 196 numbers, the 98
(x, y) points of the WFLW mean face, from which the decoding's neighbour lists are built) -> one
``.safetensors`` with the tensors under their official names and metadata ``format = pixel3dmm-pipnet``,
``meanface`` (the 196 numbers, each written as Python's ``repr`` of the value read, so the C++ loader reads back the
same doubles) and ``meanface_source`` / ``source`` (the two file names). Same unpickler, checks and clean-up as above.

``retinaface``: facer's ``retinaface/mobilenet`` weights ``mobilenet0.25_Final.pth`` (release 0.0.1 of
elliottzheng/face-detection) -> ``mobilenet0.25_Final.safetensors``, the same way (a ``state_dict`` entry unwrapped
and the ``module.`` prefix removed as facer does; then every tensor of RetinaFace(cfg_mnet) required, where facer
loads with ``strict=False``), metadata ``format = pixel3dmm-retinaface``.
"""
import argparse
import math
import os
import sys
from typing import Dict, List, Optional

import torch

from . import restricted_pickle as rp
from .convert_checkpoint import _TORCH_GLOBALS, _save_safetensors, _torch_load

__all__ = ["load_state_dict", "faceboxes_shapes", "convert_faceboxes", "pipnet_shapes", "read_meanface",
           "convert_pipnet", "retinaface_shapes", "convert_retinaface", "main"]

FACEBOXES_FORMAT = "pixel3dmm-faceboxes"
PIPNET_FORMAT = "pixel3dmm-pipnet"
RETINAFACE_FORMAT = "pixel3dmm-retinaface"


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """A torch.save'd state dict (legacy or zip format) as name -> tensor, read with the restricted unpickler."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: weight file not found")
    try:
        sd = _torch_load(path, rp.pickle_module(_TORCH_GLOBALS, path))
    except rp.RefusedGlobal:
        raise
    except Exception as e:  # truncated or corrupt files surface as many exception types
        raise ValueError(f"{path}: not a readable PyTorch weight file ({type(e).__name__}: {e})") from e
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), found {type(sd).__name__}")
    bad = [str(k) for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: state dict entries that are not tensors: {', '.join(bad[:10])}")
    return dict(sd)


def _conv_bn(prefix: str, cin: int, cout: int, k: int) -> Dict[str, tuple]:
    return {f"{prefix}.conv.weight": (cout, cin, k, k), **{f"{prefix}.bn.{n}": (cout,) for n in
                                                             ("weight", "bias", "running_mean", "running_var")},
            f"{prefix}.bn.num_batches_tracked": ()}


def faceboxes_shapes() -> Dict[str, tuple]:
    """The 192 tensors of FaceBoxesV2(phase='test', num_classes=2), without the ``module.`` prefix."""
    s: Dict[str, tuple] = {}
    for i, (cin, cout) in enumerate([(3, 8), (8, 16), (16, 32), (32, 64), (64, 128)], 1):
        s.update(_conv_bn(f"conv{i}", cin, cout, 3))
    for b in (1, 2, 3):
        p = f"inception{b}"
        for name, cin, cout, k in [("branch1x1", 128, 32, 1), ("branch1x1_2", 128, 32, 1),
                                   ("branch3x3_reduce", 128, 24, 1), ("branch3x3", 24, 32, 3),
                                   ("branch3x3_reduce_2", 128, 24, 1), ("branch3x3_2", 24, 32, 3),
                                   ("branch3x3_3", 32, 32, 3)]:
            s.update(_conv_bn(f"{p}.{name}", cin, cout, k))
    s.update(_conv_bn("conv6_1", 128, 128, 1))
    s.update(_conv_bn("conv6_2", 128, 256, 3))
    s.update(_conv_bn("conv7_1", 256, 128, 1))
    s.update(_conv_bn("conv7_2", 128, 256, 3))
    for i, (cin, anchors) in enumerate([(128, 21), (256, 1), (256, 1)]):
        s[f"loc.{i}.weight"], s[f"loc.{i}.bias"] = (anchors * 4, cin, 3, 3), (anchors * 4,)
        s[f"conf.{i}.weight"], s[f"conf.{i}.bias"] = (anchors * 2, cin, 3, 3), (anchors * 2,)
    return s


def _bn(prefix: str, c: int) -> Dict[str, tuple]:
    return {**{f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")},
            f"{prefix}.num_batches_tracked": ()}


def pipnet_shapes(num_lms: int = 98, num_nb: int = 10) -> Dict[str, tuple]:
    """The tensors of Pip_resnet18 (net_stride 32): torchvision's ResNet-18 without fc, and the five 1x1 heads."""
    s: Dict[str, tuple] = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    cin = 64
    for layer, cout in enumerate((64, 128, 256, 512), 1):
        for block in (0, 1):
            p = f"layer{layer}.{block}"
            s[f"{p}.conv1.weight"] = (cout, cin if block == 0 else cout, 3, 3)
            s.update(_bn(f"{p}.bn1", cout))
            s[f"{p}.conv2.weight"] = (cout, cout, 3, 3)
            s.update(_bn(f"{p}.bn2", cout))
            if block == 0 and cin != cout:
                s[f"{p}.downsample.0.weight"] = (cout, cin, 1, 1)
                s.update(_bn(f"{p}.downsample.1", cout))
        cin = cout
    for head, n in (("cls", num_lms), ("x", num_lms), ("y", num_lms), ("nb_x", num_lms * num_nb),
                    ("nb_y", num_lms * num_nb)):
        s[f"{head}_layer.weight"], s[f"{head}_layer.bias"] = (n, 512, 1, 1), (n,)
    return s


def read_meanface(path: str, num_lms: int = 98) -> List[float]:
    """PIPNet's meanface.txt: the numbers on its first line, as get_meanface reads them (num_lms (x, y) pairs)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: mean-face file not found (PIPNet's data/WFLW/meanface.txt)")
    try:
        with open(path, encoding="ascii") as f:
            first = f.readline()
        values = [float(x) for x in first.strip().split()]
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: not a PIPNet mean-face file ({e})") from e
    if len(values) != 2 * num_lms:
        raise ValueError(f"{path}: expected {2 * num_lms} numbers ({num_lms} WFLW points) on the first line, "
                         f"found {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{path}: the mean face holds non-finite numbers")
    return values


def retinaface_shapes() -> Dict[str, tuple]:
    """The tensors of facer's RetinaFace(cfg_mnet, phase='test'), without the ``module.`` prefix. Sequential
    indices: conv 0, BN 1 (conv_bn, conv_bn1X1, conv_bn_no_relu); conv_dw: 0, 1 and 3, 4."""
    s: Dict[str, tuple] = {}

    def conv_bn(prefix, cin, cout, k=3):
        s[f"{prefix}.0.weight"] = (cout, cin, k, k)
        s.update(_bn(f"{prefix}.1", cout))

    def conv_dw(prefix, cin, cout):
        s[f"{prefix}.0.weight"] = (cin, 1, 3, 3)
        s.update(_bn(f"{prefix}.1", cin))
        s[f"{prefix}.3.weight"] = (cout, cin, 1, 1)
        s.update(_bn(f"{prefix}.4", cout))

    conv_bn("body.stage1.0", 3, 8)
    for i, (cin, cout) in enumerate([(8, 16), (16, 32), (32, 32), (32, 64), (64, 64)], 1):
        conv_dw(f"body.stage1.{i}", cin, cout)
    for i, cin in enumerate([64, 128, 128, 128, 128, 128]):
        conv_dw(f"body.stage2.{i}", cin, 128)
    conv_dw("body.stage3.0", 128, 256)
    conv_dw("body.stage3.1", 256, 256)
    for i, cin in enumerate([64, 128, 256], 1):
        conv_bn(f"fpn.output{i}", cin, 64, 1)
    conv_bn("fpn.merge1", 64, 64)
    conv_bn("fpn.merge2", 64, 64)
    for k in (1, 2, 3):
        conv_bn(f"ssh{k}.conv3X3", 64, 32)
        conv_bn(f"ssh{k}.conv5X5_1", 64, 16)
        for name in ("conv5X5_2", "conv7X7_2", "conv7x7_3"):
            conv_bn(f"ssh{k}.{name}", 16, 16)
    for head, values in (("ClassHead", 2), ("BboxHead", 4), ("LandmarkHead", 10)):
        for i in range(3):
            s[f"{head}.{i}.conv1x1.weight"] = (2 * values, 64, 1, 1)
            s[f"{head}.{i}.conv1x1.bias"] = (2 * values,)
    return s


def _check_against(sd: Dict[str, torch.Tensor], shapes: Dict[str, tuple], source: str, optional_suffix: str,
                   network: str = "FaceBoxesV2") -> None:
    missing = [k for k in shapes if k not in sd and not k.endswith(optional_suffix)]
    unexpected = [k for k in sd if k not in shapes]
    misshaped = [f"{k} (expected {list(shapes[k])}, found {list(sd[k].shape)})" for k in shapes
                 if k in sd and tuple(sd[k].shape) != shapes[k]]
    if missing or unexpected or misshaped:
        parts = [f"{len(v)} {what}: {', '.join(v)}" for what, v in
                 (("missing", missing), ("unexpected", unexpected), ("with the wrong shape", misshaped)) if v]
        raise ValueError(f"{source}: not the {network} state dict; " + "; ".join(parts))


def _strip_module_prefix(sd: Dict[str, torch.Tensor], weights: str) -> Dict[str, torch.Tensor]:
    """A DataParallel snapshot's ``module.`` prefix removed (all keys or none may carry it)."""
    prefixed = [k for k in sd if k.startswith("module.")]
    if prefixed and len(prefixed) != len(sd):
        odd = [k for k in sd if not k.startswith("module.")]
        raise ValueError(f"{weights}: some keys carry the 'module.' prefix and some do not (e.g. '{odd[0]}')")
    return {k[len("module."):]: v for k, v in sd.items()} if prefixed else sd


def _write_checked(sd: Dict[str, torch.Tensor], weights: str, output: str, metadata: Dict[str, str], loader: str,
                   verify: bool) -> str:
    """float32 contiguous tensors (non-finite ones refused), written atomically with ``metadata``; then, with
    ``verify``, loaded once by the C++ ``loader`` (a class of pixel3dmm._C.preprocess), the file removed if that
    fails. Returns ``output``."""
    tensors = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    nonfinite = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if nonfinite:
        raise ValueError(f"{weights}: tensors with non-finite values: {', '.join(nonfinite)}")
    _save_safetensors(output, tensors, metadata)
    if verify:
        try:
            from ._C import preprocess as _pp
            getattr(_pp, loader)(output)
        except BaseException:
            if os.path.exists(output):
                os.unlink(output)
            raise
    return output


def convert_faceboxes(weights: str, output: Optional[str] = None, verify: bool = True) -> str:
    """FaceBoxesV2.pth -> .safetensors (default: beside it); returns the path written."""
    output = output or os.path.splitext(weights)[0] + ".safetensors"
    sd = _strip_module_prefix(load_state_dict(weights), weights)
    _check_against(sd, faceboxes_shapes(), weights, ".num_batches_tracked")
    return _write_checked(sd, weights, output, {"format": FACEBOXES_FORMAT, "source": os.path.basename(weights)},
                          "FaceBoxesDetector", verify)


def convert_pipnet(weights: str, meanface: str, output: Optional[str] = None, verify: bool = True) -> str:
    """epoch59.pth + meanface.txt -> .safetensors (default: beside the weights); returns the path written."""
    output = output or os.path.splitext(weights)[0] + ".safetensors"
    values = read_meanface(meanface)
    sd = _strip_module_prefix(load_state_dict(weights), weights)
    _check_against(sd, pipnet_shapes(), weights, ".num_batches_tracked", "PIPNet ResNet-18 (98 landmarks, 10 "
                   "neighbours)")
    return _write_checked(sd, weights, output,
                          {"format": PIPNET_FORMAT, "source": os.path.basename(weights),
                           "meanface": " ".join(repr(v) for v in values),
                           "meanface_source": os.path.basename(meanface)}, "PipNetDetector", verify)


def convert_retinaface(weights: str, output: Optional[str] = None, verify: bool = True) -> str:
    """mobilenet0.25_Final.pth -> .safetensors (default: beside it); returns the path written."""
    output = output or os.path.splitext(weights)[0] + ".safetensors"
    sd = _strip_module_prefix(load_state_dict(weights), weights)  # facer, too, unwraps a 'state_dict' entry
    _check_against(sd, retinaface_shapes(), weights, ".num_batches_tracked", "RetinaFace mobilenet0.25")
    return _write_checked(sd, weights, output, {"format": RETINAFACE_FORMAT, "source": os.path.basename(weights)},
                          "RetinaFaceDetector", verify)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pixel3dmm.convert_preprocessing",
                                 description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    fb = sub.add_parser("faceboxes", help="PIPNet's FaceBoxesV2/weights/FaceBoxesV2.pth")
    fb.add_argument("weights", help="FaceBoxesV2.pth")
    fb.add_argument("-o", "--output", help="file to write (default: <weights>.safetensors)")
    fb.add_argument("--no-verify", action="store_true", help="skip loading the result with the C++ loader")
    pn = sub.add_parser("pipnet", help="PIPNet's epoch59.pth of pip_32_16_60_r18_l2_l1_10_1_nb10 (+ meanface.txt)")
    pn.add_argument("weights", help="epoch59.pth")
    pn.add_argument("--meanface", required=True, help="PIPNet's data/WFLW/meanface.txt (stored in the output)")
    pn.add_argument("-o", "--output", help="file to write (default: <weights>.safetensors)")
    pn.add_argument("--no-verify", action="store_true", help="skip loading the result with the C++ loader")
    rf = sub.add_parser("retinaface", help="facer's retinaface/mobilenet weights, mobilenet0.25_Final.pth")
    rf.add_argument("weights", help="mobilenet0.25_Final.pth")
    rf.add_argument("-o", "--output", help="file to write (default: <weights>.safetensors)")
    rf.add_argument("--no-verify", action="store_true", help="skip loading the result with the C++ loader")
    args = ap.parse_args(argv)
    convert = convert_retinaface if args.what == "retinaface" else convert_faceboxes
    try:
        if args.what == "pipnet":
            out = convert_pipnet(args.weights, args.meanface, args.output, verify=not args.no_verify)
        else:
            out = convert(args.weights, args.output, verify=not args.no_verify)
    except (ValueError, FileNotFoundError, RuntimeError, rp.pickle.UnpicklingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
