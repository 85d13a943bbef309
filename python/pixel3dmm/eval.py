"""The reconstruction benchmark (NeRSemble protocol): nearest neighbours, surface metrics, alignment, the runner.

Metric inputs are in metres; Chamfer distances come back in millimetres (``chamfer_l1``: mean of both
directions), ``r25`` is the share of ground-truth points within 2.5 mm. ``score_mesh`` aligns a FLAME-topology
prediction to the truth from the 7 NoW landmarks + ICP over the face region, as ``pixel3dmm eval`` does.
``make_synthetic_benchmark`` + ``run_benchmark`` reproduce ``pixel3dmm eval synth`` / ``eval run``. See
docs/benchmark.md.
"""
from ._C.eval import (  # noqa: F401
    KdTree,
    Similarity,
    aligned_vertex_error,
    chamfer,
    compare_surfaces,
    face_region_vertices,
    icp,
    make_synthetic_benchmark,
    nearest_neighbors,
    nearest_neighbors_brute_force,
    non_eyeball_vertices,
    now_landmarks,
    run_benchmark,
    sample_surface,
    score_benchmark,
    score_mesh,
    surface_distance,
    umeyama,
)

__all__ = [
    "KdTree",
    "Similarity",
    "aligned_vertex_error",
    "chamfer",
    "compare_surfaces",
    "face_region_vertices",
    "icp",
    "make_synthetic_benchmark",
    "nearest_neighbors",
    "nearest_neighbors_brute_force",
    "non_eyeball_vertices",
    "now_landmarks",
    "run_benchmark",
    "sample_surface",
    "score_benchmark",
    "score_mesh",
    "surface_distance",
    "umeyama",
]
