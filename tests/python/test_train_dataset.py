"""pixel3dmm.train from Python: the synthetic dataset, Dataset / check_dataset, and `pixel3dmm dataset`."""
import json
import os
import subprocess

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import fit, flame, train

SIZE = 64


def exe():
    path = os.environ.get("PIXEL3DMM_BIN")
    if not path:
        pytest.skip("PIXEL3DMM_BIN not set")
    return path


@pytest.fixture(scope="module")
def small_flame(tmp_path_factory):
    """A small synthetic FLAME-layout model file (1200 vertices): fast to render."""
    path = tmp_path_factory.mktemp("flame") / "small.npz"
    flame.synthetic_flame(vertices=1200, n_shape=10, n_expr=5).save(str(path))
    return path


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory, small_flame):
    folder = tmp_path_factory.mktemp("ds") / "synth"
    calls = []
    manifest = train.write_synthetic_dataset(folder, count=3, size=SIZE, seed=5, meshes=True, flame=small_flame,
                                             progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (3, 3)
    assert manifest == str(folder / "manifest.jsonl")
    return folder


def test_exports():
    assert pixel3dmm.Dataset is train.Dataset
    assert pixel3dmm.check_dataset is train.check_dataset
    assert "train" in pixel3dmm.__all__
    for name in train.__all__:
        assert hasattr(train, name)


def test_dataset_samples(dataset_dir):
    ds = train.Dataset(dataset_dir / "manifest.jsonl")
    assert len(ds) == 3
    assert "samples=3" in repr(ds)
    s = ds[0]
    assert s["id"] == "000000"
    assert s["image"].shape == (3, SIZE, SIZE) and s["image"].dtype == torch.float32
    assert s["uv"].shape == (2, SIZE, SIZE)
    assert s["normals"].shape == (3, SIZE, SIZE)
    assert s["mask"].shape == (1, SIZE, SIZE)
    assert set(torch.unique(s["mask"]).tolist()) == {0.0, 1.0}
    # The exact targets are what the .npy files hold (H x W x C).
    uv = np.load(dataset_dir / "uv" / "000000.npy")
    assert uv.shape == (SIZE, SIZE, 2) and uv.dtype == np.float32
    np.testing.assert_array_equal(s["uv"].permute(1, 2, 0).numpy(), uv)
    assert ds[-1]["id"] == ds[2]["id"]
    with pytest.raises(IndexError):
        ds[3]
    assert [x["id"] for x in ds] == ["000000", "000001", "000002"]  # iteration stops at IndexError
    e = ds.entry(1)
    assert e["line"] == 2 and e["id"] == "000001" and e["mesh"] is None
    assert e["image"] == os.path.join(ds.root, "rgb", "000001.png")


def test_mesh_samples_match(dataset_dir, small_flame):
    pre = train.Dataset(dataset_dir / "manifest.jsonl")
    mesh = train.Dataset.open(str(dataset_dir / "manifest_meshes.jsonl"), flame=small_flame)
    assert mesh.entry(0)["camera"]["K"][2] == [0.0, 0.0, 1.0]
    a, b = pre[1], mesh[1]
    both = a["mask"] * b["mask"]
    assert (a["mask"] == b["mask"]).float().mean() > 0.995
    assert torch.allclose(a["uv"] * both, b["uv"] * both, atol=1e-3)
    assert torch.allclose(a["normals"] * both, b["normals"] * both, atol=1e-3)


def test_render_synthetic_photo_is_deterministic():
    model = flame.synthetic_flame(vertices=1200, n_shape=10, n_expr=5)
    fitter = fit.Fitter(flame.Flame(model), {"n_shape": 10, "n_expr": 5})
    a = train.render_synthetic_photo(fitter, seed=1, index=2, size=SIZE)
    b = train.render_synthetic_photo(fitter, seed=1, index=2, size=SIZE)
    c = train.render_synthetic_photo(fitter, seed=1, index=3, size=SIZE)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["normals"], b["normals"])
    assert not torch.equal(a["image"], c["image"])
    assert a["vertices"].shape == (1, 1200, 3) and a["landmarks"].shape == (1, 68, 2)
    assert a["albedo"].shape == (1200, 3)
    assert a["params"].shape.shape == (1, 10)
    assert a["opencv_camera"]["K"].shape == (1, 3, 3)
    assert 0.0 <= float(a["alpha"].min()) and float(a["alpha"].max()) <= 1.0
    # The photo of given parameters: the same head (vertices, targets), another appearance.
    d = train.render_synthetic_photo(fitter, seed=9, size=SIZE, params=a["params"])
    assert torch.equal(d["vertices"], a["vertices"]) and torch.equal(d["uv"], a["uv"])
    assert not torch.equal(d["image"], a["image"])
    alb = train.synthetic_albedo(model, seed=4)
    assert alb.shape == (1200, 3) and float(alb.min()) >= 0 and float(alb.max()) <= 1


def test_check_dataset_lists_problems(dataset_dir, small_flame, tmp_path):
    assert train.check_dataset(dataset_dir / "manifest.jsonl") == []
    assert train.check_dataset(dataset_dir / "manifest_meshes.jsonl", flame=small_flame) == []
    wrong = train.check_dataset(dataset_dir / "manifest_meshes.jsonl")  # the 5023-vertex default model
    assert len(wrong) == 3 and "1200 vertices" in wrong[0].reason
    broken = tmp_path / "broken"
    train.write_synthetic_dataset(broken, count=3, size=SIZE, seed=5, flame=small_flame)
    os.remove(broken / "mask" / "000001.png")
    n = np.load(broken / "normals" / "000002.npy")
    n[5, 5, 1] = np.inf
    np.save(broken / "normals" / "000002.npy", n)
    seen = []
    problems = train.check_dataset(str(broken / "manifest.jsonl"), progress=lambda d, t: seen.append(d))
    assert seen[-1] == 3
    assert [(p.line, p.id) for p in problems] == [(2, "000001"), (3, "000002")]
    assert problems[0].reason == "missing file" and problems[0].file.endswith("000001.png")
    assert problems[1].reason.startswith("Inf in normals")
    assert str(problems[0]).startswith("line 2 (000001): ")
    with pytest.raises(FileNotFoundError, match=r"manifest.jsonl:2 \(000001\)"):
        train.Dataset(broken / "manifest.jsonl")[1]
    with pytest.raises(ValueError, match="Inf in normals"):
        train.Dataset(broken / "manifest.jsonl")[2]

    # The command line: every problem on its own line, a summary, exit code 3.
    r = subprocess.run([exe(), "dataset", "check", str(broken / "manifest.jsonl")], capture_output=True, text=True)
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "line 2 (000001): %s: missing file" % (broken / "mask" / "000001.png")
    assert lines[1].startswith("line 3 (000002): %s: Inf in normals" % (broken / "normals" / "000002.npy"))
    assert lines[-1].endswith("2 problem(s) in 2 of 3 samples")
    r = subprocess.run([exe(), "dataset", "check", str(dataset_dir / "manifest.jsonl")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 samples, no problems" in r.stdout
    # A manifest that does not parse.
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "image": "../a.png", "uv": "u.npy", "mask": "m.png"}\n')
    r = subprocess.run([exe(), "dataset", "check", str(bad)], capture_output=True, text=True)
    assert r.returncode == 3
    assert r.stdout.startswith("line 1: ") and "leaves the manifest's folder" in r.stdout
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*leaves the manifest's folder"):
        train.Dataset(bad)
    r = subprocess.run([exe(), "dataset", "check", str(tmp_path / "none.jsonl")], capture_output=True, text=True)
    assert r.returncode == 3 and "none.jsonl" in r.stdout + r.stderr
    r = subprocess.run([exe(), "dataset", "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown subcommand" in r.stderr


def test_dataset_synth_command(tmp_path, small_flame):
    out = tmp_path / "cli"
    r = subprocess.run([exe(), "dataset", "synth", str(out), "--count", "2", "--size", "48", "--seed", "3",
                        "--png-targets", "--flame", str(small_flame)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "wrote 2 synthetic samples (48 x 48, PNG targets)" in r.stdout
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(l)["uv"] for l in lines] == ["uv/000000.png", "uv/000001.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["cli"]  # no partial folder left behind
    ds = train.Dataset(out / "manifest.jsonl")
    assert ds[1]["image"].shape == (3, 48, 48)
    # Same seed: the same photos as the Python API writes.
    train.write_synthetic_dataset(tmp_path / "py", count=2, size=48, seed=3, png_targets=True, flame=small_flame)
    assert torch.equal(train.Dataset(tmp_path / "py" / "manifest.jsonl")[1]["image"], ds[1]["image"])
    r = subprocess.run([exe(), "dataset", "synth", str(out), "--count", "zero"], capture_output=True, text=True)
    assert r.returncode == 2 and "--count" in r.stderr
