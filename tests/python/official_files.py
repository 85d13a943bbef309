"""The official preprocessing files of the Python and tracking tests, written from seeded random weights and then
converted: FaceBoxesV2.pth, PIPNet's epoch59.pth + meanface.txt, RetinaFace's mobilenet0.25_Final.pth, a stand-in
TorchScript face parser, and the tiny UV / normal networks. One place, so that both tests find the same faces."""
import pathlib

import torch

from pixel3dmm import convert_preprocessing as cp
from tiny_networks import save_tiny_networks

import faceboxes_reference as fref
import pipnet_reference as pref
from face_parser_reference import StandInParser
import retinaface_reference as rref


def write_official_files(folder: pathlib.Path) -> dict:
    """-> {"faceboxes", "pipnet", "retinaface": converted .safetensors paths, "face_parser": TorchScript path,
    "uv", "normals": tiny networks}."""
    folder = pathlib.Path(folder)
    # seed 10 (as test_pipnet.py): a box on dlib's example photo, and on its crop one that passes PIPNet's 0.99 gate
    fb = str(folder / "FaceBoxesV2.pth")
    torch.save({"module." + k: v for k, v in fref.randomize_(fref.FaceBoxesV2(), seed=10).state_dict().items()}, fb,
               _use_new_zipfile_serialization=False)
    pip = str(folder / "epoch59.pth")
    torch.save(pref.randomize_(pref.PipResnet18(), seed=7).state_dict(), pip)
    g = torch.Generator().manual_seed(1)
    mean = torch.rand(98, 2, generator=g, dtype=torch.float64) * 0.8 + 0.1
    (folder / "meanface.txt").write_text(" ".join(f"{v:.6f}" for v in mean.reshape(-1).tolist()) + "\n")
    rf = str(folder / "mobilenet0.25_Final.pth")
    torch.save({"module." + k: v for k, v in rref.randomize_(rref.RetinaFace(), seed=3).state_dict().items()}, rf)
    torch.manual_seed(0)
    parser = str(folder / "stand_in_jit.pt")
    torch.jit.save(torch.jit.script(StandInParser().eval()), parser)
    return {"faceboxes": cp.convert_faceboxes(fb), "pipnet": cp.convert_pipnet(pip, str(folder / "meanface.txt")),
            "retinaface": cp.convert_retinaface(rf), "face_parser": parser, **save_tiny_networks(folder / "nets")}
