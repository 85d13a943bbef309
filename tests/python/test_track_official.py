"""`pixel3dmm track --faceboxes F [--pipnet P] [--face-parser M --retinaface R]` on a folder of three frames (dlib's
example photo shifted by a few pixels): FaceBoxesV2 on every frame, then ONE static crop for all frames by the
official sequence rule, checked against the Python reference of that rule (official_crop_reference.py) on the
per-frame detections; `--crop smoothed` gives per-frame crops; the parser's label maps are written per frame
(OUT/seg_og/, the official layout) and equal the parser on the static crop. Seeded random weights, tiny networks and
a few tracking steps: the crops, files and provenance are under test, not the fit."""
import json
import os
import pathlib
import subprocess

import pytest
import torch

import pixel3dmm
from pixel3dmm import io as pio
from pixel3dmm import preprocess as ppy
from pixel3dmm._C import preprocess as pp
from official_files import write_official_files

import official_crop_reference as ref

BIN = os.environ.get("PIXEL3DMM_BIN")
PHOTO = pathlib.Path("/usr/share/doc/libdlib19.1/examples/faces/2008_001322.jpg")
SHIFTS = [(0, 0), (4, 0), (5, 5)]  # (dy, dx) of each frame's window (with these seeds: faces found on every crop)
TINY = ["--set", "fit.image_size=64", "--set", "fit.camera.steps=4", "--set", "fit.camera.landmark_steps=2",
        "--set", "online.iters=2", "--set", "global.iters=2", "--set", "global.batch_size=3",
        "--set", "global.checkpoint_every=2", "--no-video", "--no-frames"]
pytestmark = [pytest.mark.skipif(not BIN, reason="PIXEL3DMM_BIN is not set (run through CTest)"),
              pytest.mark.skipif(not PHOTO.exists(), reason=f"{PHOTO} (Debian's libdlib19.1 examples) is missing")]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.set_num_threads(2)
    pixel3dmm.set_num_threads(2)
    tmp = tmp_path_factory.mktemp("track_official")
    files = write_official_files(tmp)
    photo = pio.load_image(str(PHOTO))  # 1 x 3 x H x W
    h, w = photo.shape[2] - 8, photo.shape[3] - 8
    frames = tmp / "frames"
    frames.mkdir()
    for i, (dy, dx) in enumerate(SHIFTS):
        pio.save_image(str(frames / f"{i:05d}.png"), photo[:, :, dy:dy + h, dx:dx + w])
    return {**files, "frames": frames}


def run(*args):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def frames_bgr(folder):
    """Each frame as the official code reads it: its stage-0 rgb/ file (quality-95 JPEG), H x W x 3 uint8 BGR."""
    out = []
    for f in sorted(folder.glob("*.png")):
        bgr = (pio.load_image(str(f))[0] * 255).round().to(torch.uint8).permute(1, 2, 0).flip(2).contiguous()
        out.append(pp.jpeg_round_trip(bgr))
    return out


def best_detections(files):
    fb = pp.FaceBoxesDetector(files["faceboxes"])
    best = []
    for bgr in frames_bgr(files["frames"]):
        d = fb.detect(bgr)[0]
        best.append((d["score"], d["x"], d["y"], d["width"], d["height"]))
    return best


def region_box(ymin, ymax, xmin, xmax, height, width):
    """The crop box the tracker records: first column, first row, width of the numpy-sliced region."""
    r0, c0 = min(max(ymin + height if ymin < 0 else ymin, 0), height), min(max(xmin + width if xmin < 0 else xmin, 0),
                                                                              width)
    c1 = min(max(xmax + width if xmax < 0 else xmax, 0), width)
    return [c0, r0, c1 - c0]


def test_track_static_official_crop_and_parser(files, tmp_path):
    out = tmp_path / "official"
    nets = ["--uv-weights", files["uv"], "--normal-weights", files["normals"]]
    rc, stdout, stderr = run("track", files["frames"], "--out", out, "--faceboxes", files["faceboxes"], "--pipnet",
                             files["pipnet"], "--face-parser", files["face_parser"], "--retinaface", files["retinaface"],
                             *nets, *TINY)
    assert rc == 0, stdout + stderr
    assert "one static crop for all frames" in stdout and "FaceBoxesV2" in stdout and "PIPNet" in stdout
    info = json.loads((out / "preprocess.json").read_text())
    assert info["crop_method"] == "official-sequence" and info["landmark_method"] == "pipnet"
    assert info["mask_method"] == "parser" and len(info["frames"]) == len(SHIFTS)

    # The per-frame detections are FaceBoxes' best box of each frame; the static crop is the official rule on them.
    best = best_detections(files)
    height, width = frames_bgr(files["frames"])[0].shape[:2]
    for f, d in zip(info["frames"], best):
        assert f["face_box"] == list(d[1:]) and f["face_box_score"] == pytest.approx(d[0], abs=1e-6)
    mean, union = ref.sequence_boxes(best)
    want = ref.crop_box(mean, union, height, width)
    assert info["official_crop"]["ymin_ymax_xmin_xmax"] == list(want[:4])
    assert info["official_crop"]["used_union"] == want[4]
    boxes = [f["crop_box"] for f in info["frames"]]
    assert all(b == region_box(*want[:4], height, width) for b in boxes)
    assert any(f["landmarks"] for f in info["frames"])

    # The parser's label map of every frame, in the official seg_og layout, is the parser on the static crop aligned
    # by RetinaFace's keypoints.
    labels = sorted((out / "seg_og").glob("*.png"))
    assert [p.name for p in labels] == [f"{i:05d}.png" for i in range(len(SHIFTS))]
    parser, retina = ppy.FaceParser(files["face_parser"]), ppy.RetinaFaceDetector(files["retinaface"])
    for bgr, file in zip(frames_bgr(files["frames"]), labels):
        crop = pp.jpeg_round_trip(pp.official_crop_image(bgr, want[:4], 512))  # the official cropped/ file
        crop = crop.flip(2).permute(2, 0, 1)[None].contiguous()  # RGB
        points = retina.detect(crop)["points"][:1]
        seg = (pio.load_image(str(file))[0, 0] * 255).round().to(torch.uint8)
        assert torch.equal(seg, parser.labels(crop, points)[0])


def test_track_smoothed_crop_is_per_frame(files, tmp_path):
    out = tmp_path / "smoothed"
    nets = ["--uv-weights", files["uv"], "--normal-weights", files["normals"]]
    rc, stdout, stderr = run("track", files["frames"], "--out", out, "--faceboxes", files["faceboxes"], "--pipnet",
                             files["pipnet"], "--crop", "smoothed", "--smooth-crop", "0", "--masks", "landmarks",
                             *nets, *TINY)
    assert rc == 0, stdout + stderr
    assert "crop: per frame" in stdout
    info = json.loads((out / "preprocess.json").read_text())
    assert info["crop_method"] == "official-smoothed" and "official_crop" not in info
    assert info["mask_method"] == "landmarks" and not (out / "seg_og").exists()
    height, width = frames_bgr(files["frames"])[0].shape[:2]
    # radius 0: each frame's own official crop (the single-photo rule on its best box)
    boxes = [f["crop_box"] for f in info["frames"]]
    for b, d in zip(boxes, best_detections(files)):
        box = list(d[1:])
        assert b == region_box(*ref.crop_box(box, box, height, width)[:4], height, width)
    assert len({tuple(b) for b in boxes}) > 1  # the frames are shifted: their own crops differ


def test_track_frame_without_landmarks_is_masked(files, tmp_path):
    """A frame where FaceBoxes finds a box but the landmark stage finds no face (here dlib, no --pipnet, on a frame
    with no face at all) gets no landmarks, as the official tracker reads a missing landmark file: the run goes on,
    preprocess.json and the command say which frame, the others keep theirs."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for f in sorted(files["frames"].glob("*.png"))[:2]:
        (frames / f.name).write_bytes(f.read_bytes())
    h, w = frames_bgr(frames)[0].shape[:2]
    pio.save_image(str(frames / "00002.png"), torch.full((1, 3, h, w), 0.5))  # no face for dlib
    assert pp.FaceBoxesDetector(files["faceboxes"]).detect(torch.full((h, w, 3), 128, dtype=torch.uint8))
    out = tmp_path / "out"
    nets = ["--uv-weights", files["uv"], "--normal-weights", files["normals"]]
    rc, stdout, stderr = run("track", frames, "--out", out, "--faceboxes", files["faceboxes"], "--masks", "landmarks",
                             *nets, *TINY)
    assert rc == 0, stdout + stderr
    assert "3 frames (1 without landmarks (masked in the fit))" in stdout
    info = json.loads((out / "preprocess.json").read_text())
    assert info["landmark_method"] == "dlib"
    assert [f["landmarks"] for f in info["frames"]] == [True, True, False]


def test_track_crop_option_errors(files, tmp_path):
    rc, _, stderr = run("track", files["frames"], "--out", tmp_path / "x", "--crop", "official", "--demo-networks")
    assert rc == 2 and "--faceboxes" in stderr
    rc, _, stderr = run("track", files["frames"], "--out", tmp_path / "y", "--crop", "static", "--demo-networks")
    assert rc == 2 and "--crop" in stderr


def expected_affine(crop, height, width, size=512):
    """Source pixels -> crop pixels of an official crop (ymin, ymax, xmin, xmax): cv::resize's pixel centres."""
    c0, r0, rw = region_box(*crop, height, width)
    rh = min(max(crop[1] + height if crop[1] < 0 else crop[1], 0), height) - r0
    ax, ay = size / rw, size / rh
    return [[ax, 0.0, (0.5 - c0) * ax - 0.5], [0.0, ay, (0.5 - r0) * ay - 0.5]]


def test_reconstruct_joint_shares_one_static_crop(files, tmp_path):
    nets = ["--uv-weights", files["uv"], "--normal-weights", files["normals"]]
    short = ["--set", "iters=2", "--set", "camera.steps=2", "--set", "camera.landmark_steps=1", "--set",
             "image_size=64", "--masks", "landmarks"]
    frames = sorted(files["frames"].glob("*.png"))
    out = tmp_path / "joint"
    rc, stdout, stderr = run("reconstruct", *frames, "--joint", "--out", out, "--faceboxes", files["faceboxes"],
                             "--pipnet", files["pipnet"], *nets, *short)
    assert rc == 0, stdout + stderr
    assert f"one static crop for all {len(frames)} photos" in stdout
    best = best_detections(files)
    height, width = frames_bgr(files["frames"])[0].shape[:2]
    want = ref.crop_box(*ref.sequence_boxes(best), height, width)[:4]
    for f, d in zip(frames, best):
        pre = json.loads((out / f.stem / "preprocess.json").read_text())
        assert pre["crop_method"] == "official-sequence" and pre["landmark_method"] == "pipnet"
        got, expect = sum(pre["affine"], []), sum(expected_affine(want, height, width), [])
        assert got == pytest.approx(expect, abs=1e-9)
        assert pre["box"] == [d[1], d[2], d[1] + d[3], d[2] + d[4]]
        assert json.loads((out / f.stem / "report.json").read_text())["crop_method"] == "official-sequence"

    # photos of different sizes: each its own official crop, and the command says so
    out = tmp_path / "mixed"
    rc, stdout, stderr = run("reconstruct", frames[0], PHOTO, "--joint", "--out", out, "--faceboxes",
                             files["faceboxes"], "--pipnet", files["pipnet"], *nets, *short)
    assert rc == 0, stdout + stderr
    assert "differ in size" in stdout
    for name in (frames[0].stem, PHOTO.stem):
        assert json.loads((out / name / "preprocess.json").read_text())["crop_method"] == "official"
