"""The Python API takes the official preprocessing files as the CLI does: PreprocessOptions(faceboxes=, pipnet=,
face_parser=, retinaface=) or the same dict, in Preprocessor and in Reconstructor, with the CLI's rules (faceboxes
chooses the official crop; pipnet needs faceboxes; retinaface needs face_parser). Seeded random weights, converted;
a stand-in TorchScript parser; tiny networks and a two-step fit."""
import pathlib

import pytest
import torch

import pixel3dmm
from pixel3dmm import preprocess as ppy
from official_files import write_official_files

PHOTO = pathlib.Path("/usr/share/doc/libdlib19.1/examples/faces/2008_001322.jpg")
SHORT = {"iters": 2, "camera": {"steps": 2, "landmark_steps": 1}, "image_size": 64}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
    pixel3dmm.set_num_threads(2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_official_files(tmp_path_factory.mktemp("official_files"))


def test_options_follow_the_cli_rules(files):
    o = ppy.PreprocessOptions(faceboxes=files["faceboxes"], pipnet=files["pipnet"])
    assert o.crop == "official" and o.faceboxes == files["faceboxes"] and o.pipnet == files["pipnet"]
    assert ppy.PreprocessOptions().crop == "landmarks"
    with pytest.raises(ValueError, match="unknown option 'face_parsr'"):
        ppy.PreprocessOptions(face_parsr=files["face_parser"])
    # faceboxes named with crop 'landmarks' would be unused: refused, as an ignored label image is
    with pytest.raises(ValueError, match="crop 'official'"):
        ppy.Preprocessor(ppy.PreprocessOptions(faceboxes=files["faceboxes"], crop="landmarks"))
    nets = {"uv_weights": files["uv"], "normal_weights": files["normals"]}
    for make in (ppy.Preprocessor, lambda o: pixel3dmm.Reconstructor(None, preprocess=o, config=SHORT, **nets)):
        with pytest.raises(ValueError, match="faceboxes"):  # pipnet needs faceboxes
            make({"pipnet": files["pipnet"]})
        with pytest.raises(ValueError, match="face_parser"):  # retinaface needs face_parser
            make({"retinaface": files["retinaface"]})
    with pytest.raises(TypeError, match="PreprocessOptions"):
        ppy.Preprocessor(["faceboxes"])


@pytest.mark.skipif(not PHOTO.exists(), reason=f"{PHOTO} (Debian's libdlib19.1 examples) is missing")
def test_reconstructor_takes_all_four_files(files):
    official = {k: files[k] for k in ("faceboxes", "pipnet", "face_parser", "retinaface")}
    rec = pixel3dmm.Reconstructor(None, uv_weights=files["uv"], normal_weights=files["normals"],
                                  preprocess=ppy.PreprocessOptions(**official), config=SHORT)
    r = rec.reconstruct(str(PHOTO))
    p = r.input
    assert (p.crop_method, p.landmark_method, p.mask_method, p.keypoints) == ("official", "pipnet", "parser",
                                                                              "retinaface")
    assert p.wflw.shape == (98, 2) and p.labels.shape == p.uv_mask.shape
    official_masks = ppy.masks_from_segmentation(p.labels[0])
    for name in ("uv_mask", "normal_mask", "fg_mask", "valid_bg"):
        assert torch.equal(getattr(p, name), official_masks[name]), name
    assert r.result.vertices.shape[0] == 1 and torch.isfinite(r.result.vertices).all()
    # the same files as a dict, through a Preprocessor: the same crop, landmarks and labels
    q = ppy.Preprocessor(official).file(str(PHOTO))
    assert torch.equal(q.crop, p.crop) and torch.equal(q.wflw, p.wflw) and torch.equal(q.labels, p.labels)
