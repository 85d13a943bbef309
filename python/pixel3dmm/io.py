"""File formats: safetensors, .npy/.npz, meshes (PLY/OBJ), images, JSON configs.

Every reader raises FileNotFoundError for a missing file and ValueError (naming the file, key and expected vs
found) for a corrupt one; every writer writes atomically (temporary file + rename).
"""
from ._C import io as _io  # noqa: F401

# --- tensors: safetensors, .npy, .npz (pixel3dmm/io/safetensors.h, npy.h; see docs/tensor-files.md) ---
import os as _os

import numpy as _np
import torch as _torch


def _as_tensor(value, what):
    """A torch.Tensor as is; a NumPy array (or scalar) as a CPU tensor sharing or copying its data."""
    if isinstance(value, _torch.Tensor):
        return value
    if isinstance(value, (_np.ndarray, _np.generic)):
        array = _np.asarray(value)
        # torch has no uint16/uint32: widen losslessly, as the .npy reader does.
        if array.dtype.kind == "u" and array.dtype.itemsize in (2, 4):
            array = array.astype(_np.int32 if array.dtype.itemsize == 2 else _np.int64)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if not array.flags.c_contiguous or not array.flags.writeable:
            array = array.copy(order="C")
        try:
            return _torch.from_numpy(array)
        except TypeError as e:
            raise TypeError(f"{what}: NumPy dtype {array.dtype} has no torch equivalent ({e})") from None
    raise TypeError(f"{what}: expected a torch.Tensor or numpy.ndarray, found {type(value).__name__}")


def _as_tensor_dict(values, what):
    if not isinstance(values, dict):
        raise TypeError(f"{what}: expected a dict of name -> tensor, found {type(values).__name__}")
    return {str(k): _as_tensor(v, f"{what}: '{k}'") for k, v in values.items()}


def load_safetensors(path):
    """Reads a safetensors file -> dict[str, torch.Tensor] (CPU, shapes and dtypes as stored).

    Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. Raises FileNotFoundError, or ValueError naming
    the file, the tensor and expected vs found for a corrupt file. The metadata: load_safetensors_metadata.
    """
    return _io.read_safetensors(_os.fspath(path))[0]


def load_safetensors_metadata(path):
    """The ``__metadata__`` dict[str, str] of a safetensors file, reading only its (validated) header."""
    return _io.read_safetensors_metadata(_os.fspath(path))


def save_safetensors(path, tensors, metadata=None):
    """Writes dict[str, torch.Tensor | numpy.ndarray] (+ optional dict[str, str] metadata), atomically.

    Any shape, device or layout; float64/32/16, bfloat16, int64/32/16/8, uint8, bool (NumPy uint16/uint32 are
    widened to int32/int64). The header keys are sorted and the data 8-byte aligned.
    """
    _io.write_safetensors(_os.fspath(path), _as_tensor_dict(tensors, "save_safetensors"),
                          None if metadata is None else {str(k): str(v) for k, v in metadata.items()})


def load_npy(path):
    """Reads a .npy file -> torch.Tensor of its shape, C-contiguous whatever the file's order or byte order.

    dtypes: f8 f4 f2 i8 i4 i2 i1 u1 b1, plus u2/u4 widened to int32/int64. Object arrays, structured dtypes and
    uint64 raise ValueError naming the file and the descr.
    """
    return _io.read_npy(_os.fspath(path))


def save_npy(path, array):
    """Writes a torch.Tensor or numpy.ndarray as a .npy file (version 1.0, C order, little endian), atomically."""
    _io.write_npy(_os.fspath(path), _as_tensor(array, "save_npy"))


def load_npz(path):
    """Reads every array of an .npz archive (np.savez / np.savez_compressed) -> dict[str, torch.Tensor]."""
    return _io.read_npz(_os.fspath(path))


def save_npz(path, arrays, compress=True):
    """Writes dict[str, torch.Tensor | numpy.ndarray] as an .npz that np.load reads, atomically.

    ``compress=True`` deflates each member like np.savez_compressed; False stores them like np.savez.
    """
    _io.write_npz(_os.fspath(path), _as_tensor_dict(arrays, "save_npz"), bool(compress))


_TENSOR_NAMES = [
    "load_safetensors",
    "load_safetensors_metadata",
    "save_safetensors",
    "load_npy",
    "save_npy",
    "load_npz",
    "save_npz",
]

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
