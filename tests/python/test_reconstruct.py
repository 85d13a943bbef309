"""Photo -> mesh: pixel3dmm.Reconstructor and the `reconstruct`, `predict`, `fit`, `synth` and `convert` commands,
with tiny random networks (the pipeline, files and errors are under test here, not the network's accuracy), and
every bad input of the photo pipeline: one clear line, its exit code, nothing half-written."""
import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import torch

import pixel3dmm
from tiny_networks import save_tiny_networks

BIN = os.environ.get("PIXEL3DMM_BIN")
FACES = pathlib.Path("/usr/share/doc/libdlib19.1/examples/faces")
PHOTO = FACES / "2008_001322.jpg"
SHORT = ["--set", "iters=4", "--set", "camera.steps=4", "--set", "camera.landmark_steps=2", "--set", "image_size=64"]
SHORT_CONFIG = {"iters": 4, "camera": {"steps": 4, "landmark_steps": 2}, "image_size": 64}
needs_photo = pytest.mark.skipif(not PHOTO.exists(), reason=f"{PHOTO} (Debian's libdlib19.1 examples) is missing")
needs_bin = pytest.mark.skipif(not BIN, reason="PIXEL3DMM_BIN is not set (run through CTest)")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Tiny random UV and normal networks (64 x 64 input) saved as converted files."""
    return save_tiny_networks(tmp_path_factory.mktemp("nets"))


def run(*args, cwd=None):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)
    return p.returncode, p.stdout, p.stderr


def error_lines(stderr):
    return [line for line in stderr.splitlines() if "error" in line]


def net_args(weights):
    return ["--uv-weights", weights["uv"], "--normal-weights", weights["normals"]]


@needs_photo
def test_reconstructor_from_python(weights, tmp_path):
    rec = pixel3dmm.Reconstructor(uv_weights=weights["uv"], normal_weights=weights["normals"], config=SHORT_CONFIG)
    assert "Reconstructor(flame='<synthetic>'" in repr(rec) and "image_size=64" in repr(rec)
    steps = []
    r = rec.reconstruct(str(PHOTO), on_step=lambda e: steps.append(e["step"]))
    assert len(steps) == r.result.iterations == 8
    assert tuple(r.input.crop.shape) == (1, 3, 512, 512)
    assert tuple(r.predictions.uv.shape) == (1, 2, 64, 64)
    assert tuple(r.target.landmarks.shape) == (1, 68, 2)
    # landmarks follow the maps' size: crop pixels scaled 512 -> 64
    assert torch.allclose(r.target.landmarks, (r.input.landmarks + 0.5) * (64 / 512) - 0.5)
    assert r.result.vertices.shape[-2:] == (5023, 3)
    rec.write(tmp_path / "out", r)
    names = set(os.listdir(tmp_path / "out"))
    assert {"mesh.ply", "mesh.obj", "params.json", "overlay.png", "report.json", "crop.png",
            "predictions.safetensors", "masks.safetensors", "preprocess.json", "uv_map.png"} <= names
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["source"] == str(PHOTO) and report["iterations"] == 8
    # the saved fit inputs read back as they were
    inp, pred = pixel3dmm.reconstruct.read_fit_inputs(tmp_path / "out")
    assert torch.allclose(inp.landmarks, r.input.landmarks, atol=1e-5)
    assert torch.equal(pred.uv, r.predictions.uv)
    # an image in memory (NumPy, H x W x 3 uint8) gives the same crop as the file
    img = (pixel3dmm.io.load_image(str(PHOTO))[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    r2 = rec.reconstruct(np.ascontiguousarray(img))
    assert torch.allclose(r2.input.landmarks, r.input.landmarks, atol=1.0)
    faces = rec.reconstruct_all(str(PHOTO))
    assert len(faces) == 3
    assert faces[0].input.score >= 0 and (faces[0].input.box[2] - faces[0].input.box[0]) >= \
        (faces[2].input.box[2] - faces[2].input.box[0])
    with pytest.raises(ValueError, match="no face found in image"):
        rec.reconstruct(np.zeros((200, 200, 3), np.uint8))


@needs_photo
def test_reconstructor_identity_prior(weights, tmp_path):
    """Reconstructor(identity=code.npy): every fit starts at the code and reports it; without one, no prior."""
    assert not pixel3dmm.Reconstructor(uv_weights=weights["uv"], normal_weights=weights["normals"],
                                       config=SHORT_CONFIG).identity_prior.enabled
    code = np.zeros(300, np.float32)
    code[:3] = (1.5, -1.0, 0.5)
    np.save(tmp_path / "code.npy", code)
    rec = pixel3dmm.Reconstructor(uv_weights=weights["uv"], normal_weights=weights["normals"], config=SHORT_CONFIG,
                                  identity=tmp_path / "code.npy")
    assert rec.identity_prior.enabled and str(tmp_path / "code.npy") in rec.identity_prior.describe()
    r = rec.reconstruct(str(PHOTO))
    np.testing.assert_allclose(r.result.identity_prior.reshape(-1).numpy(), code, atol=1e-6)
    rec.write(tmp_path / "out", r)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["identity_prior"] == str(tmp_path / "code.npy")


def test_reconstructor_needs_both_networks(weights):
    with pytest.raises(ValueError, match="needs both networks"):
        pixel3dmm.Reconstructor(uv_weights=weights["uv"], normal_weights="")


@needs_bin
@needs_photo
def test_reconstruct_predict_fit_commands(weights, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(PHOTO, photos / "a.jpg")
    shutil.copy(FACES / "Tom_Cruise_avp_2014_4.jpg", photos / "b.jpg")
    rc, out, err = run("reconstruct", photos, "--out", tmp_path / "out", *net_args(weights), *SHORT)
    assert rc == 0, err
    assert "2 done, 0 failed" in out
    for name in ("a", "b"):
        d = tmp_path / "out" / name
        assert (d / "mesh.obj").stat().st_size > 0 and (d / "report.json").exists()
    assert not [p for p in os.listdir(tmp_path / "out") if p.startswith(".")], "no partial folders left"
    # joint: one identity for both photos
    rc, out, err = run("reconstruct", photos / "a.jpg", photos / "b.jpg", "--joint", "--out", tmp_path / "joint",
                       *net_args(weights), *SHORT)
    assert rc == 0, err
    pa = json.loads((tmp_path / "joint" / "a" / "params.json").read_text())
    pb = json.loads((tmp_path / "joint" / "b" / "params.json").read_text())
    assert pa["flame.shape"] == pb["flame.shape"]
    assert pa["flame.exp"] != pb["flame.exp"]
    assert json.loads((tmp_path / "joint" / "b" / "report.json").read_text())["index_in_fit"] == 1
    # every face of a photo (2008_001322.jpg shows three), largest first
    rc, out, err = run("reconstruct", photos / "a.jpg", "--all-faces", "--out", tmp_path / "all", *net_args(weights),
                       *SHORT)
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "all")) == ["a-face1", "a-face2", "a-face3"]
    rc, _, err = run("reconstruct", photos / "a.jpg", "--all-faces", "--joint", *net_args(weights))
    assert rc == 2 and "--joint and --all-faces" in err
    # predict, then fit from the saved maps
    rc, out, err = run("predict", photos / "a.jpg", "--out", tmp_path / "maps", *net_args(weights))
    assert rc == 0, err
    assert (tmp_path / "maps" / "a" / "predictions.safetensors").exists()
    assert not (tmp_path / "maps" / "a" / "mesh.ply").exists()
    rc, out, err = run("fit", tmp_path / "maps" / "a", "--out", tmp_path / "fits", *SHORT)
    assert rc == 0, err
    assert (tmp_path / "fits" / "a" / "mesh.ply").exists() and (tmp_path / "fits" / "a" / "fit_report.json").exists()


@needs_bin
def test_synth_then_fit(tmp_path):
    rc, out, err = run("synth", "--count", 2, "--size", 128, "--out", tmp_path / "synth")
    assert rc == 0, err
    d = tmp_path / "synth" / "0001"
    for f in ("crop.png", "predictions.safetensors", "truth.ply", "truth_params.safetensors", "preprocess.json"):
        assert (d / f).exists(), f
    rc, out, err = run("fit", d, *SHORT)
    assert rc == 0, err
    assert (d / "mesh.ply").exists()
    rc, _, err = run("synth", "--count", "zero", "--out", tmp_path / "bad")
    assert rc == 2 and "--count" in err and not (tmp_path / "bad").exists()


@needs_bin
def test_convert_runs_the_python_converters(tmp_path):
    rc, out, _ = run("convert", "checkpoint", "--help")
    assert rc == 0 and "checkpoint" in out
    rc, _, err = run("convert", "checkpoint", tmp_path / "missing.ckpt")
    assert rc == 3 and "missing.ckpt" in err
    rc, _, err = run("convert", "weights.bin")
    assert rc == 2 and "unknown kind" in err


# ---- bad inputs: one clear line naming the culprit, the right exit code, nothing written ----

def _flame_of_wrong_layout(path):
    np.savez(path, v_template=np.zeros((10, 3)), f=np.zeros((4, 3), np.int64))


@needs_bin
@needs_photo
@pytest.mark.parametrize("case", ["missing photo", "not an image", "no face", "unreadable weights",
                                  "wrong FLAME layout", "output not writable", "bad setting"])
def test_bad_inputs(weights, tmp_path, case):
    photo, nets, extra, out = str(PHOTO), net_args(weights), [], tmp_path / "out"
    expect_code, expect_text = 3, None
    if case == "missing photo":
        photo, expect_text = str(tmp_path / "nope.jpg"), "nope.jpg"
    elif case == "not an image":
        (tmp_path / "notes.jpg").write_text("not a picture")
        photo, expect_text = str(tmp_path / "notes.jpg"), "notes.jpg"
    elif case == "no face":
        pixel3dmm.io.save_image(str(tmp_path / "wall.png"), torch.full((1, 3, 240, 320), 0.5))
        photo, expect_code, expect_text = str(tmp_path / "wall.png"), 4, "no face found in"
    elif case == "unreadable weights":
        (tmp_path / "uv.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
        shutil.copy(weights["uv"][: -len(".safetensors")] + ".json", tmp_path / "uv.json")  # the config is fine
        nets = ["--uv-weights", str(tmp_path / "uv.safetensors"), "--normal-weights", weights["normals"]]
        expect_text = "uv.safetensors"
    elif case == "wrong FLAME layout":
        _flame_of_wrong_layout(tmp_path / "flame.npz")
        extra, expect_text = ["--flame", str(tmp_path / "flame.npz")], "flame.npz"
    elif case == "output not writable":
        (tmp_path / "file").write_text("x")
        out, expect_text = tmp_path / "file" / "out", "output folder"
    elif case == "bad setting":
        extra, expect_text = ["--set", "iters=lots"], "iters"
    rc, stdout, stderr = run("reconstruct", photo, "--out", out, *nets, *SHORT, *extra)
    assert rc == expect_code, (rc, stdout, stderr)
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    assert expect_text in lines[0], lines[0]
    # nothing half-written: no result folder for the photo, no partial folder
    if out.exists():
        assert not [p for p in out.rglob("*") if p.is_file()], list(out.rglob("*"))
