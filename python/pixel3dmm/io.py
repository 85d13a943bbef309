"""File formats: safetensors, .npy/.npz, meshes (PLY/OBJ), images, JSON configs.

Every reader raises FileNotFoundError for a missing file and ValueError (naming the file, key and expected vs
found) for a corrupt one; every writer writes atomically (temporary file + rename).
"""
from ._C import io as _io  # noqa: F401

# --- tensors: safetensors, .npy, .npz (filled in with pixel3dmm/io/safetensors.h, npy.h) ---
_TENSOR_NAMES = []

# --- files: meshes, images, JSON configs (filled in with pixel3dmm/io/mesh.h, image.h, config.h) ---
_FILE_NAMES = []

__all__ = _TENSOR_NAMES + _FILE_NAMES
