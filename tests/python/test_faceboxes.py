"""The C++ FaceBoxesV2 (pixel3dmm/preprocess/faceboxes.h) against the Python reference of the official detector
(faceboxes_reference.py) on seeded random weights and small images, through the weight converter."""
import os
import pickle

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import convert_preprocessing as cp
from pixel3dmm import io as pio
from pixel3dmm._C import preprocess as pp

import faceboxes_reference as ref


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    pixel3dmm.set_num_threads(2)


def _official_file(path, net):
    """The layout of FaceBoxesV2.pth: a state dict with the 'module.' prefix, saved in the legacy (non-zip) format."""
    sd = {"module." + k: v for k, v in net.state_dict().items()}
    torch.save(sd, path, _use_new_zipfile_serialization=False)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faceboxes")
    net = ref.randomize_(ref.FaceBoxesV2(), seed=3)
    pth = str(tmp / "FaceBoxesV2.pth")
    _official_file(pth, net)
    out = cp.convert_faceboxes(pth)
    return net, out, pp.FaceBoxesDetector(out)


def _image(seed, h, w):
    """A smooth seeded BGR image (low-resolution noise upsampled) with a few flat patches."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, size=(h // 16 + 1, w // 16 + 1, 3)).astype(np.float32)
    img = torch.nn.functional.interpolate(torch.from_numpy(low).permute(2, 0, 1)[None], size=(h, w),
                                          mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    return img.round().clamp(0, 255).to(torch.uint8).numpy()


def _as_tuples(dets):
    return [(d["score"], d["x"], d["y"], d["width"], d["height"]) for d in dets]


def test_priors_equal_reference_and_count():
    for h, w in [(512, 512), (100, 75), (33, 129)]:
        got = pp.faceboxes_priors(h, w)
        want = ref.priors(h, w)
        assert got.dtype == torch.float32 and torch.equal(got, want)
    assert pp.faceboxes_priors(512, 512).shape == (5456, 4)


def test_input_equals_reference():
    bgr = _image(0, 40, 56)
    assert torch.equal(pp.faceboxes_input(torch.from_numpy(bgr)), ref.network_input(bgr))


@pytest.fixture(scope="module")
def reference_runs(converted):
    """(bgr, reference loc, reference conf) on two small images; odd sizes exercise the ceil in the feature maps."""
    net, _, _ = converted
    runs = []
    for seed, (h, w) in enumerate([(64, 96), (90, 50)]):
        bgr = _image(10 + seed, h, w)
        with torch.no_grad():
            loc, conf = net(ref.network_input(bgr))
        runs.append((bgr, loc, conf))
    return runs


def test_network_matches_reference(converted, reference_runs):
    _, _, det = converted
    for bgr, loc_r, conf_r in reference_runs:
        loc, conf = det.forward(ref.network_input(bgr))
        assert loc.shape == loc_r.shape == (1, pp.faceboxes_priors(*bgr.shape[:2]).shape[0], 4)
        assert conf.shape == conf_r.shape
        assert (loc - loc_r).abs().max() <= 1e-5 * (1 + loc_r.abs().max())
        assert (conf - conf_r).abs().max() <= 1e-6


def test_detections_equal_reference(converted, reference_runs):
    _, _, det = converted
    found = ties = 0
    for bgr, loc, conf in reference_runs:
        h, w = bgr.shape[:2]
        want = ref.detections(loc, conf, h, w)
        # the same raw outputs through the C++ post-processing: identical scores and integer boxes
        assert _as_tuples(pp.faceboxes_detections(loc, conf, h, w)) == want
        # end to end through the C++ network
        assert _as_tuples(det.detect(torch.from_numpy(bgr))) == want
        found += len(want)
        ties += int((conf[:, 1] == 1).sum())
    assert found > 10 and ties > 10  # the weights make detections, many of them tied at 1.0


def test_decode_equals_reference():
    g = torch.Generator().manual_seed(1)
    pri = ref.priors(64, 96)
    loc = torch.randn(1, pri.shape[0], 4, generator=g) * 3
    assert torch.equal(pp.faceboxes_decode(loc, pri, 64, 96), ref.decode(loc[0], pri, 64, 96))


def test_threshold_is_float32_and_strict():
    h = w = 64
    n = pp.faceboxes_priors(h, w).shape[0]
    loc = torch.zeros(1, n, 4)
    conf = torch.zeros(n, 2)
    conf[:, 1] = 0.5
    conf[0, 1] = float(np.float32(0.6))  # equal to 0.6f: rejected
    conf[n - 1, 1] = float(np.nextafter(np.float32(0.6), np.float32(1)))  # the next float32 passes
    got = _as_tuples(pp.faceboxes_detections(loc, conf, h, w))
    assert got == ref.detections(loc, conf, h, w)
    assert len(got) == 1 and got[0][0] == pytest.approx(0.6, abs=1e-6)


def test_nms_suppresses_at_exactly_the_threshold():
    # areas with the +1 convention: A = 10 x 10 = 100, B = 3 x 10 = 30 inside A: overlap 30 / 100 = 0.3f >= 0.3
    dets = np.array([[0, 0, 9, 9, 0.9], [0, 0, 2, 9, 0.8], [20, 20, 29, 29, 0.7]], dtype=np.float32)
    assert pp.faceboxes_nms(torch.from_numpy(dets)) == ref.cpu_nms(dets, 0.3) == [0, 2]


@pytest.mark.parametrize("seed", range(6))
def test_nms_tie_order_equals_numpy(seed):
    rng = np.random.default_rng(seed)
    n = [7, 17, 40, 100, 200, 400][seed]
    xy = rng.uniform(0, 60, size=(n, 2)).astype(np.float32)
    wh = rng.uniform(8, 30, size=(n, 2)).astype(np.float32)
    scores = rng.choice(np.array([1.0, 0.99, 0.75], dtype=np.float32), size=n)  # heavy ties
    dets = np.hstack([xy, xy + wh, scores[:, None]]).astype(np.float32)
    assert pp.faceboxes_nms(torch.from_numpy(dets)) == ref.cpu_nms(dets, 0.3)


@pytest.mark.parametrize("n", [2, 16, 17, 100, 5000])
def test_numpy_argsort_tie_order(n):
    rng = np.random.default_rng(n)
    for values in (rng.integers(0, 3, n).astype(np.float32), rng.integers(0, 50, n).astype(np.float64),
                   np.ones(n, np.float32), np.arange(n, dtype=np.float32)[::-1].copy()):
        assert pp.numpy_argsort(torch.from_numpy(values)) == np.argsort(values).tolist()
    with_nan = rng.integers(0, 4, n).astype(np.float32)
    with_nan[:: 3] = np.nan
    assert pp.numpy_argsort(torch.from_numpy(with_nan)) == np.argsort(with_nan).tolist()


# --- the converter and the loader's errors -----------------------------------------------------------------------
def test_converter_strips_prefix_and_keeps_names(converted):
    net, out, _ = converted
    tensors = pio.load_safetensors(out)
    assert set(tensors) == set(net.state_dict())
    assert len(tensors) == 192
    assert torch.equal(tensors["loc.0.weight"], net.loc[0].weight)


def test_converter_names_the_bad_key(tmp_path):
    net = ref.randomize_(ref.FaceBoxesV2(), seed=4)
    sd = {"module." + k: v for k, v in net.state_dict().items()}
    sd["module.conf.1.weight"] = torch.zeros(3, 256, 3, 3)
    del sd["module.conv2.bn.running_var"]
    pth = str(tmp_path / "bad.pth")
    torch.save(sd, pth, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError) as e:
        cp.convert_faceboxes(pth)
    msg = str(e.value)
    assert pth in msg and "conf.1.weight" in msg and "[2, 256, 3, 3]" in msg and "conv2.bn.running_var" in msg
    assert not os.path.exists(str(tmp_path / "bad.safetensors"))


def test_converter_refuses_truncated_and_foreign_pickles(tmp_path):
    net = ref.randomize_(ref.FaceBoxesV2(), seed=5)
    pth = tmp_path / "FaceBoxesV2.pth"
    _official_file(str(pth), net)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(pth.read_bytes()[: 5000])
    with pytest.raises(ValueError, match="cut.pth"):
        cp.convert_faceboxes(str(cut))
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"module.x": os.system}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        cp.convert_faceboxes(str(evil))
    assert cp.main(["faceboxes", str(tmp_path / "missing.pth")]) == 1
    assert not any(p.suffix == ".safetensors" for p in tmp_path.iterdir())


def test_loader_is_strict(tmp_path, converted):
    net, out, _ = converted
    tensors = pio.load_safetensors(out)
    del tensors["inception2.branch3x3.conv.weight"]
    tensors["conf.0.bias"] = torch.zeros(5)
    bad = str(tmp_path / "bad.safetensors")
    pio.save_safetensors(bad, tensors, {"format": "pixel3dmm-faceboxes"})
    with pytest.raises(ValueError) as e:
        pp.FaceBoxesDetector(bad)
    msg = str(e.value)
    assert "bad.safetensors" in msg and "inception2.branch3x3.conv.weight" in msg and "conf.0.bias" in msg
    other = str(tmp_path / "other.safetensors")
    pio.save_safetensors(other, pio.load_safetensors(out), {"format": "pixel3dmm-network"})
    with pytest.raises(ValueError, match="pixel3dmm-network"):
        pp.FaceBoxesDetector(other)


# --- crop "official" in the preprocessing pipeline -----------------------------------------------------------------
FACES = "/usr/share/doc/libdlib19.1/examples/faces/"
PHOTO = os.path.join(FACES, "2008_001322.jpg")


def _bgr8(image):
    """1 x 3 x H x W float RGB in [0, 1] -> H x W x 3 uint8 BGR, as the official code reads a file."""
    return (image[0].permute(1, 2, 0).flip(2) * 255).round().to(torch.uint8).contiguous()


def test_preprocess_with_the_official_crop(converted):
    from pixel3dmm import preprocess as ppy
    import official_crop_reference as cref
    if not (os.path.exists(PHOTO) and os.path.exists(ppy.default_landmark_model_path())):
        import warnings
        warnings.warn("SKIPPED: libdlib19.1 example photos or the dlib landmark model are missing")
        return
    _, weights, det = converted
    with pytest.raises(ValueError, match="faceboxes"):
        ppy.Preprocessor({"crop": "official", "mask_method": "landmarks"})
    p = ppy.Preprocessor({"crop": "official", "faceboxes": weights, "mask_method": "landmarks", "crop_size": 128})
    assert p.options.official_jpeg  # on by default with the official crop
    image = pixel3dmm.io.load_image(PHOTO)  # 1 x 3 x H x W in [0, 1]
    r = p.image(image, source="photo")
    assert r.crop_method == "official" and r.crop.shape == (1, 3, 128, 128)
    # Stage 0: the photo as the official rgb/ JPEG file reads back
    photo = p.official_photo(image)
    bgr = _bgr8(photo).numpy()
    assert torch.equal(torch.from_numpy(bgr), pp.jpeg_round_trip(_bgr8(image)))
    # FaceBoxes on that 8-bit BGR photo (checked against the reference above; the reference's pure-Python NMS is slow
    # on a whole photo), then the reference crop rule and numpy's slice
    d = det.detect(torch.from_numpy(bgr))[0]
    best = (d["score"], d["x"], d["y"], d["width"], d["height"])
    h, w = bgr.shape[:2]
    mean, union = cref.sequence_boxes([best])
    ymin, ymax, xmin, xmax, _ = cref.crop_box(mean, union, h, w)
    region = cref.crop_region(bgr, ymin, ymax, xmin, xmax)
    assert r.score == pytest.approx(best[0]) and r.box.tolist() == [best[1], best[2], best[1] + best[3], best[2] + best[4]]
    want = pp.official_crop_image(torch.from_numpy(bgr), (ymin, ymax, xmin, xmax), 128)
    assert torch.equal(_bgr8(r.crop), want)  # a 128 crop is no official file: no second JPEG
    # the affine maps the region's outer pixel edges onto the crop's
    rh, rw = region.shape[:2]
    x0, y0 = max(xmin, 0), max(ymin, 0)
    corners = torch.tensor([[x0 - 0.5, y0 - 0.5], [x0 + rw - 0.5, y0 + rh - 0.5]], dtype=torch.float64)
    assert torch.allclose(ppy.apply_affine(corners, r.affine), torch.tensor([[-0.5, -0.5], [127.5, 127.5]],
                                                                            dtype=torch.float64))
    # dlib's landmarks of the face in the stage-0 photo, mapped into the crop
    faces = p.detect(photo)
    assert any(torch.allclose(ppy.apply_affine(f["landmarks"], r.affine), r.landmarks[0], atol=1e-3) for f in faces)


def test_official_steps_one_by_one_give_what_image_gives(converted):
    """The official crop's steps as Python calls (stage 0, FaceBoxes, the crop rule, the crop, landmarks, masks)
    reproduce Preprocessor.image, so a user can hold them apart (e.g. one static crop for a set of photos)."""
    from pixel3dmm import preprocess as ppy
    if not (os.path.exists(PHOTO) and os.path.exists(ppy.default_landmark_model_path())):
        import warnings
        warnings.warn("SKIPPED: libdlib19.1 example photos or the dlib landmark model are missing")
        return
    _, weights, _ = converted
    p = ppy.Preprocessor({"crop": "official", "faceboxes": weights, "mask_method": "landmarks", "crop_size": 128})
    image = pixel3dmm.io.load_image(PHOTO)
    whole = p.image(image, source="photo")
    photo = p.official_photo(image)
    assert photo.shape == image.shape and photo.dtype == torch.float32
    boxes = p.face_boxes(photo)
    assert boxes and boxes[0]["score"] == pytest.approx(whole.score)
    crop = pp.official_crop(boxes[:1], photo.shape[2], photo.shape[3])
    face = p.official_crop_of(photo, crop, boxes[0], "photo")
    assert face.landmarks is None and face.uv_mask is None
    assert torch.equal(face.crop, whole.crop) and torch.equal(face.affine, whole.affine)
    assert torch.equal(face.box, whole.box) and face.score == whole.score
    # the crop as (ymin, ymax, xmin, xmax), the box as (score, x, y, width, height): the same
    b = boxes[0]
    again = p.official_crop_of(photo, crop["ymin_ymax_xmin_xmax"], (b["score"], b["x"], b["y"], b["width"], b["height"]))
    assert torch.equal(again.crop, whole.crop) and torch.equal(again.box, whole.box)
    assert p.official_landmarks(face, photo)
    assert torch.equal(face.landmarks, whole.landmarks) and torch.equal(face.iris, whole.iris)
    p.attach_masks(face)
    for k in ("uv_mask", "normal_mask", "fg_mask", "valid_bg"):
        assert torch.equal(getattr(face, k), getattr(whole, k)), k
    # no face for the landmarks (dlib on a black image): the step says so with False rather than raising
    black = torch.zeros(1, 3, 96, 96)
    none = p.official_crop_of(black, (0, 96, 0, 96), (0.5, 10, 10, 50, 50))
    assert not p.official_landmarks(none, black) and none.landmarks is None
    with pytest.raises(ValueError, match="ymin, ymax, xmin, xmax"):
        p.official_crop_of(photo, {"ymin": 0}, b)
    with pytest.raises(ValueError, match="score, x, y, width, height"):
        p.official_crop_of(photo, crop, (1, 2, 3))
    with pytest.raises(ValueError, match="official"):
        ppy.Preprocessor({"mask_method": "landmarks"}).face_boxes(photo)


def test_official_jpeg_reads_the_photo_and_the_crop_back_from_jpeg(converted):
    """official_jpeg (on by default with the official crop): FaceBoxes sees the photo after a quality-95 JPEG round
    trip (the official rgb/ file), and the 512 crop is that photo's crop after another (the official cropped/ file);
    off, both are the decoded pixels as they are."""
    from pixel3dmm import preprocess as ppy
    import official_crop_reference as cref
    if not (os.path.exists(PHOTO) and os.path.exists(ppy.default_landmark_model_path())):
        import warnings
        warnings.warn("SKIPPED: libdlib19.1 example photos or the dlib landmark model are missing")
        return
    _, weights, det = converted
    image = pixel3dmm.io.load_image(PHOTO)
    bgr = _bgr8(image)
    photo_jpeg = pp.jpeg_round_trip(bgr)
    assert not torch.equal(photo_jpeg, bgr)

    def official_crop_of(photo_bgr):
        d = det.detect(photo_bgr)[0]
        mean, union = cref.sequence_boxes([(d["score"], d["x"], d["y"], d["width"], d["height"])])
        ymin, ymax, xmin, xmax, _ = cref.crop_box(mean, union, bgr.shape[0], bgr.shape[1])
        return d, pp.official_crop_image(photo_bgr, (ymin, ymax, xmin, xmax), 512)

    d, crop = official_crop_of(photo_jpeg)
    r = ppy.Preprocessor({"crop": "official", "faceboxes": weights, "mask_method": "landmarks"}).image(image)
    assert r.score == pytest.approx(d["score"])
    assert torch.equal(_bgr8(r.crop), pp.jpeg_round_trip(crop))
    d0, crop0 = official_crop_of(bgr)
    plain = ppy.Preprocessor({"crop": "official", "faceboxes": weights, "mask_method": "landmarks",
                              "official_jpeg": False}).image(image)
    assert plain.score == pytest.approx(d0["score"]) and torch.equal(_bgr8(plain.crop), crop0)
    assert not torch.equal(plain.crop, r.crop)


REAL = ["2008_001322.jpg", "2008_001009.jpg", "2007_007763.jpg"]  # Debian's libdlib19.1 example photos


def test_real_photos_boxes_and_crops_equal_reference(converted):
    """On three real photos: the C++ detector's scores and integer boxes equal the reference detector's (network,
    decode, threshold, NMS, truncation), and the official crop of the best box equals the reference rule's and
    numpy's slice of it."""
    import official_crop_reference as cref
    if not os.path.exists(PHOTO):
        import warnings
        warnings.warn("SKIPPED: libdlib19.1 example photos are missing")
        return
    net, _, det = converted
    for name in REAL:
        image = pixel3dmm.io.load_image(os.path.join(FACES, name))
        bgr = (image[0].permute(1, 2, 0).flip(2) * 255).round().to(torch.uint8).contiguous()
        want = ref.detect(net, bgr.numpy())
        got = _as_tuples(det.detect(bgr))
        assert got == want and len(want) > 0, name
        h, w = bgr.shape[:2]
        best = sorted(want, key=lambda d: -d[0])[0]
        mean, union = cref.sequence_boxes([best])
        box = cref.crop_box(mean, union, h, w)
        c = pp.official_crop([best], h, w)
        assert c["ymin_ymax_xmin_xmax"] == box[:4], name
        assert np.array_equal(pp.official_crop_region(bgr, box[:4]).numpy(), cref.crop_region(bgr.numpy(), *box[:4]))
