"""pixel3dmm: single-image 3D face reconstruction (Pixel3DMM) with a C++/LibTorch core.

Functions take and return ``torch.Tensor``; NumPy arrays are accepted where noted.
"""
import os as _os
import sys as _sys

# libgomp reads its wait policy once, when torch loads it; its default spinning takes the cores from OpenBLAS's
# own threads (2-3x slower networks and training on small machines). Same default as the C++ programs
# (pixel3dmm/core/runtime.h), only when nothing is set and torch is not loaded yet: import pixel3dmm first.
if "torch" not in _sys.modules and not (_os.environ.get("GOMP_SPINCOUNT") or _os.environ.get("OMP_WAIT_POLICY")):
    _os.environ["GOMP_SPINCOUNT"] = "1000"

import torch  # noqa: F401,E402  (loads LibTorch before the extension that links it)

from . import _C  # noqa: E402
from ._C import __version__, runtime_info, set_num_threads, measure_gemm_gflops, blas_is_reference
from . import io
from . import flame
from . import nn
from . import predict
from . import render
from . import fit
from . import preprocess
from . import reconstruct
from . import train
from . import eval
from . import track
from . import identity
from . import synth

# The objects a notebook reaches for first, at the top level.
from .reconstruct import Reconstructor
from .predict import Predictor
from .fit import Fitter
from .flame import Flame, FlameModel
from .render import Camera, rasterize, interpolate
from .train import Dataset, Trainer, check_dataset
from .track import Tracker

_C.init_runtime()

__all__ = [
    "__version__",
    "runtime_info",
    "set_num_threads",
    "measure_gemm_gflops",
    "blas_is_reference",
    "io",
    "flame",
    "nn",
    "predict",
    "render",
    "fit",
    "preprocess",
    "reconstruct",
    "train",
    "eval",
    "track",
    "Reconstructor",
    "Predictor",
    "Fitter",
    "Flame",
    "FlameModel",
    "Camera",
    "rasterize",
    "interpolate",
    "Dataset",
    "Trainer",
    "check_dataset",
    "Tracker",
]
