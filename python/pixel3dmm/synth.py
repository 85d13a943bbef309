"""Synthetic ground truth in one place, as in C++'s ``pixel3dmm/synth/``: the FLAME-layout model, random parameters
and the maps a perfect network would predict, photo-like renders and training datasets, videos. The same functions
stay where they were (``pixel3dmm.flame.synthetic_flame``, ``pixel3dmm.fit.random_params`` and
``synthetic_target``, ``pixel3dmm.train.render_synthetic_photo``, ``synthetic_albedo`` and
``write_synthetic_dataset``, ``pixel3dmm.track.synthetic_video``); ``pixel3dmm.eval.make_synthetic_benchmark``
writes the synthetic benchmark.

    from pixel3dmm import fit, flame, synth
    fitter = fit.Fitter(flame.Flame(synth.synthetic_flame()))
    truth = synth.random_params(1, 300, 100, seed=0)
    scene = synth.synthetic_target(fitter, truth, size=256)
"""
from ._C.fit import random_params, synthetic_target  # noqa: F401
from ._C.flame import synthetic_flame  # noqa: F401
from ._C.track import synthetic_video  # noqa: F401
from ._C.train import render_synthetic_photo, synthetic_albedo, write_synthetic_dataset  # noqa: F401

__all__ = [
    "random_params",
    "render_synthetic_photo",
    "synthetic_albedo",
    "synthetic_flame",
    "synthetic_target",
    "synthetic_video",
    "write_synthetic_dataset",
]
