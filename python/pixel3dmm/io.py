"""File formats: safetensors, .npy/.npz, meshes (PLY/OBJ), images, JSON configs.

Every reader raises FileNotFoundError for a missing file and ValueError (naming the file, key and expected vs
found) for a corrupt one; every writer writes atomically (temporary file + rename).
"""
from ._C import io as _io  # noqa: F401

# --- tensors: safetensors, .npy, .npz (filled in with pixel3dmm/io/safetensors.h, npy.h) ---
_TENSOR_NAMES = []

# --- files: meshes, images, JSON configs (pixel3dmm/io/mesh.h, image.h, config.h) ---
import os as _os

import numpy as _np
import torch as _torch

Mesh = _io.Mesh
max_image_pixels = _io.max_image_pixels
set_max_image_pixels = _io.set_max_image_pixels


def load_mesh(path) -> Mesh:
    """Reads a PLY (ascii or binary) or OBJ mesh.

    Returns a ``Mesh`` whose fields are tensors or None: ``vertices`` V x 3 float32, ``faces`` F x 3 int64
    (polygons fan-triangulated), ``normals`` V x 3, ``colors`` V x 3 in [0, 1], ``uvs`` T x 2 (v up, as in OBJ)
    and ``uv_faces`` F x 3 int64 (None when UVs are per vertex).
    """
    return _io.read_mesh(_os.fspath(path))


def save_mesh(path, mesh: Mesh = None, *, vertices=None, faces=None, normals=None, colors=None, uvs=None,
              uv_faces=None, binary: bool = True, texture_path: str = "") -> None:
    """Writes a mesh to ``.ply`` (binary unless ``binary=False``) or ``.obj`` (with ``<stem>.mtl`` naming
    ``texture_path`` when given), atomically.

    Pass a ``Mesh`` or the arrays as keywords (tensors or NumPy arrays; floats of any precision, integer faces).
    """
    path = _os.fspath(path)
    arrays = dict(vertices=vertices, faces=faces, normals=normals, colors=colors, uvs=uvs, uv_faces=uv_faces)
    given = {k: v for k, v in arrays.items() if v is not None}
    if mesh is None:
        if vertices is None:
            raise TypeError("save_mesh: pass a Mesh or at least vertices=")
        if faces is None:
            given["faces"] = _np.zeros((0, 3), dtype=_np.int64)  # a point cloud
        mesh = Mesh(**given)
    elif given:
        raise TypeError(f"save_mesh: pass either a Mesh or arrays, not both (got {sorted(given)})")
    ext = _os.path.splitext(path)[1].lower()
    if ext == ".ply":
        if texture_path:
            raise ValueError(f"{path}: texture_path is only written with .obj (PLY has no material)")
        _io.write_ply(path, mesh, binary=binary)
    elif ext == ".obj":
        _io.write_obj(path, mesh, texture_path=_os.fspath(texture_path))
    else:
        raise ValueError(f"{path}: unknown mesh extension '{ext}' (expected .ply or .obj)")


def load_image(path) -> _torch.Tensor:
    """Reads an image as a float32 1 x 3 x H x W RGB tensor in [0, 1] (EXR: values as stored).

    JPEG EXIF orientation is applied, gray is replicated to 3 channels, alpha is dropped.
    """
    return _io.read_image(_os.fspath(path))


def save_image(path, image, bit_depth: int = 8) -> None:
    """Writes a 1 x C x H x W, C x H x W or H x W image (C in 1, 3, 4; tensor or NumPy array), atomically.

    Floats are taken in [0, 1] and clamped (``.exr`` keeps them as they are); uint8 and uint16 arrays are scaled
    by 1/255 and 1/65535 first. ``bit_depth=16`` writes 16-bit PNG or TIFF.
    """
    if isinstance(image, _np.ndarray):
        if image.dtype == _np.uint8:
            image = image.astype(_np.float32) / 255.0
        elif image.dtype == _np.uint16:
            image = image.astype(_np.float32) / 65535.0
    elif isinstance(image, _torch.Tensor) and image.dtype == _torch.uint8:
        image = image.float() / 255.0
    _io.write_image(_os.fspath(path), image, bit_depth)


def load_config(path, overrides=()) -> dict:
    """Reads a JSON config (comments allowed) and applies ``"a.b=value"`` overrides; returns a dict."""
    return _io.apply_overrides(_io.read_json(_os.fspath(path)), list(overrides))


def save_config(path, config) -> None:
    """Writes a JSON-serialisable value (usually a dict) as pretty-printed JSON, atomically."""
    _io.write_json(_os.fspath(path), config)


def apply_overrides(config: dict, overrides) -> dict:
    """Returns a copy of ``config`` with ``"a.b.c=value"`` overrides applied in order; ``value`` is parsed as JSON
    when it is valid JSON (``800``, ``true``, ``[1, 2]``, ``"text"``) and kept as a string otherwise."""
    if isinstance(overrides, str):
        overrides = [overrides]
    return _io.apply_overrides(config, list(overrides))


_FILE_NAMES = ["Mesh", "load_mesh", "save_mesh", "load_image", "save_image", "load_config", "save_config",
               "apply_overrides", "max_image_pixels", "set_max_image_pixels"]

__all__ = _TENSOR_NAMES + _FILE_NAMES
