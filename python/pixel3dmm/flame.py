"""FLAME: the model file (``FlameModel``), the differentiable model (``Flame``), rotation helpers and the synthetic
FLAME-layout model. Conventions, parameters and the file layout: docs/flame.md.

Example::

    import torch, pixel3dmm
    model = pixel3dmm.flame.FlameModel.synthetic()        # or FlameModel.load("flame.npz")
    flame = pixel3dmm.flame.Flame(model, rotation="6d")   # float32, 300 identity + 100 expression
    out = flame(shape=torch.zeros(1, 300), jaw_pose=torch.tensor([[1., 0, 0, 0, 0.98, 0.2]]))
    out["vertices"].shape, out["landmarks"].shape         # (1, 5023, 3), (1, 68, 3)

To convert the official FLAME 2020 / 2023 files: ``python -m pixel3dmm.convert_flame --help``.
"""
from ._C import flame as _flame

FlameModel = _flame.FlameModel
Flame = _flame.Flame
synthetic_flame = _flame.synthetic_flame
lbs = _flame.lbs
axis_angle_to_matrix = _flame.axis_angle_to_matrix
matrix_to_axis_angle = _flame.matrix_to_axis_angle
rotation_6d_to_matrix = _flame.rotation_6d_to_matrix
matrix_to_rotation_6d = _flame.matrix_to_rotation_6d
axis_angle_to_rotation_6d = _flame.axis_angle_to_rotation_6d
rotation_6d_to_axis_angle = _flame.rotation_6d_to_axis_angle
matrix_to_quaternion = _flame.matrix_to_quaternion
quaternion_to_matrix = _flame.quaternion_to_matrix
rotation_yaw = _flame.rotation_yaw
dynamic_contour_bin = _flame.dynamic_contour_bin

__all__ = [
    "FlameModel",
    "Flame",
    "synthetic_flame",
    "lbs",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "axis_angle_to_rotation_6d",
    "rotation_6d_to_axis_angle",
    "matrix_to_quaternion",
    "quaternion_to_matrix",
    "rotation_yaw",
    "dynamic_contour_bin",
]
