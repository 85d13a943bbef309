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

# --- files: meshes, images, JSON configs (filled in with pixel3dmm/io/mesh.h, image.h, config.h) ---
_FILE_NAMES = []

__all__ = _TENSOR_NAMES + _FILE_NAMES
