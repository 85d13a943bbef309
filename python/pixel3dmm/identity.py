"""MICA identity codes: a face image and its five keypoints -> the 300 FLAME shape coefficients that the official
preprocessing writes as ``mica/<frame>/identity.npy`` (official-preprocessing.md section 6; docs/identity.md).

    mica = pixel3dmm.identity.load_mica("mica.safetensors")     # python -m pixel3dmm.convert_mica mica.tar
    code = pixel3dmm.identity.identity_code(mica, "crop.png", keypoints)   # torch (300,) float32
    pixel3dmm.identity.save_identity("identity.npy", code)

Keypoints (5 x 2, image pixels): image-left eye, image-right eye, nose tip, image-left and image-right mouth
corners, as SCRFD returns them: from insightface's SCRFD-10G (``ScrfdDetector("scrfd_10g_bnkps.onnx")`` and
``detect_five_keypoints``, the official detector, run by OpenCV's DNN module), from any five-point detector, or none
for an image that is already an aligned 112 x 112 ArcFace crop.

    detector = pixel3dmm.identity.ScrfdDetector("scrfd_10g_bnkps.onnx")   # antelopev2
    keypoints = pixel3dmm.identity.detect_five_keypoints(detector, "crop.png")   # 5 x 2, or None: no face
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
keypoints_from_landmarks68 = _identity.keypoints_from_landmarks68
IdentityPrior = _identity.IdentityPrior
ScrfdDetections = _identity.ScrfdDetections
centre_face = _identity.centre_face

__all__ = ["Mica", "load_mica", "save_mica", "mica_from_state_dict", "arcface_template", "arcface_similarity",
           "warp_arcface_crop", "arcface_blob", "as_uint8_rgb", "arcface_input", "identity_code",
           "frames_for_identity", "mean_identity", "save_identity", "ScrfdDetector", "ScrfdDetections",
           "scrfd_input", "decode_scrfd", "centre_face", "detect_five_keypoints", "keypoints_from_landmarks68",
           "IdentityPrior"]


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


class ScrfdDetector(_identity.ScrfdDetector):
    """insightface's SCRFD-10G five-point face detector (antelopev2 ``scrfd_10g_bnkps.onnx``) run by OpenCV's DNN
    module at the official 224 x 224 input. ``detect(image)`` takes any image as_uint8_rgb accepts and returns
    ScrfdDetections (boxes N x 4, scores N, keypoints N x 5 x 2, image pixels, NMS order); ``forward(blob)`` the
    nine raw outputs."""

    def detect(self, image, threshold: float = 0.5, nms_threshold: float = 0.4) -> ScrfdDetections:
        return super().detect(as_uint8_rgb(image), threshold, nms_threshold)


def scrfd_input(image, input_size: int = 224):
    """image (see as_uint8_rgb) -> (1 x 3 x S x S float32 blob, det_scale): the image resized into the top-left of
    a zero S x S canvas and normalised as insightface's RetinaFace.detect does (official-preprocessing.md 6.2)."""
    return _identity.scrfd_input(as_uint8_rgb(image), input_size)


def decode_scrfd(outputs, input_size: int, det_scale: float, threshold: float = 0.5,
                 nms_threshold: float = 0.4) -> ScrfdDetections:
    """SCRFD's nine raw outputs (arrays or tensors: scores, box and keypoint distances for strides 8, 16, 32) ->
    the kept detections in image pixels (anchor decode, score >= threshold, / det_scale, NMS; float32)."""
    tensors = [_torch.as_tensor(_np.asarray(o, dtype=_np.float32)) for o in outputs]
    return _identity.decode_scrfd(tensors, input_size, det_scale, threshold, nms_threshold)


def detect_five_keypoints(detector: ScrfdDetector, image) -> Optional[_torch.Tensor]:
    """image (see as_uint8_rgb) -> 5 x 2 float32 keypoints of the face nearest the image centre, or None when
    SCRFD finds no face (the official preprocessing then skips the frame)."""
    return _identity.detect_five_keypoints(detector, as_uint8_rgb(image))
