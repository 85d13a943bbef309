"""Training data: datasets registered to the FLAME topology and the synthetic dataset generator.

``Dataset(manifest)`` reads a JSON-lines manifest (docs/datasets.md); ``dataset[i]`` is a dict of float32 tensors
``{'id', 'image' 3 x H x W, 'uv' 2 x H x W, 'normals' 3 x H x W, 'mask' 1 x H x W}`` (mesh samples are rendered).
``check_dataset(manifest)`` lists every problem instead of stopping at the first. ``write_synthetic_dataset``
writes photo-like renders of random heads with their exact targets; ``render_synthetic_photo`` makes one.
``Trainer(recipe, run_dir)`` trains a network from a recipe (docs/training.md), with exact resume.
"""
from ._C.train import (  # noqa: F401
    Dataset,
    DatasetProblem,
    Trainer,
    check_dataset,
    latest_checkpoint,
    learning_rate_factor,
    list_checkpoints,
    render_synthetic_photo,
    synthetic_albedo,
    write_synthetic_dataset,
)

__all__ = [
    "Dataset",
    "DatasetProblem",
    "Trainer",
    "check_dataset",
    "latest_checkpoint",
    "learning_rate_factor",
    "list_checkpoints",
    "render_synthetic_photo",
    "synthetic_albedo",
    "write_synthetic_dataset",
]
