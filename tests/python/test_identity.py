"""MICA (pixel3dmm.identity) against our own reference (mica_reference.py) on seeded random weights, at reduced
IResNet depth (blocks (1, 2, 2, 1): every block kind, a fraction of IResNet-100's cost); the mica.tar converter;
the ArcFace alignment."""
import os
import pickle

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import convert_mica
from pixel3dmm import identity

import mica_reference as ref

LAYERS = (1, 2, 2, 1)


class TrainerState:
    """Stands for a class of MICA's training code pickled into mica.tar (the converter must stub it)."""

    def __init__(self):
        self.best = 1.5


@pytest.fixture(scope="module")
def weights():
    torch.set_num_threads(2)
    return ref.random_mica_weights(0, LAYERS)


@pytest.fixture(scope="module")
def blob():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 112, 112, generator=g) * 2 - 1


def _save_mica_tar(path, weights, drop=None, reshape=None, extra=None):
    arcface = {k[len("arcface."):]: v for k, v in weights.items() if k.startswith("arcface.")}
    flame = {k: v for k, v in weights.items() if k.startswith("regressor.")}
    flame["generator.flame.v_template"] = torch.zeros(5023, 3)  # FLAME buffers the converter leaves out
    ckpt = {"arcface": arcface, "flameModel": flame, "opt": {"state": {}, "param_groups": [{"lr": 1e-5}]},
            "epoch": 7, "validator": TrainerState()}
    if drop:
        del ckpt[drop[0]][drop[1]]
    if reshape:
        ckpt[reshape[0]][reshape[1]] = torch.zeros(reshape[2])
    if extra:
        ckpt.update(extra)
    torch.save(ckpt, path)


def test_mica_matches_reference(weights, blob):
    mica = identity.mica_from_state_dict(weights)
    assert list(mica.layers) == list(LAYERS)
    with torch.no_grad():
        want = ref.mica_forward(weights, blob)
        got = mica.forward(blob)
        feats = mica.identity_features(blob)
    assert got.shape == (2, 300) and got.dtype == torch.float32
    # The weights are not degenerate: the two inputs give clearly different codes of order one.
    assert float((want[0] - want[1]).abs().max()) > 0.05
    assert float(want.abs().max()) < 100
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) <= 1e-5 * scale
    np.testing.assert_allclose(feats.norm(dim=1).numpy(), [1.0, 1.0], atol=1e-6)


def test_state_dict_names_are_official(weights):
    mica = identity.Mica(list(LAYERS))
    names = set(mica.official_state_dict())
    want = {k for k in weights if not k.endswith("num_batches_tracked")}
    assert names == want
    assert "arcface.layer1.0.downsample.0.weight" in names and "arcface.layer2.1.prelu.weight" in names
    assert "regressor.network.3.weight" in names and "regressor.output.bias" in names


def test_convert_mica_tar(tmp_path, weights, blob):
    src = tmp_path / "mica.tar"
    _save_mica_tar(src, weights)
    out = convert_mica.convert(str(src))
    assert out == str(tmp_path / "mica.safetensors")
    meta = pixel3dmm.io.load_safetensors_metadata(out)
    assert meta["format"] == "pixel3dmm-mica"
    mica = identity.load_mica(out)
    with torch.no_grad():
        got, want = mica.forward(blob), ref.mica_forward(weights, blob)
    assert float((got - want).abs().max()) <= 1e-5 * float(want.abs().max())


@pytest.mark.parametrize("drop,reshape,match", [
    (("arcface", "fc.bias"), None, r"missing: arcface\.fc\.bias"),
    (None, ("flameModel", "regressor.output.bias", (299,)),
     r"regressor\.output\.bias \(expected \[300\], found \[299\]\)"),
    (("flameModel", "regressor.network.0.weight"), None, r"regressor\.network\.0\.weight' is missing"),
])
def test_convert_refuses_mismatched_weights_naming_file_and_key(tmp_path, weights, drop, reshape, match):
    src = tmp_path / "bad.tar"
    _save_mica_tar(src, weights, drop=drop, reshape=reshape)
    with pytest.raises(ValueError, match=match) as e:
        convert_mica.convert(str(src), str(tmp_path / "out.safetensors"))
    assert "bad.tar" in str(e.value)
    assert not os.path.exists(tmp_path / "out.safetensors")


def test_convert_refuses_missing_entry_and_code(tmp_path, weights):
    src = tmp_path / "nofm.tar"
    torch.save({"arcface": {}}, src)
    with pytest.raises(ValueError, match="nofm.tar: key 'flameModel' is missing"):
        convert_mica.convert(str(src))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    src = tmp_path / "evil.tar"
    _save_mica_tar(src, weights, extra={"payload": Evil()})
    with pytest.raises(pickle.UnpicklingError, match="system"):
        convert_mica.convert(str(src), str(tmp_path / "evil.safetensors"))
    assert not os.path.exists(tmp_path / "evil.safetensors")
    assert convert_mica.main([str(tmp_path / "missing.tar")]) == 1


def _face_keypoints(seed):
    """The template moved by a seeded similarity plus pixel noise, in a 256 x 256 image."""
    rng = np.random.default_rng(seed)
    a, s = rng.uniform(-0.4, 0.4), rng.uniform(1.2, 2.0)
    R = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (ref.ARCFACE_DST @ R.T + rng.uniform(40, 80, 2) + rng.normal(0, 1.5, (5, 2))).astype(np.float32)


def test_similarity_matches_reference():
    for seed in range(20):
        kps = _face_keypoints(seed)
        got = identity.arcface_similarity(torch.from_numpy(kps)).numpy()
        want = ref.umeyama_similarity(kps)
        assert got.dtype == np.float64 and got.shape == (2, 3)
        np.testing.assert_allclose(got[:, :2], want[:, :2], rtol=0, atol=2e-6)
        np.testing.assert_allclose(got[:, 2], want[:, 2], rtol=0, atol=2e-4)
    # Exact template geometry maps onto the template.
    t = identity.arcface_template().numpy()
    np.testing.assert_array_equal(t, ref.ARCFACE_DST)
    M = identity.arcface_similarity(torch.from_numpy(t * 2 + 10)).numpy()
    np.testing.assert_allclose(M, [[0.5, 0, -5], [0, 0.5, -5]], atol=1e-4)


def test_alignment_bad_input():
    with pytest.raises(ValueError, match="expected 5 x 2, found \\[4, 2\\]"):
        identity.arcface_similarity(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="coincide"):
        identity.arcface_similarity(torch.ones(5, 2))
    with pytest.raises(ValueError, match="non-finite"):
        identity.arcface_similarity(torch.full((5, 2), float("nan")))
    with pytest.raises(ValueError, match="uint8"):
        identity.warp_arcface_crop(torch.zeros(10, 10, 3), torch.zeros(2, 3, dtype=torch.float64))


def test_warp_and_blob():
    g = torch.Generator().manual_seed(3)
    img = torch.randint(0, 256, (150, 140, 3), generator=g, dtype=torch.uint8)
    M = torch.tensor([[1.0, 0.0, -7.0], [0.0, 1.0, -11.0]], dtype=torch.float64)
    crop = identity.warp_arcface_crop(img, M)
    assert crop.shape == (112, 112, 3)
    assert torch.equal(crop, img[11:123, 7:119])
    blob = identity.arcface_blob(crop)
    np.testing.assert_array_equal(blob.numpy(), ref.arcface_blob(crop.numpy()))
    # Outside the image: the constant border 0.
    M[0, 2] = 100.0
    assert int(identity.warp_arcface_crop(img, M)[:, :100].max()) == 0


def test_identity_code_api(tmp_path, weights, blob):
    mica = identity.mica_from_state_dict(weights)
    g = torch.Generator().manual_seed(4)
    crop = torch.randint(0, 256, (112, 112, 3), generator=g, dtype=torch.uint8)
    want = ref.mica_forward(weights, torch.from_numpy(ref.arcface_blob(crop.numpy()))[None])[0]
    code = identity.identity_code(mica, crop.numpy())  # an aligned crop, no keypoints
    assert float((code - want).abs().max()) <= 1e-5 * float(want.abs().max())
    path = tmp_path / "crop.png"
    pixel3dmm.io.save_image(str(path), crop.permute(2, 0, 1).float() / 255)
    assert torch.equal(identity.identity_code(mica, str(path)), code)
    with pytest.raises(ValueError, match="aligned 112 x 112"):
        identity.identity_code(mica, torch.zeros(100, 100, 3, dtype=torch.uint8))
    # With keypoints: the template's own points leave the crop where it is.
    kps = identity.arcface_template()
    assert torch.equal(identity.arcface_input(crop, kps), identity.arcface_blob(crop))
    out = tmp_path / "identity.npy"
    identity.save_identity(str(out), code)
    saved = np.load(out)
    assert saved.dtype == np.float32 and saved.shape == (300,)
    np.testing.assert_array_equal(saved, code.numpy())


def test_frames_and_mean(weights):
    assert len(identity.frames_for_identity(25)) == 13
    assert len(identity.frames_for_identity(29)) == 15
    assert identity.frames_for_identity(5) == [0, 1, 2, 3, 4]
    mica = identity.mica_from_state_dict(weights)
    g = torch.Generator().manual_seed(5)
    crops = [torch.randint(0, 256, (112, 112, 3), generator=g, dtype=torch.uint8) for _ in range(3)]
    codes = torch.stack([identity.identity_code(mica, c) for c in crops])
    assert torch.allclose(identity.mean_identity(mica, crops), codes.mean(0), atol=1e-6)


@pytest.mark.skipif(not os.environ.get("PIXEL3DMM_BIN"), reason="PIXEL3DMM_BIN is not set (run through CTest)")
def test_cli_identity(tmp_path, weights):
    import subprocess

    bin_ = os.environ["PIXEL3DMM_BIN"]
    mica = identity.mica_from_state_dict(weights)
    identity.save_mica(mica, str(tmp_path / "mica.safetensors"))
    g = torch.Generator().manual_seed(6)
    image = torch.randint(0, 256, (160, 150, 3), generator=g, dtype=torch.uint8)
    pixel3dmm.io.save_image(str(tmp_path / "face.png"), image.permute(2, 0, 1).float() / 255)
    kps = _face_keypoints(7)
    np.save(tmp_path / "kps.npy", kps)
    out = tmp_path / "identity.npy"
    r = subprocess.run([bin_, "identity", str(tmp_path / "face.png"), "--mica", str(tmp_path / "mica.safetensors"),
                        "--keypoints", str(tmp_path / "kps.npy"), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(out), identity.identity_code(mica, image, kps).numpy(), rtol=0, atol=1e-6)
    # Keypoints for the wrong number of images: a bad-input exit naming the file and both shapes.
    np.save(tmp_path / "kps2.npy", np.stack([kps, kps]))
    r = subprocess.run([bin_, "identity", str(tmp_path / "face.png"), "--mica", str(tmp_path / "mica.safetensors"),
                        "--keypoints", str(tmp_path / "kps2.npy"), "--out", str(tmp_path / "x.npy")],
                       capture_output=True, text=True)
    assert r.returncode == 3 and "kps2.npy" in r.stderr and "[1, 5, 2]" in r.stderr and "[2, 5, 2]" in r.stderr
    assert not os.path.exists(tmp_path / "x.npy")


def test_keypoints_from_landmarks68():
    lmk = torch.rand(68, 2, generator=torch.Generator().manual_seed(8)) * 100
    kps = identity.keypoints_from_landmarks68(lmk[None])
    expected = torch.stack([lmk[36:42].mean(0), lmk[42:48].mean(0), lmk[30], lmk[48], lmk[54]])
    assert torch.allclose(kps, expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"68 x 2"):
        identity.keypoints_from_landmarks68(lmk[:60])


def test_identity_prior_sources(tmp_path, weights):
    assert not identity.IdentityPrior().enabled
    code = np.linspace(-1, 1, 300).astype(np.float32)
    np.save(tmp_path / "code.npy", code)
    given = identity.IdentityPrior(code=str(tmp_path / "code.npy"))
    assert given.enabled and str(tmp_path / "code.npy") in given.describe()
    np.testing.assert_array_equal(given.code(torch.zeros(1, 3, 8, 8), torch.zeros(1, 68, 2)).numpy(), code)
    np.save(tmp_path / "nan.npy", np.full(300, np.nan, np.float32))
    with pytest.raises(ValueError, match=r"nan\.npy.*NaN"):
        identity.IdentityPrior(code=str(tmp_path / "nan.npy"))
    np.save(tmp_path / "wide.npy", np.zeros((2, 300), np.float32))
    with pytest.raises(ValueError, match=r"wide\.npy.*\[2, 300\]"):
        identity.IdentityPrior(code=str(tmp_path / "wide.npy"))
    mica = identity.mica_from_state_dict(weights)
    identity.save_mica(mica, str(tmp_path / "mica.safetensors"))
    with pytest.raises(ValueError, match="not both"):
        identity.IdentityPrior(mica=str(tmp_path / "mica.safetensors"), code=str(tmp_path / "code.npy"))
    # MICA's code of a crop: the crop as 8-bit pixels, keypoints from its 68 landmarks.
    prior = identity.IdentityPrior(mica=str(tmp_path / "mica.safetensors"))
    crop = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(9))
    lmk = torch.from_numpy(_face_keypoints(10)).float()
    landmarks = torch.zeros(1, 68, 2)
    landmarks[0, 36:42], landmarks[0, 42:48], landmarks[0, 30], landmarks[0, 48], landmarks[0, 54] = lmk
    expected = identity.identity_code(mica, (crop[0] * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous(),
                                      lmk)
    assert torch.allclose(prior.code(crop, landmarks), expected, atol=1e-6)
    assert "MICA" in prior.describe() and "68 landmarks" in prior.describe()


@pytest.mark.skipif(not os.environ.get("PIXEL3DMM_BIN"), reason="PIXEL3DMM_BIN is not set (run through CTest)")
def test_fit_command_uses_the_identity_prior(tmp_path, weights):
    """`pixel3dmm fit --identity code.npy`: the identity starts at the code and stays near it; `--mica`: the prior
    is MICA's code of the saved crop; without either, the output says that no prior was used."""
    import json
    import subprocess

    bin_ = os.environ["PIXEL3DMM_BIN"]
    short = ["--set", "iters=4", "--set", "camera.steps=4", "--set", "camera.landmark_steps=2", "--set",
             "image_size=64"]

    def run(*args):
        return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=600)

    r = run("synth", "--count", 1, "--size", 128, "--out", tmp_path / "synth")
    assert r.returncode == 0, r.stderr
    case = tmp_path / "synth" / "0000"
    code = np.zeros(300, np.float32)
    code[0], code[1] = 1.5, -1.0
    np.save(tmp_path / "code.npy", code)

    def fitted(name, *extra):
        r = run("fit", case, "--out", tmp_path / name, *short, *extra)
        assert r.returncode == 0, r.stderr
        return r.stdout, json.loads((tmp_path / name / "0000" / "params.json").read_text())

    out, none = fitted("none")
    assert "no identity prior was used" in out and none["identity_prior"] is None
    out, given = fitted("given", "--identity", tmp_path / "code.npy")
    assert "identity prior: " in out
    np.testing.assert_allclose(given["identity_prior"]["values"], code, atol=1e-6)
    shape_none, shape_given = np.array(none["flame.shape"]["values"]), np.array(given["flame.shape"]["values"])
    assert abs(shape_given[0] - 1.5) < 0.3 and abs(shape_given[1] + 1.0) < 0.3
    assert abs(shape_none[0]) < 0.5 and abs(shape_none[1]) < 0.5
    out, off = fitted("off", "--identity", tmp_path / "code.npy", "--identity-prior", "none")
    assert "no identity prior was used" in out and off["identity_prior"] is None

    mica = identity.mica_from_state_dict(weights)
    identity.save_mica(mica, str(tmp_path / "mica.safetensors"))
    out, with_mica = fitted("mica", "--mica", tmp_path / "mica.safetensors")
    assert "identity prior: MICA" in out
    pre, _ = pixel3dmm.reconstruct.read_fit_inputs(str(case))
    expected = identity.IdentityPrior(mica=str(tmp_path / "mica.safetensors")).code(pre.crop, pre.landmarks)
    np.testing.assert_allclose(with_mica["identity_prior"]["values"], expected.numpy(), atol=1e-5)
    report = json.loads((tmp_path / "mica" / "0000" / "fit_report.json").read_text())
    assert report["identity_prior"].startswith("MICA")

    r = run("fit", case, "--mica", tmp_path / "mica.safetensors", "--identity", tmp_path / "code.npy")
    assert r.returncode == 2 and "give one" in r.stderr
    r = run("fit", case, "--identity-prior", "maybe")
    assert r.returncode == 2 and "--identity-prior" in r.stderr
