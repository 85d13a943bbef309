"""Tiny random UV and normal networks (64 x 64 input, one block) saved as converted files: for tests of the photo
pipeline's plumbing, where the network's accuracy does not matter."""
import pathlib

import torch

from pixel3dmm import nn as pnn


def save_tiny_networks(folder) -> dict:
    """Writes folder/uv.safetensors and folder/normals.safetensors (+ .json) -> {'uv': path, 'normals': path}."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, name in (("uv_map", "uv"), ("normals", "normals")):
        cfg = pnn.official_config(kind)
        cfg["backbone"].update(embed_dim=32, depth=1, num_heads=1)
        cfg["head"].update(in_dim=32, embedding_dim=16, num_layers=1, num_heads=2)
        cfg["image_size"] = 64
        torch.manual_seed(1)
        pnn.save_network(pnn.Pixel3DMMNet(cfg), str(folder / f"{name}.safetensors"))
        paths[name] = str(folder / f"{name}.safetensors")
    return paths
