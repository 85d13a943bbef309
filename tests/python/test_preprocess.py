"""pixel3dmm.preprocess from Python: official segmentation masks, options, errors, and one example photo
(skipped, loudly, when Debian's libdlib19.1 examples or the landmark model are missing)."""
import os
import warnings

import pytest
import torch

import pixel3dmm
from pixel3dmm import preprocess as pp

FACES = "/usr/share/doc/libdlib19.1/examples/faces/"
PHOTO = os.path.join(FACES, "2008_001322.jpg")


def have_photos():
    ok = os.path.exists(PHOTO) and os.path.exists(pp.default_landmark_model_path())
    if not ok:
        warnings.warn("SKIPPED photo tests: libdlib19.1 example photos or the dlib landmark model are missing")
    return ok


def test_exports():
    assert pixel3dmm.preprocess is pp
    for name in pp.__all__:
        assert hasattr(pp, name), name


def test_segmentation_masks_follow_the_official_label_sets():
    labels = torch.arange(21).view(1, 21)
    m = pp.masks_from_segmentation(labels)
    sets = {"uv_mask": {1, 2, 4, 5, 6, 7, 10, 12, 13}, "normal_mask": {2, 6, 7, 10, 11, 12, 13},
            "fg_mask": {2, 6, 7, 8, 9, 10, 12, 13}, "valid_bg": {0, 1}}
    for key, members in sets.items():
        assert m[key].shape == (1, 1, 21) and m[key].dtype == torch.float32
        got = {i for i in range(21) if m[key][0, 0, i] == 1}
        assert got == members, key
    big = pp.masks_from_segmentation(labels.numpy(), big_normal_mask=True)
    assert {i for i in range(21) if big["normal_mask"][0, 0, i] == 1} == {1, 2, 4, 5, 6, 7, 10, 11, 12, 13}


def test_options_and_errors():
    o = pp.PreprocessOptions()
    assert o.crop_size == 512 and o.mask_method == "auto"
    assert "crop_size=512" in repr(o)
    with pytest.raises(ValueError, match="unknown option 'nope'"):
        pp.preprocess_image(torch.zeros(1, 3, 8, 8), {"nope": 1})
    with pytest.raises(FileNotFoundError, match="missing.dat"):
        pp.preprocess_image(torch.zeros(1, 3, 8, 8), {"landmark_model": "/nonexistent/missing.dat"})
    with pytest.raises(ValueError, match="channels"):
        pp.preprocess_image(torch.zeros(1, 2, 8, 8))
    with pytest.raises(FileNotFoundError, match="no-such.jpg"):
        pp.preprocess_file("/nonexistent/no-such.jpg")


def test_pupils_on_a_synthetic_eye():
    lm = torch.zeros(68, 2)
    lm[:, 0] = torch.linspace(20, 180, 68)
    lm[:, 1] = 100
    eye = torch.tensor([[-24, 0], [-12, -10], [12, -10], [24, 0], [12, 10], [-12, 10]], dtype=torch.float32)
    lm[36:42] = eye + torch.tensor([60.0, 80.0])
    lm[42:48] = eye + torch.tensor([140.0, 80.0])
    img = torch.full((1, 3, 200, 200), 0.8)
    yy, xx = torch.meshgrid(torch.arange(200.0), torch.arange(200.0), indexing="ij")
    img[0, :, ((xx - 66) ** 2 + (yy - 81) ** 2) < 36] = 0.1
    p = pp.locate_pupils(img, lm)
    assert p.shape == (2, 2)
    assert abs(p[0, 0] - 66) < 1 and abs(p[0, 1] - 81) < 1
    assert torch.allclose(p[1], lm[42:48].mean(0), atol=0.5)  # blank eye: contour centroid


@pytest.mark.skipif(not have_photos(), reason="libdlib19.1 example photos or dlib landmark model missing")
def test_photo_end_to_end(tmp_path):
    p = pp.Preprocessor({"crop_size": 256})
    assert "crop_size=256" in repr(p) and p.options.crop_size == 256
    r = p.file(PHOTO)
    assert r.source == PHOTO and "Preprocessed" in repr(r)
    assert r.crop.shape == (1, 3, 256, 256)
    assert r.landmarks.shape == (1, 68, 2) and r.iris.shape == (1, 2, 2)
    for m in (r.uv_mask, r.normal_mask, r.fg_mask, r.valid_bg):
        assert m.shape == (1, 256, 256) and m.sum() > 100
    assert (r.uv_mask * (1 - r.fg_mask)).sum() == 0
    assert (r.valid_bg * r.fg_mask).sum() == 0
    faces = p.detect(pixel3dmm.io.load_image(PHOTO))
    mapped = pp.apply_affine(faces[0]["landmarks"], r.affine)
    assert torch.allclose(mapped, r.landmarks[0], atol=1e-3)
    back = pp.apply_affine(r.landmarks[0].double(), pp.invert_affine(r.affine))
    assert torch.allclose(back.float(), faces[0]["landmarks"], atol=1e-3)
    out = tmp_path / "check.png"
    pp.write_preprocessed_png(str(out), r)
    assert out.stat().st_size > 1000
    # The same from an in-memory 1 x 3 x H x W uint8 tensor.
    img8 = (pixel3dmm.io.load_image(PHOTO) * 255).round().to(torch.uint8)
    assert torch.allclose(p.image(img8, source="mem").landmarks, r.landmarks)
    # Segmentation masks through the pipeline: a label image of the photo's size, all skin except a background
    # column on the left, gives uv_mask = the photo's pixels inside the crop.
    img = pixel3dmm.io.load_image(PHOTO)
    labels = torch.full(img.shape[2:], 2.0)
    pixel3dmm.io.save_image(str(tmp_path / "seg.png"), (labels / 255.0).expand(3, *labels.shape))
    # A label image alone selects the segmentation masks (mask_method "auto").
    s = pp.preprocess_file(PHOTO, {"crop_size": 256, "segmentation": str(tmp_path / "seg.png")})
    assert s.mask_method == "segmentation"
    assert s.uv_mask.sum() > 0.5 * 256 * 256
    assert s.valid_bg.sum() == 0  # outside the photo: label 20, in no mask (not background)
    with pytest.raises(ValueError, match="label image is given"):
        pp.preprocess_file(PHOTO, {"mask_method": "landmarks", "segmentation": str(tmp_path / "seg.png")})


@pytest.mark.skipif(not have_photos(), reason="libdlib19.1 example photos or dlib landmark model missing")
def test_no_face_names_the_file_and_all_faces():
    dogs = os.path.join(FACES, "dogs.jpg")
    with pytest.raises(ValueError, match="no face found in .*dogs.jpg"):
        pp.preprocess_file(dogs, {"mask_method": "landmarks"})
    p = pp.Preprocessor({"mask_method": "landmarks", "crop_size": 128})
    assert p.file(dogs, all_faces=True) == []
    faces = p.file(PHOTO, all_faces=True)
    assert len(faces) == 3 and all(f.crop.shape == (1, 3, 128, 128) for f in faces)
    areas = [float((f.box[2] - f.box[0]) * (f.box[3] - f.box[1])) for f in faces]
    assert areas == sorted(areas, reverse=True)
