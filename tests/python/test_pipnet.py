"""The C++ PIPNet (pixel3dmm/preprocess/pipnet.h) against the Python reference of the official stage 2
(pipnet_reference.py) on seeded random weights and a seeded random mean face, through the weight converter; the
neighbour lists on a hand-worked mean face; WFLW 98 -> iBUG 68 + pupils; crop "official" with PIPNet landmarks in the
preprocessing pipeline and on the command line."""
import json
import os
import pathlib
import pickle
import subprocess

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import convert_preprocessing as cp
from pixel3dmm import io as pio
from pixel3dmm._C import preprocess as pp

import faceboxes_reference as fref
import pipnet_reference as ref

BIN = os.environ.get("PIXEL3DMM_BIN")
PHOTO = pathlib.Path("/usr/share/doc/libdlib19.1/examples/faces/2008_001322.jpg")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    pixel3dmm.set_num_threads(2)


def _meanface(seed):
    """98 seeded points spread like a face's (no ties among distances)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.9, size=(98, 2))


def _write_meanface(path, pts):
    # PIPNet's layout: one line of 196 numbers (x0 y0 x1 y1 ...)
    path.write_text(" ".join(f"{v:.6f}" for v in pts.reshape(-1)) + "\n")
    return np.array([float(f"{v:.6f}") for v in pts.reshape(-1)]).reshape(-1, 2)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipnet")
    net = ref.randomize_(ref.PipResnet18(), seed=7)
    pth = str(tmp / "epoch59.pth")
    torch.save(net.state_dict(), pth)
    meanface = _write_meanface(tmp / "meanface.txt", _meanface(1))
    out = cp.convert_pipnet(pth, str(tmp / "meanface.txt"))
    return net, meanface, out, pp.PipNetDetector(out)


def _image(seed, h, w):
    """A smooth seeded BGR image (low-resolution noise upsampled)."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, size=(h // 16 + 1, w // 16 + 1, 3)).astype(np.float32)
    img = torch.nn.functional.interpolate(torch.from_numpy(low).permute(2, 0, 1)[None], size=(h, w),
                                          mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    return img.round().clamp(0, 255).to(torch.uint8).numpy()


# --- the mean face's neighbour lists ------------------------------------------------------------------------------
def test_neighbour_lists_hand_worked():
    # points on a line at 0, 1, 3, 7, 15, 16 (no tied distances), 2 neighbours each:
    # 0 -> (1, 3)  1 -> (0, 3)  3 -> (1, 0)  7 -> (3, 1)  15 -> (16, 7)  16 -> (15, 7)
    pts = torch.tensor([[0, 0], [1, 0], [3, 0], [7, 0], [15, 0], [16, 0]], dtype=torch.float64)
    nb = pp.pipnet_neighbours(pts, 2)
    assert nb["neighbours"].tolist() == [[1, 2], [0, 2], [1, 0], [2, 1], [5, 3], [4, 3]]
    # who predicts whom, in order of landmark then slot, padded cyclically to the longest list (3)
    assert nb["max_len"] == 3
    pairs = [list(zip(a, b)) for a, b in zip(nb["reverse_landmark"].tolist(), nb["reverse_neighbour"].tolist())]
    assert pairs == [[(1, 0), (2, 1), (1, 0)], [(0, 0), (2, 0), (3, 1)], [(0, 1), (1, 1), (3, 0)],
                     [(4, 1), (5, 1), (4, 1)], [(5, 0), (5, 0), (5, 0)], [(4, 0), (4, 0), (4, 0)]]
    # a point nobody has among its neighbours cannot be merged: a clear error, not an index crash
    with pytest.raises(ValueError, match="point 4 is no other point's neighbour"):
        pp.pipnet_neighbours(pts[:5], 2)


@pytest.mark.parametrize("seed", [1, 2])
def test_neighbour_lists_equal_reference(seed):
    pts = _meanface(seed)
    nb, rl, rn, max_len = ref.neighbours(pts, 10)
    got = pp.pipnet_neighbours(torch.from_numpy(pts), 10)
    assert got["max_len"] == max_len > 10
    assert got["neighbours"].tolist() == nb.tolist()
    assert got["reverse_landmark"].tolist() == rl.tolist() and got["reverse_neighbour"].tolist() == rn.tolist()


# --- network, input, decoding, export -----------------------------------------------------------------------------
def test_network_matches_reference(converted):
    net, _, _, det = converted
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = net(x)
    got = det.forward(x)
    for g, w, c in zip(got, want, [98, 98, 98, 980, 980]):
        assert g.shape == w.shape == (1, c, 8, 8)
        assert (g - w).abs().max() <= 1e-5 * (1 + w.abs().max())


def test_input_equals_reference():
    bgr = _image(3, 512, 512)
    for box in [(40, 95, 470, 500), (0, 0, 511, 511), (100, 100, 102, 103)]:
        want = ref.network_input(bgr, box, pp.official_crop_image)
        got = pp.pipnet_input(torch.from_numpy(bgr), box)
        assert got.shape == (1, 3, 256, 256) and torch.equal(got, want)
    # the red line is in what the network sees: top-left pixel of the input is pure red
    red = (torch.tensor([1.0, 0.0, 0.0]) - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(pp.pipnet_input(torch.from_numpy(bgr), (40, 95, 470, 500))[0, :, 0, 0], red)
    with pytest.raises(ValueError, match="empty landmark crop"):
        pp.pipnet_input(torch.from_numpy(bgr), (10, 10, 10, 50))


def test_decode_equals_reference(converted):
    _, meanface, _, _ = converted
    g = torch.Generator().manual_seed(5)
    heads = [torch.randn(1, c, 8, 8, generator=g) for c in (98, 98, 98, 980, 980)]
    want = ref.decode(heads, meanface)
    got = pp.pipnet_decode(heads, torch.from_numpy(meanface))
    assert got.dtype == torch.float32 and got.shape == (98, 2)
    assert np.abs(got.numpy() - want).max() <= 1e-6
    with pytest.raises(ValueError, match="mean face has 20"):
        pp.pipnet_decode(heads, torch.rand(20, 2, dtype=torch.float64) * 10)


def test_decode_first_maximum_and_merge_by_hand(converted):
    _, meanface, _, _ = converted
    # zero offsets, every score map flat: each landmark picks cell 0 and predicts (0, 0) for itself and neighbours
    heads = [torch.zeros(1, c, 8, 8) for c in (98, 98, 98, 980, 980)]
    # landmark 4: two tied maxima, at row 2 column 5 and row 6 column 1: the first in row-major order wins
    heads[0][0, 4, 2, 5] = heads[0][0, 4, 6, 1] = 3.0
    got = pp.pipnet_decode(heads, torch.from_numpy(meanface)).numpy()
    # point 4 = mean of its own prediction (5/8, 2/8) and max_len predictions by others, all at cell 0 (landmark 4
    # is not its own neighbour)
    n = 1 + ref.neighbours(meanface, 10)[3]
    assert got[4].tolist() == pytest.approx([5 / 8 / n, 2 / 8 / n], abs=1e-7)
    assert np.allclose(got, ref.decode(heads, meanface), atol=1e-7)


def test_export_is_float64_as_numpy():
    merged = torch.rand(98, 2, generator=torch.Generator().manual_seed(2))
    box = (31, 64, 480, 500)
    got = pp.pipnet_export(merged, box, 512, 512)
    assert got.dtype == torch.float64 and np.array_equal(got.numpy(), ref.export(merged.numpy(), box))


def test_landmarks_end_to_end_within_1e6(converted):
    net, meanface, _, det = converted
    for seed, box in [(11, (40, 95, 470, 500)), (12, (0, 30, 300, 511))]:
        bgr = _image(seed, 512, 512)
        x = ref.network_input(bgr, box, pp.official_crop_image)
        with torch.no_grad():
            heads = net(x)
        cls = heads[0][0].reshape(98, -1)
        top2 = cls.topk(2, 1).values
        assert (top2[:, 0] - top2[:, 1]).min() > 1e-4  # no near-tie decides a cell
        want = ref.export(ref.decode(heads, meanface), box)
        got = det.landmarks(torch.from_numpy(bgr), box)
        assert got.dtype == torch.float64 and got.shape == (98, 2)
        assert np.abs(got.numpy() - want).max() <= 1e-6


REAL = ["2008_001322.jpg", "2008_001009.jpg", "2007_007763.jpg"]  # Debian's libdlib19.1 example photos


@pytest.mark.skipif(not PHOTO.exists(), reason=f"{PHOTO} (Debian's libdlib19.1 examples) is missing")
def test_landmarks_on_real_photos_within_1e6(converted):
    """The same on crops of three real photos: each photo's central square resized to 512 as the official crop is,
    a face-sized box in it."""
    net, meanface, _, det = converted
    for name in REAL:
        rgb = (pixel3dmm.io.load_image(str(PHOTO.parent / name))[0] * 255).round().to(torch.uint8)
        bgr = rgb.permute(1, 2, 0).flip(2).contiguous()
        h, w = bgr.shape[:2]
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        crop = pp.official_crop_image(bgr, (y0, y0 + side, x0, x0 + side), 512).numpy()
        box = (96, 120, 415, 480)
        x = ref.network_input(crop, box, pp.official_crop_image)
        with torch.no_grad():
            heads = net(x)
        top2 = heads[0][0].reshape(98, -1).topk(2, 1).values
        assert (top2[:, 0] - top2[:, 1]).min() > 1e-4, name  # no near-tie decides a cell
        want = ref.export(ref.decode(heads, meanface), box)
        got = det.landmarks(torch.from_numpy(crop), box)
        assert np.abs(got.numpy() - want).max() <= 1e-6, name


# --- WFLW 98 -> iBUG 68 + pupils ----------------------------------------------------------------------------------
def test_wflw_to_ibug68_and_pupils():
    idx = pp.wflw_to_ibug68()
    assert idx == ref.IBUG68_FROM_WFLW and len(idx) == 68 and len(set(idx)) == 68
    pts = torch.arange(98 * 2, dtype=torch.float64).view(98, 2)
    lm, pupils = pp.wflw_landmarks_and_pupils(pts)
    assert torch.equal(lm, pts[idx]) and torch.equal(pupils, pts[[96, 97]])
    lm3, pupils3 = pp.wflw_landmarks_and_pupils(pts.expand(3, 98, 2))
    assert lm3.shape == (3, 68, 2) and pupils3.shape == (3, 2, 2)
    with pytest.raises(ValueError, match="98 x 2"):
        pp.wflw_landmarks_and_pupils(torch.zeros(68, 2))


# --- the converter and the loader's errors ------------------------------------------------------------------------
def test_converter_keeps_names_and_mean_face(converted):
    net, meanface, out, det = converted
    tensors = pio.load_safetensors(out)
    assert set(tensors) == set(net.state_dict()) and len(tensors) == len(cp.pipnet_shapes()) == 130
    assert torch.equal(tensors["layer3.0.downsample.0.weight"], net.layer3[0].downsample[0].weight)
    meta = pio.read_safetensors_metadata(out) if hasattr(pio, "read_safetensors_metadata") else None
    if meta is not None:
        assert meta["format"] == "pixel3dmm-pipnet" and meta["meanface_source"] == "meanface.txt"
    # the mean face read back is the file's numbers exactly
    assert np.array_equal(det.neighbours["mean_face"].numpy(), meanface)


def test_converter_names_the_bad_key(tmp_path):
    net = ref.randomize_(ref.PipResnet18(), seed=8)
    sd = net.state_dict()
    sd["nb_x_layer.weight"] = torch.zeros(98 * 5, 512, 1, 1)
    del sd["layer2.1.bn2.running_var"]
    pth = str(tmp_path / "bad.pth")
    torch.save(sd, pth)
    _write_meanface(tmp_path / "meanface.txt", _meanface(1))
    with pytest.raises(ValueError) as e:
        cp.convert_pipnet(pth, str(tmp_path / "meanface.txt"))
    msg = str(e.value)
    assert pth in msg and "nb_x_layer.weight" in msg and "[980, 512, 1, 1]" in msg
    assert "layer2.1.bn2.running_var" in msg
    assert not any(p.suffix == ".safetensors" for p in tmp_path.iterdir())


def test_converter_refuses_bad_files(tmp_path):
    net = ref.randomize_(ref.PipResnet18(), seed=9)
    pth = tmp_path / "epoch59.pth"
    torch.save(net.state_dict(), str(pth))
    mf = tmp_path / "meanface.txt"
    _write_meanface(mf, _meanface(1))
    cut = tmp_path / "cut.pth"
    cut.write_bytes(pth.read_bytes()[: 5000])
    with pytest.raises(ValueError, match="cut.pth"):
        cp.convert_pipnet(str(cut), str(mf))
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"x": os.system}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        cp.convert_pipnet(str(evil), str(mf))
    short = tmp_path / "short.txt"
    short.write_text("0.1 0.2 0.3\n")
    with pytest.raises(ValueError, match="short.txt.*196 numbers"):
        cp.convert_pipnet(str(pth), str(short))
    # FaceBoxes weights given as PIPNet's: every key named as unexpected or missing
    fb = tmp_path / "FaceBoxesV2.pth"
    torch.save({"module." + k: v for k, v in fref.FaceBoxesV2().state_dict().items()}, str(fb))
    with pytest.raises(ValueError, match="FaceBoxesV2.pth: not the PIPNet"):
        cp.convert_pipnet(str(fb), str(mf))
    assert cp.main(["pipnet", str(tmp_path / "missing.pth"), "--meanface", str(mf)]) == 1
    assert cp.main(["pipnet", str(pth), "--meanface", str(tmp_path / "missing.txt")]) == 1
    assert not any(p.suffix == ".safetensors" for p in tmp_path.iterdir())
    assert cp.main(["pipnet", str(pth), "--meanface", str(mf), "-o", str(tmp_path / "ok.safetensors")]) == 0


def test_loader_is_strict(tmp_path, converted):
    _, _, out, _ = converted
    tensors = pio.load_safetensors(out)
    meta = {"format": "pixel3dmm-pipnet", "meanface": " ".join(["0.5"] * 196)}
    del tensors["layer1.0.conv2.weight"]
    tensors["cls_layer.bias"] = torch.zeros(68)
    bad = str(tmp_path / "bad.safetensors")
    pio.save_safetensors(bad, tensors, meta)
    with pytest.raises(ValueError) as e:
        pp.PipNetDetector(bad)
    msg = str(e.value)
    assert "bad.safetensors" in msg and "layer1.0.conv2.weight" in msg and "cls_layer.bias" in msg
    good = pio.load_safetensors(out)
    for name, m, expect in [("noface.safetensors", {"format": "pixel3dmm-pipnet"}, "meanface"),
                            ("fb.safetensors", {"format": "pixel3dmm-faceboxes"}, "pixel3dmm-faceboxes"),
                            ("nan.safetensors", {"format": "pixel3dmm-pipnet", "meanface": "nan " * 196}, "nan")]:
        p = str(tmp_path / name)
        pio.save_safetensors(p, good, m)
        with pytest.raises(ValueError, match=expect) as e:
            pp.PipNetDetector(p)
        assert name in str(e.value)


# --- crop "official" + PIPNet in the pipeline and on the command line --------------------------------------------
@pytest.fixture(scope="module")
def official_weights(tmp_path_factory, converted):
    tmp = tmp_path_factory.mktemp("official")
    fb = str(tmp / "FaceBoxesV2.pth")
    # seed 10: on dlib's 2008_001322.jpg a box on the photo, and on its crop one that passes 0.99 and is not empty
    torch.save({"module." + k: v for k, v in fref.randomize_(fref.FaceBoxesV2(), seed=10).state_dict().items()}, fb,
               _use_new_zipfile_serialization=False)
    return cp.convert_faceboxes(fb), converted[2]


@pytest.mark.skipif(not PHOTO.exists(), reason=f"{PHOTO} (Debian's libdlib19.1 examples) is missing")
def test_preprocess_with_pipnet_landmarks(official_weights, converted):
    from pixel3dmm import preprocess as ppy
    faceboxes, pipnet = official_weights
    with pytest.raises(ValueError, match="official"):
        ppy.Preprocessor({"pipnet": pipnet})
    image = pixel3dmm.io.load_image(str(PHOTO))
    results = {}
    for size in (512, 128):
        p = ppy.Preprocessor({"crop": "official", "faceboxes": faceboxes, "pipnet": pipnet, "mask_method": "landmarks",
                              "crop_size": size})
        r = p.image(image, source="photo")
        assert r.crop_method == "official" and r.landmark_method == "pipnet"
        assert r.wflw.dtype == torch.float64 and r.wflw.shape == (98, 2)
        idx = pp.wflw_to_ibug68()
        assert torch.equal(r.landmarks[0], (r.wflw[idx] * size).float())
        assert torch.equal(r.iris[0], (r.wflw[[96, 97]] * size).float())
        results[size] = r
    # PIPNet always runs on the official 512 crop: the same 98 points whatever crop_size is
    assert torch.equal(results[512].wflw, results[128].wflw)
    # ... and they are the official stage 2 on that crop: FaceBoxes again, the 0.99 gate, PIPNet's box
    crop = (results[512].crop[0] * 255).round().to(torch.uint8).permute(1, 2, 0).flip(2).contiguous()
    fb = pp.FaceBoxesDetector(faceboxes)
    box = pp.pipnet_face_box(fb.detect(crop), 512, 512)
    assert box is not None
    assert torch.equal(results[512].wflw, converted[3].landmarks(crop, box))


def test_pipnet_landmarks_scale_to_the_maps_as_the_official_tracker_scales_them():
    """The official tracker reads PIPNet's fractions times its image size (tracker.py: np.load(...) * size): from the
    512 crop to 256 maps a PIPNet point is x / 2; dlib's points (ours) keep their pixel centres: (x + 0.5) / 2 - 0.5."""
    from pixel3dmm import preprocess as ppy, predict, reconstruct
    face = ppy.Preprocessed()
    face.crop = torch.zeros(1, 3, 512, 512)
    for k in ("uv_mask", "normal_mask", "fg_mask", "valid_bg"):
        setattr(face, k, torch.ones(1, 512, 512))
    wflw = torch.rand(98, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lm, pupils = pp.wflw_landmarks_and_pupils(wflw)
    face.landmarks, face.iris = (lm * 512).float()[None], (pupils * 512).float()[None]
    maps = predict.Predictions()
    maps.uv, maps.normals = torch.zeros(1, 2, 256, 256), torch.zeros(1, 3, 256, 256)
    face.landmark_method = "pipnet"
    t = reconstruct.make_target(face, maps)
    assert torch.allclose(t.landmarks, (lm * 256).float()[None], atol=1e-4)
    assert torch.allclose(t.iris, (pupils * 256).float()[None], atol=1e-4)
    face.landmark_method = "dlib"
    t = reconstruct.make_target(face, maps)
    assert torch.allclose(t.landmarks, face.landmarks / 2 - 0.25, atol=1e-4)


def _run(*args):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.skipif(not BIN, reason="PIXEL3DMM_BIN is not set (run through CTest)")
@pytest.mark.skipif(not PHOTO.exists(), reason=f"{PHOTO} (Debian's libdlib19.1 examples) is missing")
def test_cli_reconstruct_with_faceboxes_and_pipnet(official_weights, tmp_path):
    from tiny_networks import save_tiny_networks
    nets = save_tiny_networks(tmp_path / "nets")
    faceboxes, pipnet = official_weights
    short = ["--set", "iters=2", "--set", "camera.steps=2", "--set", "camera.landmark_steps=1", "--set",
             "image_size=64", "--masks", "landmarks"]
    net_args = ["--uv-weights", nets["uv"], "--normal-weights", nets["normals"]]
    out = tmp_path / "out"
    rc, stdout, stderr = _run("reconstruct", PHOTO, "--out", out, "--faceboxes", faceboxes, "--pipnet", pipnet,
                              *net_args, *short)
    assert rc == 0, (stdout, stderr)
    assert "FaceBoxesV2" in stdout and "PIPNet" in stdout
    assert "through quality-95 JPEG as the official files" in stdout  # the official JPEG stage is on by default
    folder = next(p for p in out.iterdir() if p.is_dir())
    report = json.loads((folder / "report.json").read_text())
    assert report["crop_method"] == "official" and report["landmark_method"] == "pipnet"
    pre = json.loads((folder / "preprocess.json").read_text())
    assert pre["landmark_method"] == "pipnet" and len(pre["wflw"]) == 98
    # a weight file that is not PIPNet's: one clear error naming it, nothing written
    out2 = tmp_path / "out2"
    rc, stdout, stderr = _run("reconstruct", PHOTO, "--out", out2, "--faceboxes", faceboxes, "--pipnet", faceboxes,
                              *net_args, *short)
    assert rc != 0
    lines = [line for line in stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and faceboxes in lines[0] and "PIPNet" in lines[0], stderr
    assert not out2.exists() or not [p for p in out2.rglob("*") if p.is_file()]
    # --pipnet needs --faceboxes
    rc, _, stderr = _run("reconstruct", PHOTO, "--out", tmp_path / "out3", "--pipnet", pipnet, *net_args, *short)
    assert rc != 0 and "--faceboxes" in stderr
    # --no-official-jpeg turns the JPEG stage off
    rc, stdout, stderr = _run("reconstruct", PHOTO, "--out", tmp_path / "out5", "--faceboxes", faceboxes,
                              "--no-official-jpeg", *net_args, *short)
    assert rc == 0, (stdout, stderr)
    assert "decoded pixels as they are (--no-official-jpeg)" in stdout and "quality-95" not in stdout
    # --no-official-jpeg belongs to the official crop
    rc, _, stderr = _run("reconstruct", PHOTO, "--out", tmp_path / "out4", "--no-official-jpeg", *net_args, *short)
    assert rc != 0 and "--no-official-jpeg belongs to the official crop" in stderr
