"""The C++ RetinaFace mobilenet0.25 (pixel3dmm/preprocess/retinaface.h) against the Python reference of facer's
detector (retinaface_reference.py) on seeded random weights and small images, through the weight converter; crafted
raw outputs for the threshold, ties, a face at the border and no face."""
import os
import pickle

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import convert_preprocessing as cp
from pixel3dmm import io as pio
from pixel3dmm._C import preprocess as pp

import retinaface_reference as ref


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    pixel3dmm.set_num_threads(2)


def _official_file(path, net, zip_format=False):
    """The layout facer accepts: a state dict, here with the 'module.' prefix of nn.DataParallel."""
    sd = {"module." + k: v for k, v in net.state_dict().items()}
    torch.save(sd, path, _use_new_zipfile_serialization=zip_format)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retinaface")
    net = ref.randomize_(ref.RetinaFace(), seed=3)
    pth = str(tmp / "mobilenet0.25_Final.pth")
    _official_file(pth, net)
    out = cp.convert_retinaface(pth)
    return net, out, pp.RetinaFaceDetector(out)


def _image(seed, h, w):
    """A smooth seeded 1 x 3 x H x W uint8 RGB image (low-resolution noise upsampled)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 16 + 1, w // 16 + 1, generator=g) * 255
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return img.round().clamp(0, 255).to(torch.uint8)


def _same(got, want):
    """C++ detections (dict of tensors) == reference list, exactly."""
    assert len(got["scores"]) == len(want)
    for i, (box, pts, score) in enumerate(want):
        assert torch.equal(got["rects"][i], box), (i, got["rects"][i], box)
        assert torch.equal(got["points"][i], pts), (i, got["points"][i], pts)
        assert got["scores"][i].item() == np.float32(score)


def test_anchors_equal_reference_and_count():
    for h, w in [(512, 512), (100, 75), (33, 129)]:
        got = pp.retinaface_anchors(h, w)
        assert got.dtype == torch.float32 and torch.equal(got, ref.anchors(h, w))
    assert pp.retinaface_anchors(512, 512).shape == (10752, 4)


def test_input_keeps_facers_channel_quirk():
    rgb = _image(0, 40, 56)
    got = pp.retinaface_input(rgb)
    assert torch.equal(got, ref.network_input(rgb))
    # R minus 104 (the B mean): the RGB image is not reordered
    assert torch.equal(got[0, 0], rgb[0, 0].float() - 104)


@pytest.fixture(scope="module")
def reference_runs(converted):
    """(rgb, reference loc, conf, landmarks) on two small images; odd sizes exercise the ceil of the strides."""
    net, _, _ = converted
    runs = []
    for seed, (h, w) in enumerate([(64, 96), (90, 50)]):
        rgb = _image(10 + seed, h, w)
        with torch.no_grad():
            runs.append((rgb, *net(ref.network_input(rgb))))
    return runs


def test_network_matches_reference(converted, reference_runs):
    _, _, det = converted
    for rgb, loc_r, conf_r, lm_r in reference_runs:
        loc, conf, lm = det.forward(rgb)
        n = pp.retinaface_anchors(*rgb.shape[2:]).shape[0]
        assert loc.shape == loc_r.shape == (1, n, 4) and conf.shape == (1, n, 2) and lm.shape == (1, n, 10)
        for a, b in ((loc, loc_r), (lm, lm_r)):
            assert (a - b).abs().max() <= 1e-5 * (1 + b.abs().max())
        assert (conf - conf_r).abs().max() <= 1e-6


def test_detections_equal_reference(converted, reference_runs):
    _, _, det = converted
    found = 0
    for rgb, loc, conf, lm in reference_runs:
        h, w = rgb.shape[2:]
        want = ref.detections(loc[0], conf[0], lm[0], h, w)
        _same(pp.retinaface_detections(loc[0], conf[0], lm[0], h, w), want)  # the same raw outputs
        _same(det.detect(rgb), ref.detect(converted[0], rgb))  # end to end through the C++ network
        found += len(want)
    assert found >= 2  # the weights make detections


def _raw(h, w, score=0.5):
    n = pp.retinaface_anchors(h, w).shape[0]
    conf = torch.zeros(n, 2)
    conf[:, 1] = score
    conf[:, 0] = 1 - conf[:, 1]
    return torch.zeros(n, 4), conf, torch.zeros(n, 10)


def test_no_face_is_empty():
    loc, conf, lm = _raw(64, 64)
    got = pp.retinaface_detections(loc, conf, lm, 64, 64)
    assert got["rects"].shape == (0, 4) and got["points"].shape == (0, 5, 2) and got["scores"].numel() == 0
    assert ref.detections(loc, conf, lm, 64, 64) == []


def test_threshold_is_float32_and_strict():
    loc, conf, lm = _raw(64, 64)
    conf[0, 1] = float(np.float32(0.8))  # equal to 0.8f: rejected
    conf[-1, 1] = float(np.nextafter(np.float32(0.8), np.float32(1)))  # the next float32 passes
    got = pp.retinaface_detections(loc, conf, lm, 64, 64)
    _same(got, ref.detections(loc, conf, lm, 64, 64))
    assert len(got["scores"]) == 1


def test_tied_scores_and_a_face_at_the_border():
    h, w = 64, 96
    loc, conf, lm = _raw(h, w)
    g = torch.Generator().manual_seed(7)
    pick = torch.randperm(loc.shape[0], generator=g)[:60]
    conf[pick, 1] = torch.tensor([1.0, 0.95, 0.9])[torch.randint(0, 3, (60,), generator=g)]  # heavy ties
    loc[pick] = torch.randn(60, 4, generator=g)
    lm[pick] = torch.randn(60, 10, generator=g) * 3
    # anchor 0 (top-left cell, size 16): shifted out of the image, its keypoints too
    conf[0, 1] = 1.0
    loc[0] = torch.tensor([-8.0, -8.0, 1.0, 1.0])
    lm[0] = -20.0
    want = ref.detections(loc, conf, lm, h, w)
    got = pp.retinaface_detections(loc, conf, lm, h, w)
    _same(got, want)
    assert len(want) >= 5 and len(set(s for _, _, s in want)) < len(want)  # ties kept
    assert (got["rects"][:, :2] < 0).any() and (got["points"] < 0).any()  # not clipped, as facer


def test_nms_keeps_at_exactly_the_threshold():
    # areas with +1: A = 10 x 10 = 100, B = 4 x 10 = 40 inside A: IoU 40 / 100 = 0.4f <= 0.4: kept (facer keeps <=)
    dets = torch.tensor([[0, 0, 9, 9, 0.9], [0, 0, 3, 9, 0.8], [0, 0, 4, 9, 0.7], [20, 20, 29, 29, 0.6]])
    assert pp.retinaface_nms(dets, 0.4) == ref.nms(dets, 0.4) == [0, 1, 3]


@pytest.mark.parametrize("seed", range(3))
def test_nms_tie_order_equals_torch(seed):
    g = torch.Generator().manual_seed(seed)
    n = [17, 100, 400][seed]
    xy = torch.rand(n, 2, generator=g) * 60
    wh = 8 + torch.rand(n, 2, generator=g) * 22
    s = torch.tensor([1.0, 0.99, 0.85])[torch.randint(0, 3, (n,), generator=g)]
    dets = torch.cat([xy, xy + wh, s[:, None]], 1)
    assert pp.retinaface_nms(dets, 0.4) == ref.nms(dets, 0.4)


# --- the converter and the loader's errors -----------------------------------------------------------------------
def test_converter_strips_prefix_and_keeps_names(converted, tmp_path):
    net, out, _ = converted
    tensors = pio.load_safetensors(out)
    assert set(tensors) == set(net.state_dict()) == set(cp.retinaface_shapes())
    assert torch.equal(tensors["LandmarkHead.2.conv1x1.weight"], net.LandmarkHead[2].conv1x1.weight)
    # a zip-format file, without the prefix and wrapped in {'state_dict': ...}, converts to the same tensors
    pth = str(tmp_path / "plain.pth")
    torch.save({"state_dict": net.state_dict()}, pth)
    again = pio.load_safetensors(cp.convert_retinaface(pth))
    assert all(torch.equal(again[k], tensors[k]) for k in tensors)


def test_converter_names_the_bad_key(tmp_path):
    net = ref.randomize_(ref.RetinaFace(), seed=4)
    sd = {"module." + k: v for k, v in net.state_dict().items()}
    sd["module.BboxHead.1.conv1x1.weight"] = torch.zeros(12, 64, 1, 1)
    del sd["module.ssh2.conv7x7_3.1.running_var"]
    pth = str(tmp_path / "bad.pth")
    torch.save(sd, pth, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError) as e:
        cp.convert_retinaface(pth)
    msg = str(e.value)
    assert pth in msg and "BboxHead.1.conv1x1.weight" in msg and "[8, 64, 1, 1]" in msg
    assert "ssh2.conv7x7_3.1.running_var" in msg and "RetinaFace" in msg
    assert not os.path.exists(str(tmp_path / "bad.safetensors"))


def test_converter_refuses_foreign_pickles_and_missing_files(tmp_path):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"module.x": os.system}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        cp.convert_retinaface(str(evil))
    assert cp.main(["retinaface", str(tmp_path / "missing.pth")]) == 1
    assert not any(p.suffix == ".safetensors" for p in tmp_path.iterdir())


def test_loader_is_strict(tmp_path, converted):
    _, out, _ = converted
    tensors = pio.load_safetensors(out)
    del tensors["fpn.merge1.0.weight"]
    tensors["ClassHead.0.conv1x1.bias"] = torch.zeros(5)
    bad = str(tmp_path / "bad.safetensors")
    pio.save_safetensors(bad, tensors, {"format": "pixel3dmm-retinaface"})
    with pytest.raises(ValueError) as e:
        pp.RetinaFaceDetector(bad)
    msg = str(e.value)
    assert "bad.safetensors" in msg and "fpn.merge1.0.weight" in msg and "ClassHead.0.conv1x1.bias" in msg
    other = str(tmp_path / "other.safetensors")
    pio.save_safetensors(other, pio.load_safetensors(out), {"format": "pixel3dmm-faceboxes"})
    with pytest.raises(ValueError, match="pixel3dmm-faceboxes"):
        pp.RetinaFaceDetector(other)
    pth = tmp_path / "mobilenet0.25_Final.pth"
    _official_file(str(pth), ref.randomize_(ref.RetinaFace(), seed=5))
    with pytest.raises(ValueError, match="convert_preprocessing retinaface"):
        pp.RetinaFaceDetector(str(pth))
    with pytest.raises(FileNotFoundError):
        pp.RetinaFaceDetector(str(tmp_path / "missing.safetensors"))
