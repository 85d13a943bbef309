"""SCRFD five keypoints (pixel3dmm.identity): the decode, threshold, NMS and centre-face choice against our own
reference (scrfd_reference.py) on seeded raw outputs with tied and threshold-equal scores, bit for bit; the
OpenCV-DNN detector on a reduced-width stand-in ONNX exported here with torch.onnx (scrfd_standin.py) against
torch's own output of the same model; the blob; the CLI's --scrfd (a face, and no face in any frame)."""
import os
import subprocess

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import identity

import scrfd_reference as ref

SIZE = 224


def _raw_outputs(seed, size=SIZE, tie_fraction=0.3, positive=0.08):
    """Seeded raw outputs of SCRFD's shapes: sigmoid scores with a share above 0.5, many of them tied (saturated to
    1.0 or quantised to 1/32), some exactly 0.5 and one float below it; positive distances (similar ones for odd
    seeds, so neighbouring boxes overlap and NMS, in NumPy's tie order, removes most of them)."""
    rng = np.random.default_rng(seed)
    outs = []
    for stride in ref.STRIDES:
        n = (size // stride) ** 2 * 2
        logits = rng.normal(-4.0, 2.0, n).astype(np.float32)
        logits[rng.random(n) < positive] += 6.0
        s = (1 / (1 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
        tied = rng.random(n) < tie_fraction
        s[tied & (s > 0.5)] = np.round(s[tied & (s > 0.5)] * 32) / 32
        s[rng.random(n) < 0.02] = 1.0
        s[rng.random(n) < 0.02] = 0.5
        s[rng.random(n) < 0.02] = np.nextafter(np.float32(0.5), np.float32(0))
        outs.append(s.reshape(n, 1))
    lo, hi = (2.0, 2.6) if seed % 2 else (0.05, 4.0)
    boxes = [rng.uniform(lo, hi, ((size // st) ** 2 * 2, 4)).astype(np.float32) for st in ref.STRIDES]
    kps = [rng.normal(0, 2.0, ((size // st) ** 2 * 2, 10)).astype(np.float32) for st in ref.STRIDES]
    return outs + boxes + kps


def _check_same(got, want):
    boxes, scores, kps = want
    assert got.boxes.dtype == torch.float32 and tuple(got.boxes.shape) == (len(scores), 4)
    assert tuple(got.keypoints.shape) == (len(scores), 5, 2)
    np.testing.assert_array_equal(got.scores.numpy(), scores)
    np.testing.assert_array_equal(got.boxes.numpy(), boxes)
    np.testing.assert_array_equal(got.keypoints.numpy(), kps)


@pytest.mark.parametrize("seed", range(6))
def test_decode_matches_reference_bit_for_bit(seed):
    outs = _raw_outputs(seed)
    det_scale = [224 / 512, 1.0, 224 / 300, 0.7][seed % 4]
    want = ref.decode(outs, SIZE, det_scale)
    kept_scores = np.concatenate([o[:, 0] for o in outs[:3]])
    kept_scores = kept_scores[kept_scores >= np.float32(0.5)]
    # The case exercises what it claims: ties among the kept scores, a score equal to the threshold, NMS removing.
    assert len(np.unique(kept_scores)) < len(kept_scores) and (kept_scores == np.float32(0.5)).any()
    assert 0 < len(want[1]) < len(kept_scores)
    got = identity.decode_scrfd(outs, SIZE, det_scale)
    _check_same(got, want)
    for h, w in [(512, 512), (300, 200), (101, 333)]:
        assert identity.centre_face(got, h, w) == ref.centre_face(want[0], h, w)
    # Other thresholds, and a leading batch dimension of 1 on every output (as batched exports have).
    _check_same(identity.decode_scrfd(outs, SIZE, det_scale, 0.3, 0.2), ref.decode(outs, SIZE, det_scale, 0.3, 0.2))
    _check_same(identity.decode_scrfd([o[None] for o in outs], SIZE, det_scale), want)


def test_decode_nms_overlap_equal_to_threshold_is_kept():
    outs = [np.zeros(((SIZE // s) ** 2 * 2, c), np.float32) for c in (1, 4, 10) for s in ref.STRIDES]
    # Stride 8, cell (1, 1) = rows 58 and 59, centre (8, 8). Box A = (0, 0, 9, 9), area 100 (official "+ 1");
    # box B = (0, 0, 3, 9) inside it, area 40: overlap 40 / 100 = float32(0.4) exactly.
    row = (1 * (SIZE // 8) + 1) * 2
    outs[0][row, 0], outs[0][row + 1, 0] = 0.9, 0.8
    outs[3][row] = [1, 1, 0.125, 0.125]
    outs[3][row + 1] = [1, 1, -0.625, 0.125]
    for nms, kept in [(0.4, 2), (np.nextafter(np.float32(0.4), np.float32(0)), 1)]:
        want = ref.decode(outs, SIZE, 1.0, 0.5, nms)
        assert len(want[1]) == kept
        _check_same(identity.decode_scrfd(outs, SIZE, 1.0, 0.5, float(nms)), want)
    np.testing.assert_array_equal(want[0], [[0, 0, 9, 9]])


def test_centre_face_ties_and_empty():
    boxes = np.array([[10.0, 0, 20, 10], [0, 10, 10, 20], [10, 0, 20, 10]], np.float32)
    d = identity.decode_scrfd([np.zeros(((SIZE // s) ** 2 * 2, c), np.float32) for c in (1, 4, 10)
                               for s in ref.STRIDES], SIZE, 1.0)
    assert len(d) == 0 and identity.centre_face(d, 20, 20) == -1 and ref.centre_face(d.boxes.numpy(), 20, 20) == -1
    # Three boxes equidistant from the centre, made by decode itself (stride 32 anchors; NMS off).
    outs = [np.zeros(((SIZE // s) ** 2 * 2, c), np.float32) for c in (1, 4, 10) for s in ref.STRIDES]
    for i, b in enumerate(boxes):
        row = 2 * i  # cell (i, 0): centre (32 i, 0)
        outs[2][row, 0] = 0.9 - 0.1 * i
        cx = 32.0 * i
        outs[5][row] = np.array([cx - b[0], 0 - b[1], b[2] - cx, b[3] - 0]) / 32
    d = identity.decode_scrfd(outs, SIZE, 1.0, 0.5, 1.0)  # nms 1.0: nothing suppressed
    np.testing.assert_array_equal(d.boxes.numpy(), boxes)
    assert identity.centre_face(d, 20, 20) == ref.centre_face(boxes, 20, 20) == 0


def test_decode_bad_input():
    outs = _raw_outputs(0)
    with pytest.raises(ValueError, match="found 8"):
        identity.decode_scrfd(outs[:8], SIZE, 1.0)
    outs[6] = outs[6][:, :8]
    with pytest.raises(ValueError, match=r"SCRFD output 6 \(keypoint distances, stride 8.*expected shape \[1568, 10\]"):
        identity.decode_scrfd(outs, SIZE, 1.0)


def test_blob_and_scale():
    g = torch.Generator().manual_seed(3)
    image = torch.randint(0, 256, (SIZE, SIZE, 3), generator=g, dtype=torch.uint8)
    blob, scale = identity.scrfd_input(image)
    assert scale == 1.0 and blob.shape == (1, 3, SIZE, SIZE) and blob.dtype == torch.float32
    want = (image.permute(2, 0, 1).numpy().astype(np.float32) - np.float32(127.5)) * np.float32(1 / 128)
    np.testing.assert_allclose(blob[0].numpy(), want, rtol=0, atol=1e-7)
    tall = torch.randint(0, 256, (300, 200, 3), generator=g, dtype=torch.uint8)
    blob, scale = identity.scrfd_input(tall)
    new_w, new_h, want_scale = ref.resize_geometry(300, 200)
    assert (new_w, new_h) == (149, 224) and scale == want_scale
    zero = -127.5 / 128  # a black canvas pixel
    assert bool((blob[0, :, :, new_w:] == zero).all()) and not bool((blob[0, :, :, new_w - 1] == zero).all())
    wide = torch.randint(0, 256, (100, 333, 3), generator=g, dtype=torch.uint8)
    blob, scale = identity.scrfd_input(wide)
    assert ref.resize_geometry(100, 333)[1] == 67 and bool((blob[0, :, 67:] == zero).all())
    with pytest.raises(ValueError, match="uint8"):
        identity.scrfd_input(torch.zeros(10, 10, 3).numpy().astype(np.int16))


# --- the detector on a stand-in ONNX export --------------------------------------------------------------------

def _export(path, seed, score_bias):
    try:
        import torch.onnx  # noqa: F401
        import scrfd_standin
        net = scrfd_standin.make_standin(str(path), width=0.125, seed=seed, score_bias=score_bias)
    except (ImportError, ModuleNotFoundError) as e:
        pytest.skip(f"torch.onnx export is unavailable: {e}")
    return net


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    torch.set_num_threads(2)
    path = tmp_path_factory.mktemp("scrfd") / "standin.onnx"
    net = _export(path, seed=0, score_bias=0.5)
    return path, net


def _image(seed, h, w):
    g = torch.Generator().manual_seed(seed)
    # Smooth random image (a few blobs), so the network's responses vary over the canvas.
    small = torch.rand(1, 3, 6, 6, generator=g)
    img = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]
    return (img * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()


def test_detector_matches_torch_on_standin(standin):
    path, net = standin
    det = identity.ScrfdDetector(str(path))
    assert det.input_size == SIZE and det.path == str(path)
    image = _image(1, 300, 260)
    blob, scale = identity.scrfd_input(image)
    with torch.no_grad():
        want = [o.numpy() for o in net(blob)]
    got = det.forward(blob)
    assert len(got) == 9
    for g_, w_ in zip(got, want):
        assert tuple(g_.shape) == w_.shape
        assert float(np.abs(g_.numpy() - w_).max()) <= 1e-4 * max(1.0, float(np.abs(w_).max()))
    boxes, scores, kps = ref.decode(want, SIZE, scale)
    assert 0 < len(scores)
    d = det.detect(image)
    assert len(d) == len(scores)
    np.testing.assert_allclose(d.scores.numpy(), scores, rtol=0, atol=1e-5)
    np.testing.assert_allclose(d.boxes.numpy(), boxes, rtol=0, atol=1e-3)
    np.testing.assert_allclose(d.keypoints.numpy(), kps, rtol=0, atol=1e-3)
    k = identity.detect_five_keypoints(det, image.numpy())
    np.testing.assert_allclose(k.numpy(), kps[ref.centre_face(boxes, 300, 260)], rtol=0, atol=1e-3)
    assert len(det.detect(image, threshold=1.01)) == 0


@pytest.mark.skipif(not os.environ.get("PIXEL3DMM_BIN"), reason="PIXEL3DMM_BIN is not set (run through CTest)")
def test_cli_identity_with_scrfd(tmp_path, standin):
    import mica_reference

    bin_ = os.environ["PIXEL3DMM_BIN"]
    path, _ = standin
    mica = identity.mica_from_state_dict(mica_reference.random_mica_weights(0, (1, 1, 1, 1), calibration_batch=2))
    identity.save_mica(mica, str(tmp_path / "mica.safetensors"))
    image = _image(2, 256, 256)
    pixel3dmm.io.save_image(str(tmp_path / "face.png"), image.permute(2, 0, 1).float() / 255)
    out = tmp_path / "identity.npy"
    cmd = [bin_, "identity", str(tmp_path / "face.png"), "--mica", str(tmp_path / "mica.safetensors"), "--out"]
    r = subprocess.run(cmd + [str(out), "--scrfd", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    kps = identity.detect_five_keypoints(identity.ScrfdDetector(str(path)), image)
    np.testing.assert_allclose(np.load(out), identity.identity_code(mica, image, kps).numpy(), rtol=0, atol=1e-6)
    # A detector that finds no face: exit 4, nothing written.
    _export(tmp_path / "blind.onnx", seed=1, score_bias=-30.0)
    r = subprocess.run(cmd + [str(tmp_path / "x.npy"), "--scrfd", str(tmp_path / "blind.onnx")], capture_output=True,
                       text=True)
    assert r.returncode == 4 and "no face" in r.stderr and not os.path.exists(tmp_path / "x.npy")


def test_identity_prior_with_scrfd(tmp_path, standin):
    """The fit's prior with --scrfd: MICA on SCRFD's keypoints of the crop; no face on the crop: no code."""
    import mica_reference

    path, _ = standin
    mica = identity.mica_from_state_dict(mica_reference.random_mica_weights(0, (1, 1, 1, 1), calibration_batch=2))
    identity.save_mica(mica, str(tmp_path / "mica.safetensors"))
    image = _image(3, 128, 128)
    crop = image.permute(2, 0, 1)[None].float() / 255
    prior = identity.IdentityPrior(mica=str(tmp_path / "mica.safetensors"), scrfd=str(path))
    assert "SCRFD" in prior.describe()
    kps = identity.detect_five_keypoints(identity.ScrfdDetector(str(path)), image)
    assert kps is not None
    want = identity.identity_code(mica, image, kps)
    assert torch.allclose(prior.code(crop, torch.zeros(1, 68, 2)), want, atol=1e-6)
    _export(tmp_path / "blind.onnx", seed=1, score_bias=-30.0)
    blind = identity.IdentityPrior(mica=str(tmp_path / "mica.safetensors"), scrfd=str(tmp_path / "blind.onnx"))
    assert blind.code(crop, torch.zeros(1, 68, 2)) is None
    with pytest.raises(ValueError, match="MICA weights"):
        identity.IdentityPrior(scrfd=str(path))
