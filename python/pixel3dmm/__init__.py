"""pixel3dmm: single-image 3D face reconstruction (Pixel3DMM) with a C++/LibTorch core.

Functions take and return ``torch.Tensor``; NumPy arrays are accepted where noted.
"""
import torch  # noqa: F401  (loads LibTorch before the extension that links it)

from . import _C
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
