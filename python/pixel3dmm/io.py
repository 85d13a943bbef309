"""File formats: safetensors, .npy/.npz, meshes (PLY/OBJ), images, JSON configs."""
from ._C import io as _io  # noqa: F401

__all__ = []
