"""`pixel3dmm reconstruct --face-parser P [--retinaface R]`: the crop's official label map (seg_og.png) comes from the
parser (a stand-in TorchScript module scripted here with the installed torch), aligned by RetinaFace's five keypoints
(seeded random weights, converted) or by ours from the 68 landmarks, and the fit's masks are the official masks of
that label map. Tiny random networks and a short fit: the files and their provenance are under test."""
import json
import os
import pathlib
import subprocess

import pytest
import torch

import pixel3dmm
from pixel3dmm import convert_preprocessing as cp
from pixel3dmm import io as pio
from pixel3dmm import preprocess as ppy
from tiny_networks import save_tiny_networks

from face_parser_reference import StandInParser
import retinaface_reference as ref

BIN = os.environ.get("PIXEL3DMM_BIN")
PHOTO = pathlib.Path("/usr/share/doc/libdlib19.1/examples/faces/2008_001322.jpg")
SHORT = ["--set", "iters=2", "--set", "camera.steps=2", "--set", "camera.landmark_steps=1", "--set", "image_size=64"]
needs_photo = pytest.mark.skipif(not PHOTO.exists(), reason=f"{PHOTO} (Debian's libdlib19.1 examples) is missing")
needs_bin = pytest.mark.skipif(not BIN, reason="PIXEL3DMM_BIN is not set (run through CTest)")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parsing")
    torch.manual_seed(0)
    parser = str(tmp / "stand_in_jit.pt")
    torch.jit.save(torch.jit.script(StandInParser().eval()), parser)
    pth = str(tmp / "mobilenet0.25_Final.pth")
    torch.save({"module." + k: v for k, v in ref.randomize_(ref.RetinaFace(), seed=3).state_dict().items()}, pth)
    nets = save_tiny_networks(tmp / "nets")
    return {"parser": parser, "retinaface": cp.convert_retinaface(pth), **nets}


def run(*args):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def check_folder(d, parser, retinaface):
    """seg_og.png holds the parser's labels of crop.png with the recorded keypoints; masks.safetensors = its masks."""
    info = json.loads((d / "preprocess.json").read_text())
    assert info["mask_method"] == "parser"
    crop = (pio.load_image(str(d / "crop.png")) * 255).round().to(torch.uint8)  # 1 x 3 x S x S, written exactly
    seg = (pio.load_image(str(d / "seg_og.png"))[0] * 255).round().to(torch.uint8)
    assert torch.equal(seg[0], seg[1]) and torch.equal(seg[0], seg[2])  # a single-channel file
    labels = seg[0]
    assert labels.shape == crop.shape[2:]
    assert set(labels.unique().tolist()) <= set(range(19)) | {20} and len(labels.unique()) > 2
    if retinaface:
        assert info["parser_keypoints"] == "retinaface"
        points = ppy.RetinaFaceDetector(retinaface).detect(crop)["points"][:1]
    else:
        assert info["parser_keypoints"] == "landmarks68"
        lm = torch.tensor(info["landmarks"], dtype=torch.float32)
        points = torch.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])[None]
    want = ppy.FaceParser(parser).labels(crop, points)[0]
    assert torch.equal(labels, want)
    masks = pio.load_safetensors(str(d / "masks.safetensors"))
    official = ppy.masks_from_segmentation(labels)
    for name in ("uv_mask", "normal_mask", "fg_mask", "valid_bg"):
        assert torch.equal(masks[name], official[name]), name


@needs_bin
@needs_photo
def test_reconstruct_parses_each_crop(files, tmp_path):
    nets = ["--uv-weights", files["uv"], "--normal-weights", files["normals"]]
    rc, out, err = run("reconstruct", PHOTO, "--out", tmp_path / "rf", "--face-parser", files["parser"],
                       "--retinaface", files["retinaface"], *nets, *SHORT)
    assert rc == 0, err
    assert "five keypoints from RetinaFace" in out
    check_folder(tmp_path / "rf" / PHOTO.stem, files["parser"], files["retinaface"])

    rc, out, err = run("reconstruct", PHOTO, "--out", tmp_path / "lm", "--face-parser", files["parser"], *nets,
                       *SHORT)
    assert rc == 0, err
    assert "68 landmarks (ours" in out
    check_folder(tmp_path / "lm" / PHOTO.stem, files["parser"], None)


@needs_bin
def test_reconstruct_parser_errors(files, tmp_path):
    rc, _, err = run("reconstruct", PHOTO, "--out", tmp_path / "x", "--retinaface", files["retinaface"])
    assert rc != 0 and "--retinaface" in err and "--face-parser" in err
    not_ts = tmp_path / "not_torchscript.pt"
    not_ts.write_bytes(b"not an archive")
    rc, _, err = run("reconstruct", PHOTO, "--out", tmp_path / "y", "--face-parser", not_ts,
                     "--uv-weights", files["uv"], "--normal-weights", files["normals"], *SHORT)
    assert rc != 0 and "not_torchscript.pt" in err
    assert not (tmp_path / "y" / PHOTO.stem).exists()
