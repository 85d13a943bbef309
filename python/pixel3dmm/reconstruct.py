"""Photo -> mesh: preprocessing (dlib), the network's predictions and the FLAME fit in one object.

    rec = pixel3dmm.Reconstructor("flame.npz", uv_weights="uv.safetensors", normal_weights="normals.safetensors")
    r = rec.reconstruct("photo.jpg")            # or an image tensor / NumPy array
    r.result.vertices                          # 1 x 5023 x 3 world-space mesh
    rec.write("out/photo", r)                  # meshes, parameters, pictures, fit inputs, report.json

See docs/reconstruction.md.
"""
from ._C.reconstruct import (  # noqa: F401
    Reconstruction,
    Reconstructor,
    make_target,
    read_fit_inputs,
    write_fit_inputs,
)

__all__ = ["Reconstruction", "Reconstructor", "make_target", "read_fit_inputs", "write_fit_inputs"]
