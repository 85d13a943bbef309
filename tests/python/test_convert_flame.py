"""The FLAME converter on a tiny model pickled the way the official files are: Python-2-style protocol-2 pickles
(numpy buffers as latin-1 `str`), chumpy `Ch` / `reordering.Select` objects, a scipy CSC `J_regressor`, and a
landmark embedding whose dynamic arrays are pickled torch tensors inside a .npy. The fake classes below exist only
while the test pickles; the converter runs without chumpy or scipy (a test blocks their imports)."""
import io
import os
import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

from pixel3dmm import convert_flame

V, F, J, K = 14, 20, 5, 400


class Py2Pickler(pickle._Pickler):
    """Writes `bytes` as Python 2 `str` (BINSTRING), as the FLAME 2020 pickles (written by Python 2) do."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + n.to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_dumps(obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2, fix_imports=True).dump(obj)
    return buf.getvalue()


@pytest.fixture
def fake_chumpy_scipy(monkeypatch):
    """chumpy.ch.Ch, chumpy.reordering.Select and scipy.sparse.csc.csc_matrix look-alikes (state layout as the
    real classes pickle it)."""
    mods = {name: types.ModuleType(name) for name in
            ("chumpy", "chumpy.ch", "chumpy.reordering", "scipy", "scipy.sparse", "scipy.sparse.csc")}

    def make(module, name, base=object):
        cls = type(name, (base,), {})
        cls.__module__ = module
        cls.__qualname__ = name
        setattr(mods[module], name, cls)
        return cls

    Ch = make("chumpy.ch", "Ch")

    def ch_init(self, x):
        # What Ch.__getstate__ returns: __dict__ without _parents/_cache.
        self.__dict__.update(x=x, _dirty_vars=set(), _itr=None, _depends_on_deps={}, _make_dense=False,
                             _make_sparse=False)

    Ch.__init__ = ch_init
    Select = make("chumpy.reordering", "Select")

    def select_init(self, a, idxs, preferred_shape):
        self.__dict__.update(a=a, idxs=idxs, preferred_shape=preferred_shape, _dirty_vars=set(), _itr=None,
                             _depends_on_deps={}, _make_dense=False, _make_sparse=False)

    Select.__init__ = select_init
    Csc = make("scipy.sparse.csc", "csc_matrix")

    def csc_init(self, dense):
        cols = [np.nonzero(dense[:, j])[0] for j in range(dense.shape[1])]
        self.__dict__.update(
            data=np.concatenate([dense[c, j] for j, c in enumerate(cols)]),
            indices=np.concatenate(cols).astype(np.int32),
            indptr=np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int32),
            _shape=dense.shape, maxprint=50, format="csc")

    Csc.__init__ = csc_init
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return types.SimpleNamespace(Ch=Ch, Select=Select, csc_matrix=Csc)


def official_arrays(seed=0):
    rng = np.random.default_rng(seed)
    i = np.arange(F)
    faces = np.stack([i % V, (i + 1 + i // V) % V, (i + 3 + i // V) % V], 1).astype(np.uint32)  # distinct triangles
    jreg = np.zeros((J, V))
    for j in range(J):
        jreg[j, rng.choice(V, 4, replace=False)] = rng.random(4)
    jreg /= jreg.sum(1, keepdims=True)
    return {
        "v_template": rng.normal(size=(V, 3)) * 0.1,
        "f": faces,
        "shapedirs": rng.normal(size=(V, 3, K)) * 1e-3,
        "posedirs": rng.normal(size=(V, 3, 36)) * 1e-3,
        "J_regressor": jreg,
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "weights": rng.dirichlet(np.ones(J), size=V),
    }


def write_official_files(tmp_path, fake, arrays, obj_shuffle=False):
    """generic_model.pkl, landmark_embedding.npy, head_template.obj, eyelids, masks, as the official ones."""
    rng = np.random.default_rng(1)
    model = {
        "v_template": fake.Ch(arrays["v_template"]),
        "f": arrays["f"],
        "shapedirs": fake.Ch(arrays["shapedirs"]),
        "posedirs": fake.Ch(arrays["posedirs"]),
        "J_regressor": fake.csc_matrix(arrays["J_regressor"]),
        "kintree_table": arrays["kintree_table"],
        # A reordering view, as some chumpy-built models hold: weights selected out of a flat Ch.
        "weights": fake.Select(fake.Ch(arrays["weights"].ravel()), np.arange(V * J), (V, J)),
        "J": fake.Ch(arrays["J_regressor"] @ arrays["v_template"]),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    paths = {"model": tmp_path / "generic_model.pkl"}
    paths["model"].write_bytes(py2_dumps(model))

    emb = {
        "static_lmk_faces_idx": rng.integers(0, F, size=51).astype(np.int64),
        "static_lmk_bary_coords": rng.dirichlet(np.ones(3), size=51),
        # Pickled torch tensors; a permuted (non-contiguous) one exercises strides.
        "dynamic_lmk_faces_idx": torch.from_numpy(rng.integers(0, F, size=(79, 17))),
        "dynamic_lmk_bary_coords": torch.from_numpy(rng.dirichlet(np.ones(3), size=(17, 79)).astype(np.float32))
                                   .permute(1, 0, 2),
        "full_lmk_faces_idx": torch.from_numpy(rng.integers(0, F, size=(1, 68))),
        "full_lmk_bary_coords": torch.from_numpy(rng.dirichlet(np.ones(3), size=(1, 68))),
    }
    paths["landmarks"] = tmp_path / "landmark_embedding.npy"
    np.save(paths["landmarks"], emb, allow_pickle=True)

    # OBJ with seam duplicates: T = V + 2 texture coordinates, per-corner indices.
    vt = rng.random((V + 2, 2))
    ft = np.array(arrays["f"], np.int64)
    ft[0, 0] = V  # two corners use the duplicate coordinates
    ft[1, 2] = V + 1
    obj_faces, obj_ft = np.array(arrays["f"], np.int64), ft.copy()
    if obj_shuffle:  # another face order, and each face starting at another corner
        order = rng.permutation(F)
        obj_faces, obj_ft = np.roll(obj_faces[order], 1, axis=1), np.roll(obj_ft[order], 1, axis=1)
    lines = [f"v {x:.9f} {y:.9f} {z:.9f}" for x, y, z in arrays["v_template"]]
    lines += [f"vt {u:.9f} {w:.9f}" for u, w in vt]
    lines += [f"f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}" for (a, b, c), (ta, tb, tc) in
              zip(obj_faces, obj_ft)]
    paths["template"] = tmp_path / "head_template.obj"
    paths["template"].write_text("# test template\n" + "\n".join(lines) + "\n")

    eyelids = [rng.normal(size=(V, 3)) * 1e-3 for _ in range(2)]
    paths["l_eyelid"], paths["r_eyelid"] = tmp_path / "l_eyelid.npy", tmp_path / "r_eyelid.npy"
    np.save(paths["l_eyelid"], eyelids[0])
    np.save(paths["r_eyelid"], eyelids[1])
    masks = {"face": np.array([0, 3, 5], np.uint32), "left_eyeball": np.arange(8, 11)}
    paths["masks"] = tmp_path / "FLAME_masks.pkl"
    paths["masks"].write_bytes(py2_dumps(masks))
    mirror = np.arange(V)[::-1].copy()
    paths["mirror"] = tmp_path / "flame_mirror_index.npy"
    np.save(paths["mirror"], mirror)
    return paths, dict(emb=emb, vt=vt, ft=ft, eyelids=eyelids, masks=masks, mirror=mirror)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_converter(*args, capsys=None):
    """In-process through main() (fast) when capsys is given, else as `python -m pixel3dmm.convert_flame` in a
    fresh interpreter where the fake chumpy/scipy modules do not exist."""
    if capsys is not None:
        code = convert_flame.main([str(a) for a in args])
        out = capsys.readouterr()
        return Result(code, out.out, out.err)
    return subprocess.run([sys.executable, "-m", "pixel3dmm.convert_flame", *map(str, args)], capture_output=True,
                          text=True, env=dict(os.environ))


# Run in a fresh interpreter: a meta-path finder refuses chumpy and scipy (whether or not they are installed), checks
# that the refusal works, then runs the converter's main() on the files the fake classes pickled.
BLOCKED_IMPORTS_MAIN = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("chumpy", "scipy"):
            raise ImportError("blocked by the test: " + name)
        return None
sys.meta_path.insert(0, Refuse())
for name in [m for m in sys.modules if m.split(".")[0] in ("chumpy", "scipy")]:
    del sys.modules[name]
for name in ("chumpy", "scipy.sparse"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        sys.exit("the import block failed: " + name + " imported")
from pixel3dmm import convert_flame
sys.exit(convert_flame.main(sys.argv[1:]))
"""


def test_converts_without_chumpy_or_scipy(tmp_path, fake_chumpy_scipy):
    """The converter needs neither chumpy nor scipy: both are blocked in the converting process."""
    arrays = official_arrays()
    paths, _ = write_official_files(tmp_path, fake_chumpy_scipy, arrays)
    out = tmp_path / "flame.npz"
    r = subprocess.run([sys.executable, "-c", BLOCKED_IMPORTS_MAIN, str(paths["model"]), "--landmarks",
                        str(paths["landmarks"]), "-o", str(out)], capture_output=True, text=True,
                       env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    z = np.load(out, allow_pickle=False)
    np.testing.assert_array_equal(z["shapedirs"], arrays["shapedirs"])
    np.testing.assert_allclose(z["J_regressor"], arrays["J_regressor"], rtol=0, atol=0)


@pytest.mark.parametrize("obj_shuffle", [False, True])
def test_converts_every_array(tmp_path, fake_chumpy_scipy, obj_shuffle, capsys):
    arrays = official_arrays()
    paths, extra = write_official_files(tmp_path, fake_chumpy_scipy, arrays, obj_shuffle=obj_shuffle)
    out = tmp_path / "flame.npz"
    r = run_converter(paths["model"], "--landmarks", paths["landmarks"], "--template", paths["template"],
                      "--eyelids", paths["l_eyelid"], paths["r_eyelid"], "--masks", paths["masks"],
                      "--mirror", paths["mirror"], "-o", out, capsys=None if obj_shuffle else capsys)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    z = np.load(out, allow_pickle=False)
    np.testing.assert_array_equal(z["v_template"], arrays["v_template"])
    np.testing.assert_array_equal(z["f"], arrays["f"].astype(np.int64))
    assert z["f"].dtype == np.int64
    np.testing.assert_array_equal(z["shapedirs"], arrays["shapedirs"])
    assert int(z["n_shape_basis"]) == 300
    np.testing.assert_array_equal(z["posedirs"], arrays["posedirs"])
    np.testing.assert_allclose(z["J_regressor"], arrays["J_regressor"], rtol=0, atol=0)
    np.testing.assert_array_equal(z["kintree_table"], [[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(z["weights"], arrays["weights"])
    emb = extra["emb"]
    np.testing.assert_array_equal(z["static_lmk_faces_idx"], emb["static_lmk_faces_idx"])
    np.testing.assert_array_equal(z["static_lmk_bary_coords"], emb["static_lmk_bary_coords"])
    np.testing.assert_array_equal(z["dynamic_lmk_faces_idx"], emb["dynamic_lmk_faces_idx"].numpy())
    np.testing.assert_array_equal(z["dynamic_lmk_bary_coords"],
                                  emb["dynamic_lmk_bary_coords"].numpy().astype(np.float64))
    np.testing.assert_allclose(z["vt"], extra["vt"], atol=1e-9)
    np.testing.assert_array_equal(z["ft"], extra["ft"])  # in the model's face order and corner order
    # Per-vertex UVs: each vertex's first corner.
    assert z["vertex_uv"].shape == (V, 2)
    np.testing.assert_allclose(z["vertex_uv"][arrays["f"][0, 0]], extra["vt"][V], atol=1e-9)
    np.testing.assert_array_equal(z["l_eyelid"], extra["eyelids"][0])
    np.testing.assert_array_equal(z["r_eyelid"], extra["eyelids"][1])
    np.testing.assert_array_equal(z["mask.face"], [0, 3, 5])
    assert z["mask.face"].dtype == np.int64
    np.testing.assert_array_equal(z["mask.left_eyeball"], [8, 9, 10])
    np.testing.assert_array_equal(z["mirror_index"], extra["mirror"])
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_converted_file_loads_in_cpp(tmp_path, fake_chumpy_scipy, capsys):
    flame = pytest.importorskip("pixel3dmm.flame")
    arrays = official_arrays()
    paths, _ = write_official_files(tmp_path, fake_chumpy_scipy, arrays)
    out = tmp_path / "flame.npz"
    r = run_converter(paths["model"], "--landmarks", paths["landmarks"], "--template", paths["template"], "-o", out,
                      capsys=capsys)
    assert r.returncode == 0, r.stderr
    model = flame.FlameModel.load(str(out))
    assert model.n_vertices == V and model.n_shape_basis == 300 and model.n_expr_basis == 100
    np.testing.assert_array_equal(model.J_regressor.numpy(), arrays["J_regressor"])
    assert model.parents == [-1, 0, 1, 1, 1]


def test_python_api_returns_arrays(tmp_path, fake_chumpy_scipy):
    arrays = official_arrays()
    paths, _ = write_official_files(tmp_path, fake_chumpy_scipy, arrays)
    out = convert_flame.convert(str(paths["model"]), float32=True, n_shape_basis=350)
    assert out["shapedirs"].dtype == np.float32
    assert int(out["n_shape_basis"]) == 350
    assert "static_lmk_faces_idx" not in out  # only what was given
    emb = convert_flame.load_landmark_embedding(str(paths["landmarks"]))
    assert emb["full_lmk_bary_coords"].shape == (1, 68, 3)


def test_unsafe_pickle_is_refused(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    r = run_converter(bad, "-o", tmp_path / "x.npz", capsys=capsys)
    assert r.returncode == 3
    assert "refusing to load global" in r.stderr and "system" in r.stderr
    assert "pwned" not in r.stdout
    assert not (tmp_path / "x.npz").exists()


def test_errors_name_file_key_expected_and_found(tmp_path, fake_chumpy_scipy, capsys):
    arrays = official_arrays()
    del arrays["weights"]
    model = {k: (fake_chumpy_scipy.Ch(v) if k != "f" else v) for k, v in arrays.items()}
    path = tmp_path / "m.pkl"
    path.write_bytes(py2_dumps(model))
    r = run_converter(path, "-o", tmp_path / "x.npz", capsys=capsys)
    assert r.returncode == 3 and "m.pkl" in r.stderr and "'weights'" in r.stderr

    arrays = official_arrays()
    arrays["posedirs"] = arrays["posedirs"][:, :, :30]
    path.write_bytes(py2_dumps(arrays))
    r = run_converter(path, "-o", tmp_path / "x.npz", capsys=capsys)
    assert r.returncode == 3
    assert "'posedirs'" in r.stderr and "(14, 3, 36)" in r.stderr and "(14, 3, 30)" in r.stderr

    r = run_converter(tmp_path / "missing.pkl", "-o", tmp_path / "x.npz", capsys=capsys)
    assert r.returncode == 3 and "missing.pkl" in r.stderr

    good = tmp_path / "good.pkl"
    good.write_bytes(py2_dumps(official_arrays()))
    lm = tmp_path / "lm.npy"
    np.save(lm, np.zeros(3))
    r = run_converter(good, "--landmarks", lm, "-o", tmp_path / "x.npz", capsys=capsys)
    assert r.returncode == 3 and "lm.npy" in r.stderr and "pickled dict" in r.stderr
    assert not (tmp_path / "x.npz").exists()


def test_official_uv_vertex_set_is_stored_as_a_mask(tmp_path, fake_chumpy_scipy):
    # The official UV-loss vertex set (uv_valid_verty_noEyes_noEyeRegion_debug_wEars.npy) -> mask.uv_valid.
    arrays = official_arrays()
    paths, _ = write_official_files(tmp_path, fake_chumpy_scipy, arrays)
    ids = tmp_path / "uv_valid.npy"
    np.save(ids, np.array([1, 4, 6], np.int32))
    out = convert_flame.convert(str(paths["model"]), uv_vertices=str(ids))
    np.testing.assert_array_equal(out["mask.uv_valid"], [1, 4, 6])
    assert out["mask.uv_valid"].dtype == np.int64
    for bad, expected in ((np.array([1, V]), f"[0, {V})"), (np.array([1, 1]), "unique"),
                          (np.array([0.5, 1.0]), "integer"), (np.zeros((2, 2), np.int64), "1-D")):
        np.save(ids, bad)
        with pytest.raises(ValueError, match="uv_valid") as e:
            convert_flame.convert(str(paths["model"]), uv_vertices=str(ids))
        assert "uv_valid.npy" in str(e.value) and expected in str(e.value)
