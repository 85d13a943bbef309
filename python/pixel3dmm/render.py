"""Differentiable rendering on the CPU: the camera convention, the rasteriser ops and the mesh renderer.

Ops (nvdiffrast's surface, channels-last images): ``rasterize`` (not differentiable) -> ``interpolate``
(gradients to attributes and clip positions) -> ``antialias`` (silhouette gradients). ``MeshRenderer`` renders UV,
normal, mask, depth and region images (NCHW) of a FLAME-topology mesh under a ``Camera`` (the official Pixel3DMM
convention; see docs/rendering.md).
"""
from ._C.render import (  # noqa: F401
    Camera,
    MeshRenderer,
    RasterOutput,
    RenderOutput,
    TriangleMesh,
    antialias,
    edge_topology,
    interpolate,
    rasterize,
    uv_sphere,
    vertex_normals,
    vertex_visibility,
)

__all__ = [
    "Camera",
    "MeshRenderer",
    "RasterOutput",
    "RenderOutput",
    "TriangleMesh",
    "antialias",
    "edge_topology",
    "interpolate",
    "rasterize",
    "uv_sphere",
    "vertex_normals",
    "vertex_visibility",
]
