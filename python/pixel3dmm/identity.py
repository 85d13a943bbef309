"""MICA identity codes: a face image and its five keypoints -> the 300 FLAME shape coefficients that the official
preprocessing writes as ``mica/<frame>/identity.npy`` (official-preprocessing.md section 6; docs/identity.md).

    mica = pixel3dmm.identity.load_mica("mica.safetensors")     # python -m pixel3dmm.convert_mica mica.tar
    code = pixel3dmm.identity.identity_code(mica, "crop.png", keypoints)   # torch (300,) float32
    pixel3dmm.identity.save_identity("identity.npy", code)

Keypoints (5 x 2, image pixels): image-left eye, image-right eye, nose tip, image-left and image-right mouth
corners, as SCRFD returns them. This package does not detect them yet: bring them from any five-point detector,
or pass an image that is already an aligned 112 x 112 ArcFace crop and no keypoints.
"""
import os as _os
from typing import Optional, Sequence

import numpy as _np
import torch as _torch

from ._C import identity as _identity
from . import io as _io

Mica = _identity.Mica
load_mica = _identity.load_mica
save_mica = _identity.save_mica
mica_from_state_dict = _identity.mica_from_state_dict
arcface_template = _identity.arcface_template
arcface_similarity = _identity.arcface_similarity
warp_arcface_crop = _identity.warp_arcface_crop
arcface_blob = _identity.arcface_blob

__all__ = ["Mica", "load_mica", "save_mica", "mica_from_state_dict", "arcface_template", "arcface_similarity",
           "warp_arcface_crop", "arcface_blob", "as_uint8_rgb", "arcface_input", "identity_code",
           "frames_for_identity", "mean_identity", "save_identity"]


def as_uint8_rgb(image) -> _torch.Tensor:
    """An image as an H x W x 3 uint8 RGB tensor: a path (read by pixel3dmm.io.load_image), an H x W x 3 uint8
    array or tensor (RGB), or a float 1 x 3 x H x W / 3 x H x W tensor in [0, 1] (load_image's layout)."""
    if isinstance(image, (str, bytes, _os.PathLike)):
        image = _io.load_image(image)
    t = image if isinstance(image, _torch.Tensor) else _torch.as_tensor(_np.asarray(image))
    if t.dtype == _torch.uint8:
        if t.dim() != 3 or t.shape[2] != 3:
            raise ValueError(f"image: expected H x W x 3 uint8 (RGB), found {tuple(t.shape)}")
        return t.contiguous()
    if not t.is_floating_point():
        raise ValueError(f"image: expected uint8 or a float image in [0, 1], found {t.dtype}")
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"image: expected a float 1 x 3 x H x W or 3 x H x W tensor in [0, 1], found {tuple(t.shape)}")
    if not bool(_torch.isfinite(t).all()):
        raise ValueError("image: non-finite values")
    return (t.clamp(0, 1) * 255).round().to(_torch.uint8).permute(1, 2, 0).contiguous()


def arcface_input(image, keypoints=None) -> _torch.Tensor:
    """image (see as_uint8_rgb) and 5 x 2 keypoints -> the 3 x 112 x 112 float32 blob MICA reads. Without
    keypoints the image must already be an aligned 112 x 112 ArcFace crop."""
    rgb = as_uint8_rgb(image)
    if keypoints is None:
        if tuple(rgb.shape[:2]) != (112, 112):
            raise ValueError(f"image: without keypoints an aligned 112 x 112 ArcFace crop is expected, found "
                             f"{rgb.shape[0]} x {rgb.shape[1]}")
        return arcface_blob(rgb)
    kps = _torch.as_tensor(_np.asarray(keypoints, dtype=_np.float32))
    return _identity.arcface_input(rgb, kps)


def identity_code(mica: Mica, image, keypoints=None) -> _torch.Tensor:
    """One image (see as_uint8_rgb) and its 5 x 2 keypoints, or an aligned 112 x 112 crop and None
    -> its (300,) float32 identity code (MICA's pred_shape_code)."""
    rgb = as_uint8_rgb(image)
    kps = None if keypoints is None else _torch.as_tensor(_np.asarray(keypoints, dtype=_np.float32))
    return _identity.identity_code(mica, rgb, kps)


def frames_for_identity(n: int) -> Sequence[int]:
    """The official frame choice (MICA demo as installed by pixel3dmm): every max(1, n // 10)-th of n sorted
    frames, starting at the first."""
    return list(_identity.identity_frames(n))


def mean_identity(mica: Mica, images: Sequence, keypoints: Optional[Sequence] = None) -> _torch.Tensor:
    """Several frames (sorted) -> the float32 mean of the codes of frames_for_identity(len(images)), summed in
    frame order as the official tracker averages the identity.npy files."""
    if len(images) == 0:
        raise ValueError("mean_identity: no images")
    if keypoints is not None and len(keypoints) != len(images):
        raise ValueError(f"mean_identity: {len(images)} images but {len(keypoints)} keypoint sets")
    frames = frames_for_identity(len(images))
    total = None
    for i in frames:
        code = identity_code(mica, images[i], None if keypoints is None else keypoints[i])
        total = code if total is None else total + code
    return total / len(frames)


def save_identity(path, code) -> None:
    """Writes a (300,) float32 code as the official ``identity.npy`` (atomically)."""
    t = _torch.as_tensor(code).detach().to(_torch.float32).reshape(-1)
    _io.save_npy(path, t)
