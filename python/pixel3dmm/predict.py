"""Face crop -> per-pixel UV coordinates and normals, as the official network inference (mirror averaging
included), plus the official PNG encodings.

    p = pixel3dmm.predict.Predictor(uv="uv.safetensors", normals="normals.safetensors")
    out = p.predict(rgb)          # rgb: B x 3 x H x W float32 in [0, 1]
    out["uv"], out["normals"]     # B x 2 x 512 x 512 in [0, 1] as (u, 1 - v); B x 3 x 512 x 512 unit vectors
"""
from typing import Dict, Optional

import torch

from ._C import predict as _predict
from .nn import Pixel3DMMNet, _cpp

uv_png = _predict.uv_png
normals_png = _predict.normals_png
side_by_side_png = _predict.side_by_side_png
write_png_rgb8 = _predict.write_png_rgb8
unmirror = _predict.unmirror
cpu_has_native_bf16 = _predict.cpu_has_native_bf16
Predictions = _predict.Predictions


class Predictor:
    """Runs the UV and / or normals network on crops with the official mirror test-time averaging.

    Give converted weight paths (``uv=``, ``normals=``) or networks (``uv_net=``, ``normals_net=``); either kind
    may be left out. ``mirror=False`` skips the averaging; ``batch_mirror`` runs image and mirror as one batch.
    ``precision="bf16"`` runs bfloat16 copies of the networks (about 2x faster on a CPU with native bfloat16,
    ``cpu_has_native_bf16()``; refused with a ValueError elsewhere); the outputs stay float32.
    """

    def __init__(self, uv: Optional[str] = None, normals: Optional[str] = None, *,
                 uv_net: Optional[Pixel3DMMNet] = None, normals_net: Optional[Pixel3DMMNet] = None,
                 mirror: bool = True, batch_mirror: bool = True, precision: str = "float32"):
        if uv_net is not None or normals_net is not None:
            if uv or normals:
                raise ValueError("Predictor: give weight paths or networks, not both")
            self._p = _predict.Predictor(None if uv_net is None else _cpp(uv_net),
                                         None if normals_net is None else _cpp(normals_net),
                                         mirror=mirror, batch_mirror=batch_mirror, precision=precision)
        else:
            self._p = _predict.Predictor(uv or "", normals or "", mirror=mirror, batch_mirror=batch_mirror,
                                         precision=precision)

    def predict(self, rgb: torch.Tensor) -> Dict[str, torch.Tensor]:
        """rgb: B x 3 x H x W float32 in [0, 1] -> {'uv', 'uv_raw', 'normals', 'normals_raw'} (those available)."""
        return self._p.predict(rgb)

    def prepare(self, rgb: torch.Tensor) -> torch.Tensor:
        """The network input (Pillow-exact bicubic resize to image_size)."""
        return self._p.prepare(rgb)

    @property
    def image_size(self) -> int:
        return self._p.image_size

    @property
    def precision(self) -> str:
        """'float32' or 'bf16'."""
        return self._p.precision

    def __repr__(self) -> str:
        return repr(self._p)


def demo_predictor() -> Predictor:
    """A Predictor with the demo networks embedded in the library (training/README.md): they predict the synthetic
    FLAME-layout model's maps from synthetic photos and know nothing of real faces. Mirror averaging is off (the
    official un-flip rule assumes the real FLAME UV layout)."""
    return Predictor(uv_net=_predict.demo_network("uv_map"), normals_net=_predict.demo_network("normals"),
                     mirror=False)


__all__ = ["Predictor", "demo_predictor", "Predictions", "uv_png", "normals_png", "side_by_side_png", "write_png_rgb8", "unmirror"]
