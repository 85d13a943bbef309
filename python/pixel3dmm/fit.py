"""Fitting FLAME and the camera to per-pixel UV and normal maps (the official Pixel3DMM tracker's single-image path).

``Fitter(flame, config)`` with ``config`` a dict of any keys of ``configs/fit.json`` (``default_config()`` gives
them all); ``Fitter.fit(FitTarget(...))`` returns a ``FitResult``; ``write_outputs`` writes meshes, parameters and
pictures. ``random_params`` + ``synthetic_target`` make ground truth to test on. See docs/fitting.md.
"""
from ._C.fit import (  # noqa: F401
    FitParams,
    FitResult,
    FitTarget,
    Fitter,
    default_config,
    maps_image,
    overlay_image,
    random_params,
    synthetic_target,
    write_outputs,
)
# The vertex-error measures live in pixel3dmm.eval; their names stay here for code written against pixel3dmm.fit.
from ._C.eval import aligned_vertex_error, face_region_vertices, non_eyeball_vertices  # noqa: F401

__all__ = [
    "FitParams",
    "FitResult",
    "FitTarget",
    "Fitter",
    "aligned_vertex_error",
    "default_config",
    "face_region_vertices",
    "maps_image",
    "non_eyeball_vertices",
    "overlay_image",
    "random_params",
    "synthetic_target",
    "write_outputs",
]
