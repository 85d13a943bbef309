"""The bad-input matrix of docs/reliability.md: every row whose test lives here is one parametrised case of
test_bad_input[<row id>]. Each case feeds one hostile or broken input through the Python API, the command line or a
file reader and checks what the user sees: the exception type (or exit code) and the words that name the culprit.
"""
import io
import json
import os
import pickle
import struct
import subprocess
import zlib

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import fit, flame, train
from pixel3dmm import io as pio
from pixel3dmm import restricted_pickle as rp

BIN = os.environ.get("PIXEL3DMM_BIN")


def st_bytes(header: dict, data: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def npy_bytes(header: str, data: bytes = b"") -> bytes:
    h = header.encode()
    h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


def png_bytes(width: int, height: int) -> bytes:
    """A PNG signature and IHDR declaring width x height (8-bit RGB) and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def raises(exc, *fragments, fn):
    with pytest.raises(exc) as info:
        fn()
    for f in fragments:
        assert f in str(info.value), (f, str(info.value))


def write(tmp, name, data):
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(p)


def cli(*args, cwd=None):
    if not BIN:
        pytest.skip("PIXEL3DMM_BIN is not set (run through CTest)")
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)
    return p.returncode, p.stdout, p.stderr


def cli_fails(code, *fragments, args, cwd=None):
    rc, out, err = cli(*args, cwd=cwd)
    assert rc == code, (rc, out, err)
    for f in fragments:
        assert f in err, (f, err)


def manifest(tmp, line, name="m.jsonl"):
    return write(tmp, name, (line if isinstance(line, str) else json.dumps(line)) + "\n")


def small_fitter(**config):
    model = flame.synthetic_flame(vertices=1200, n_shape=10, n_expr=5)
    settings = {"image_size": 64, "n_shape": 10, "n_expr": 5, "iters": 10,
                "camera": {"steps": 10, "landmark_steps": 5}}
    settings.update(config)
    return fit.Fitter(flame.Flame(model), settings)


def target_with_landmarks(fitter, scale):
    truth = fit.random_params(1, 10, 5, seed=3)
    t = fit.synthetic_target(fitter, truth, size=64, outlier_fraction=0.0)["target"]
    return fit.FitTarget(uv=t.uv, normals=t.normals, uv_mask=t.uv_mask, normal_mask=t.normal_mask,
                         landmarks=torch.full((1, 68, 2), scale))


# ---- one function per row: (tmp) -> None ----

CASES = {}


def case(row_id):
    def register(fn):
        CASES[row_id] = fn
        return fn
    return register


# safetensors
@case("safetensors-empty-file")
def _(tmp):
    raises(ValueError, "e.safetensors", fn=lambda: pio.load_safetensors(write(tmp, "e.safetensors", b"")))


@case("safetensors-missing-file")
def _(tmp):
    raises(FileNotFoundError, "nope.safetensors", fn=lambda: pio.load_safetensors(str(tmp / "nope.safetensors")))


@case("safetensors-header-length-2^63")
def _(tmp):
    p = write(tmp, "h.safetensors", struct.pack("<Q", 1 << 63) + b"{}")
    raises(ValueError, "h.safetensors", "header length", fn=lambda: pio.load_safetensors(p))


@case("safetensors-header-nested-100")
def _(tmp):
    header = ('{"__metadata__": {"a": ' + nested(100) + "}}").encode()
    p = write(tmp, "n.safetensors", struct.pack("<Q", len(header)) + header)
    raises(ValueError, "n.safetensors", "nested deeper", fn=lambda: pio.load_safetensors(p))


@case("safetensors-shape-overflow")
def _(tmp):
    p = write(tmp, "o.safetensors",
              st_bytes({"x": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 4]}}, b"\0" * 4))
    raises(ValueError, "o.safetensors", "'x'", fn=lambda: pio.load_safetensors(p))


@case("safetensors-dtype-unknown")
def _(tmp):
    p = write(tmp, "d.safetensors", st_bytes({"x": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4))
    raises(ValueError, "d.safetensors", "'x'", "Q7", fn=lambda: pio.load_safetensors(p))


# npy / npz
@case("npy-truncated-magic")
def _(tmp):
    raises(ValueError, "t.npy", fn=lambda: pio.load_npy(write(tmp, "t.npy", b"\x93NUM")))


@case("npy-shape-1e12-in-tiny-file")
def _(tmp):
    p = write(tmp, "big.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"))
    raises(ValueError, "big.npy", fn=lambda: pio.load_npy(p))


@case("npy-object-dtype")
def _(tmp):
    p = write(tmp, "obj.npy", npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8))
    raises(ValueError, "obj.npy", "|O", fn=lambda: pio.load_npy(p))


@case("npz-not-a-zip")
def _(tmp):
    raises(ValueError, "r.npz", fn=lambda: pio.load_npz(write(tmp, "r.npz", os.urandom(64))))


@case("npz-member-bad-crc")
def _(tmp):
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(10.0))
    data = bytearray(buf.getvalue())
    i = data.rfind(np.arange(10.0).tobytes()[-8:])
    data[i] ^= 0xFF
    raises(ValueError, "c.npz", fn=lambda: pio.load_npz(write(tmp, "c.npz", bytes(data))))


# meshes
@case("ply-element-count-4e9")
def _(tmp):
    p = write(tmp, "v.ply", "ply\nformat binary_little_endian 1.0\nelement vertex 4000000000\nproperty float x\n"
              "property float y\nproperty float z\nelement face 0\nproperty list uchar int vertex_indices\n"
              "end_header\n")
    raises(ValueError, "v.ply", fn=lambda: pio.load_mesh(p))


@case("ply-face-index-out-of-range")
def _(tmp):
    p = write(tmp, "f.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
              "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
              "0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
    raises(ValueError, "f.ply", fn=lambda: pio.load_mesh(p))


@case("ply-no-end-header")
def _(tmp):
    raises(ValueError, "h.ply", fn=lambda: pio.load_mesh(write(tmp, "h.ply", "ply\nformat ascii 1.0\nelement vertex 1\n")))


@case("obj-face-index-zero")
def _(tmp):
    p = write(tmp, "z.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n")
    raises(ValueError, "z.obj:4", fn=lambda: pio.load_mesh(p))


@case("obj-nan-vertex")
def _(tmp):
    p = write(tmp, "n.obj", "v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    raises(ValueError, "n.obj:1", fn=lambda: pio.load_mesh(p))


@case("obj-face-index-past-vertices")
def _(tmp):
    p = write(tmp, "p.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    raises(ValueError, "p.obj:4", fn=lambda: pio.load_mesh(p))


@case("mesh-unknown-extension")
def _(tmp):
    raises(ValueError, "m.stl", fn=lambda: pio.load_mesh(write(tmp, "m.stl", "solid x\n")))


# images
@case("image-text-named-png")
def _(tmp):
    raises(ValueError, "t.png", fn=lambda: pio.load_image(write(tmp, "t.png", "not a picture")))


@case("image-png-bomb-100000x100000")
def _(tmp):
    p = write(tmp, "bomb.png", png_bytes(100000, 100000))
    raises(ValueError, "bomb.png", fn=lambda: pio.load_image(p))


@case("image-over-configured-limit")
def _(tmp):
    p = str(tmp / "ok.png")
    pio.save_image(p, torch.rand(1, 3, 20, 20))
    old = pio.max_image_pixels()
    pio.set_max_image_pixels(100)
    try:
        raises(ValueError, "ok.png", fn=lambda: pio.load_image(p))
    finally:
        pio.set_max_image_pixels(old)
    assert pio.load_image(p).shape == (1, 3, 20, 20)


@case("image-limit-from-environment")
def _(tmp):
    p = str(tmp / "ok.png")
    pio.save_image(p, torch.rand(1, 3, 20, 20))
    code = f"import pixel3dmm.io as i; i.load_image({p!r})"
    env = dict(os.environ, PIXEL3DMM_MAX_IMAGE_PIXELS="100")
    r = subprocess.run([os.sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "ValueError" in r.stderr and "ok.png" in r.stderr, r.stderr


# JSON configs
@case("json-syntax-error")
def _(tmp):
    raises(ValueError, "c.json:2:", fn=lambda: pio.load_config(write(tmp, "c.json", '{"a": 1,\n "b": }')))


@case("json-number-overflow")
def _(tmp):
    raises(ValueError, "big.json", "number overflow",
           fn=lambda: pio.load_config(write(tmp, "big.json", '{"a": [1, -3e3192]}')))


@case("json-nested-100")
def _(tmp):
    raises(ValueError, "deep.json", "nested deeper than 64",
           fn=lambda: pio.load_config(write(tmp, "deep.json", '{"a": ' + nested(100) + "}")))


@case("json-nested-60-accepted")
def _(tmp):
    assert pio.load_config(write(tmp, "ok.json", '{"a": ' + nested(60) + "}"))["a"] is not None


@case("fit-config-unknown-key")
def _(tmp):
    raises(ValueError, "iter", "did you mean", fn=lambda: fit.Fitter(flame.Flame(flame.synthetic_flame(
        vertices=1200, n_shape=4, n_expr=2)), {"iter": 3}))


# dataset manifests
@case("manifest-path-escapes-root")
def _(tmp):
    m = manifest(tmp / "d", {"id": "a", "image": "../secret.png", "uv": "u.png", "mask": "m.npy"})
    raises(ValueError, "m.jsonl:1", "../secret.png", fn=lambda: train.Dataset(m))


@case("manifest-absolute-path")
def _(tmp):
    m = manifest(tmp / "d", {"id": "a", "image": "/etc/passwd", "uv": "u.png", "mask": "m.npy"})
    raises(ValueError, "m.jsonl:1", "/etc/passwd", fn=lambda: train.Dataset(m))


@case("manifest-symlink-out-of-root")
def _(tmp):
    (tmp / "outside.png").write_bytes(b"x")
    (tmp / "d").mkdir()
    os.symlink(tmp / "outside.png", tmp / "d" / "link.png")
    m = manifest(tmp / "d", {"id": "a", "image": "link.png", "uv": "u.png", "mask": "m.npy"})
    raises(ValueError, "m.jsonl:1", "link.png", fn=lambda: train.Dataset(m))


@case("manifest-nested-camera")
def _(tmp):
    m = manifest(tmp / "d", '{"id": "a", "image": "i.png", "mesh": "m.ply", "camera": ' + nested(50) + "}")
    raises(ValueError, "m.jsonl:1", "nested deeper", fn=lambda: train.Dataset(m))


@case("manifest-duplicate-id")
def _(tmp):
    line = json.dumps({"id": "a", "image": "i.png", "uv": "u.png", "mask": "m.npy"})
    m = write(tmp / "d", "m.jsonl", line + "\n" + line + "\n")
    raises(ValueError, "m.jsonl:2", "duplicate id", fn=lambda: train.Dataset(m))


@case("manifest-not-json")
def _(tmp):
    raises(ValueError, "m.jsonl:1", "invalid JSON", fn=lambda: train.Dataset(manifest(tmp / "d", "{id: a")))


@case("eval-case-name-escapes-output")
def _(tmp):
    line = {"name": "../../escape", "gt_posed": "a.ply", "gt_neutral": "b.ply"}
    bench = write(tmp / "bench", "cases.jsonl", json.dumps(line) + "\n")
    model = flame.synthetic_flame(vertices=1200, n_shape=4, n_expr=2)
    raises(ValueError, "cases.jsonl line 1", "must be a plain file name",
           fn=lambda: pixel3dmm.eval.run_benchmark(bench, flame.Flame(model), out=str(tmp / "out")))
    assert not (tmp / "escape_posed.ply").exists() and not (tmp / "out").exists()


# FLAME files
@case("flame-wrong-layout")
def _(tmp):
    p = str(tmp / "f.npz")
    np.savez(p, v_template=np.zeros((10, 3)), f=np.zeros((4, 3), np.int64))
    raises(ValueError, "f.npz", fn=lambda: flame.FlameModel.load(p))


@case("flame-nan-template")
def _(tmp):
    model = flame.synthetic_flame(vertices=1200, n_shape=4, n_expr=2)
    p = str(tmp / "nan.safetensors")
    model.save(p)
    tensors = pio.load_safetensors(p)
    tensors["v_template"][0, 0] = float("nan")
    pio.save_safetensors(p, tensors)
    raises(ValueError, "nan.safetensors", "v_template", "non-finite", fn=lambda: flame.FlameModel.load(p))


# pickles (FLAME / checkpoint converters)
@case("pickle-os-system")
def _(tmp):
    raises(rp.RefusedGlobal, "system", fn=lambda: rp.load(write(tmp, "e.pkl", b"cos\nsystem\n(S'true'\ntR.")))


@case("pickle-getattr-escape")
def _(tmp):
    data = b"cbuiltins\ngetattr\n(cbuiltins\ngetattr\nS'__self__'\ntR."
    raises(rp.RefusedGlobal, "builtins.getattr", fn=lambda: rp.load(write(tmp, "g.pkl", data)))


@case("pickle-bytes-bomb")
def _(tmp):
    raises(ValueError, "b.pkl: not a readable pickle", "would allocate",
           fn=lambda: rp.load(write(tmp, "b.pkl", b"cbuiltins\nbytes\n(I100000000000\ntR.")))


@case("pickle-bytearray8-length-beyond-file")
def _(tmp):
    data = b"\x80\x05\x96" + (1 << 40).to_bytes(8, "little") + b"abc."
    raises(ValueError, "l.pkl: not a readable pickle", "corrupt pickle", fn=lambda: rp.load(write(tmp, "l.pkl", data)))


@case("pickle-truncated")
def _(tmp):
    data = pickle.dumps({"a": np.arange(100.0)}, protocol=2)[:-40]
    raises(ValueError, "t.pkl", fn=lambda: rp.load(write(tmp, "t.pkl", data)))


# fitting: numerical faults
@case("fit-nan-prediction")
def _(tmp):
    fitter = small_fitter()
    t = target_with_landmarks(fitter, 10.0)
    uv = t.uv.clone()
    uv[0, 0, 5, 5] = float("inf")
    bad = fit.FitTarget(uv=uv, normals=t.normals, uv_mask=t.uv_mask, normal_mask=t.normal_mask)
    raises(ValueError, "target 0 uv", "non-finite", fn=lambda: fitter.fit(bad))


@case("fit-loss-overflows-raises")
def _(tmp):
    fitter = small_fitter()
    raises(RuntimeError, "camera-stage step 0", "non-finite loss", "lmk68",
           fn=lambda: fitter.fit(target_with_landmarks(fitter, 3e38)))


@case("fit-loss-overflows-keeps-last-good")
def _(tmp):
    fitter = small_fitter(stop_on_numerical_fault=True, camera={"steps": 10, "landmark_steps": 5, "lr_t": 3e37})
    r = fitter.fit(target_with_landmarks(fitter, 10.0))
    assert r.fault == "non-finite parameters after camera-stage step 0 (t)", r.fault
    assert r.iterations == len(r.log) == 0
    assert torch.equal(r.params.translation, torch.zeros_like(r.params.translation))
    for name in ("shape", "expression", "rotation", "translation", "focal"):
        assert torch.isfinite(getattr(r.params, name)).all(), name
    assert torch.isfinite(r.vertices).all()


@case("fit-learning-rate-beyond-float")
def _(tmp):
    raises(ValueError, "fit.lr.shape", "3.4e38", "1e+39", fn=lambda: small_fitter(lr={"shape": 1e39}))
    raises(ValueError, "fit.camera.lr_t", "found -1", fn=lambda: small_fitter(camera={"lr_t": -1.0}))


@case("fit-config-integer-beyond-64-bits")
def _(tmp):
    raises(ValueError, "'iters'", "expected an integer in range", fn=lambda: small_fitter(iters=10**30))


@case("config-infinite-number")
def _(tmp):
    raises(ValueError, "key 'lr.shape'", "inf is not a finite number",
           fn=lambda: small_fitter(lr={"shape": float("inf")}))
    raises(ValueError, "key 'global.lr_decay[1]'", "nan is not a finite number",
           fn=lambda: pixel3dmm.Tracker(flame.Flame(flame.synthetic_flame(vertices=1200, n_shape=10, n_expr=5)),
                                        {"global": {"lr_decay": [0.5, float("nan"), 0.2]}}))


@case("train-learning-rate-beyond-float")
def _(tmp):
    net = pixel3dmm.nn.official_config("uv_map")
    net["image_size"] = 32
    net["backbone"].update(embed_dim=32, depth=1, num_heads=2, img_size=32)
    net["head"].update(in_dim=32, n_views=1, embedding_dim=16, num_layers=1, num_heads=2)
    recipe = {"network": net,
              "data": {"synthetic": {"count": 2, "val_count": 1, "size": 32, "seed": 0, "folder": str(tmp / "d")}},
              "trainer": {"steps": 1, "batch_size": 1, "lr": 1e39}}
    raises(ValueError, "trainer option lr", "3.4e38", fn=lambda: pixel3dmm.Trainer(recipe, tmp / "run"))


# command line
@case("cli-unknown-subcommand")
def _(tmp):
    cli_fails(2, "frobnicate", args=["frobnicate"])


@case("cli-dataset-check-escaping-manifest")
def _(tmp):
    m = manifest(tmp / "d", {"id": "a", "image": "../x.png", "uv": "u.png", "mask": "m.npy"})
    rc, out, err = cli("dataset", "check", m)
    assert rc == 3, (rc, out, err)
    assert "line 1" in out + err and "m.jsonl" in out + err and "../x.png" in out + err, (out, err)


@case("cli-train-nested-recipe")
def _(tmp):
    r = write(tmp, "recipe.json", '{"trainer": ' + nested(100) + "}")
    cli_fails(3, "recipe.json", "nested deeper", args=["train", r, "--out", tmp / "run"])
    assert not (tmp / "run").exists()


@case("cli-fit-missing-folder")
def _(tmp):
    cli_fails(3, "nope", args=["fit", tmp / "nope", "--out", tmp / "out"])


@pytest.mark.parametrize("row", sorted(CASES))
def test_bad_input(row, tmp_path):
    CASES[row](tmp_path)


def test_matrix_lists_every_row():
    """docs/reliability.md names every case of this file (and the file names no case that does not exist)."""
    root = os.environ.get("PIXEL3DMM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    doc = open(os.path.join(root, "docs", "reliability.md"), encoding="utf-8").read()
    import re
    named = set(re.findall(r"test_bad_input\[([^\]]+)\]", doc))
    assert named == set(CASES), (sorted(set(CASES) - named), sorted(named - set(CASES)))
