"""Video tracking: an online stage frame by frame, then a global stage over all frames (one identity and camera,
temporal smoothness), resumable from a state folder.

    tracker = pixel3dmm.Tracker(flame, config={"global": {"iters": 500}})
    result = tracker.track(frames, state="out/state", on_progress=print)   # frames: list of fit.FitTarget
    result.vertices                          # N x 5023 x 3 world-space meshes
    tracker.write("out", result, frames)     # sequence.safetensors, frames/, overlay.mp4, loss.png

See docs/tracking.md.
"""
from ._C.track import (  # noqa: F401
    TrackResult,
    Tracker,
    default_config,
    synthetic_video,
    vertex_jitter,
)

__all__ = ["TrackResult", "Tracker", "default_config", "synthetic_video", "vertex_jitter"]
