"""Convert the official FLAME files into pixel3dmm's FLAME ``.npz`` layout (docs/flame.md), without chumpy or scipy.

Usage::

    /usr/bin/python3 -m pixel3dmm.convert_flame generic_model.pkl --landmarks landmark_embedding.npy \\
        --template head_template.obj [--eyelids l_eyelid.npy r_eyelid.npy] [--masks FLAME_masks.pkl] \\
        [--vertex-uv flame_uv_coords.npy] [--mirror flame_mirror_index.npy] \\
        [--uv-vertices uv_valid_verty_noEyes_noEyeRegion_debug_wEars.npy] -o flame.npz

What it reads:

* ``generic_model.pkl`` (FLAME 2020) or ``flame2023*.pkl``: Python 2 pickles whose arrays are chumpy objects
  (``chumpy.ch.Ch`` holding ``x``; ``chumpy.reordering.*`` views holding ``a``) and whose ``J_regressor`` is a
  ``scipy.sparse`` CSC matrix. A restricted unpickler maps those classes to inert stand-ins (nothing from the
  pickle runs) and rebuilds plain NumPy arrays from their pickled state.
* ``landmark_embedding.npy``: a pickled dict inside a ``.npy`` whose dynamic contour arrays are pickled torch
  tensors. The tensors are rebuilt as NumPy arrays from torch's legacy serialisation bytes, again without running
  anything from the file (torch is not needed).
* ``head_template.obj``: texture coordinates (``vt``) and the per-corner texture indices of each face.
* ``l_eyelid.npy`` / ``r_eyelid.npy`` (plain float arrays), ``FLAME_masks.pkl`` (a dict of index arrays),
  ``flame_uv_coords.npy``, ``flame_mirror_index.npy`` and ``uv_valid_verty_noEyes_noEyeRegion_debug_wEars.npy``
  (plain arrays from the Pixel3DMM repository; the last, the official UV-loss vertex set of 2473 ids, is stored as
  the vertex mask ``mask.uv_valid`` that the fit uses instead of its own set).
"""
import argparse
import io
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .restricted_pickle import (_SAFE_GLOBALS, RefusedGlobal, RestrictedUnpickler, Stub, guarded_reconstruct,
                                refuse_large, stub_class)
from .restricted_pickle import load as load_pickle  # one file-reading path for every pickle the converters read

# ---------------------------------------------------------------------------------------------------------------
# chumpy / scipy stand-ins

_CHUMPY_CLASSES = {
    "chumpy.ch": ["Ch"],
    "chumpy.reordering": ["Select", "transpose", "Reshape", "Concatenate", "Permute", "Reorder"],
}
_SPARSE_CLASSES = [(mod, name) for name in ("csc_matrix", "csr_matrix")
                   for mod in ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr", "scipy.sparse._csr",
                               "scipy.sparse")]


# The allow-list's checked numpy scalar (plain dtypes, exact byte count), also under NumPy 2's module path.
_SAFE_SCALAR = _SAFE_GLOBALS[("numpy.core.multiarray", "scalar")]


def _stub_globals() -> Dict[Tuple[str, str], Any]:
    allowed: Dict[Tuple[str, str], Any] = {}
    for module, names in _CHUMPY_CLASSES.items():
        for name in names:
            allowed[(module, name)] = stub_class(module, name)
    for module, name in _SPARSE_CLASSES:
        allowed[(module, name)] = stub_class(module, name)
    # NumPy 2 writes numpy._core paths; the official files predate it, but converted copies may not.
    allowed[("numpy._core.multiarray", "_reconstruct")] = guarded_reconstruct
    allowed[("numpy._core.multiarray", "scalar")] = _SAFE_SCALAR
    return allowed


def _sparse_to_dense(state: Dict[str, Any], kind: str, where: str) -> np.ndarray:
    try:
        data = np.asarray(state["data"])
        indices = np.asarray(state["indices"], dtype=np.int64)
        indptr = np.asarray(state["indptr"], dtype=np.int64)
        shape = tuple(int(s) for s in state.get("_shape", state.get("shape")))
    except (KeyError, TypeError) as e:
        raise ValueError(f"{where}: sparse matrix state lacks data/indices/indptr/_shape ({e})") from None
    fmt = state.get("format", kind)
    if len(shape) != 2 or len(indices) != len(data):
        raise ValueError(f"{where}: inconsistent sparse matrix (shape {shape}, {len(indices)} indices, "
                         f"{len(data)} values)")
    dense = np.zeros(shape, dtype=data.dtype if data.dtype.kind == "f" else np.float64)
    outer = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    if fmt == "csc":
        np.add.at(dense, (indices, outer), data)  # duplicates add up, as in scipy
    elif fmt == "csr":
        np.add.at(dense, (outer, indices), data)
    else:
        raise ValueError(f"{where}: unsupported sparse format '{fmt}'")
    return dense


def to_array(obj: Any, where: str) -> np.ndarray:
    """A plain NumPy array from an ndarray, a chumpy stand-in or a scipy sparse stand-in (recursively)."""
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, Stub):
        name = type(obj).qualname
        state = obj.state if isinstance(obj.state, dict) else {}
        if name.endswith(("csc_matrix", "csr_matrix")):
            return _sparse_to_dense(state, name[-10:-7], where)
        if name == "chumpy.ch.Ch":
            if "x" not in state:
                raise ValueError(f"{where}: chumpy Ch object without an 'x' array")
            return np.asarray(to_array(state["x"], where))
        if name.startswith("chumpy.reordering."):
            kind = name.rsplit(".", 1)[1]
            if kind == "Concatenate":
                parts = [to_array(state[k], where) for k in state.get("dterms", [])]
                return np.concatenate(parts, axis=state.get("axis", 0))
            if "a" not in state:
                raise ValueError(f"{where}: chumpy {kind} object without its input 'a'")
            a = to_array(state["a"], where)
            if kind == "Select":
                r = a.ravel()[np.asarray(state["idxs"]).ravel()]
                shape = state.get("preferred_shape")
                return r.reshape(shape) if shape is not None else r
            if kind == "transpose":
                return np.ascontiguousarray(np.transpose(a, axes=state.get("axes")))
            if kind == "Reshape":
                return a.reshape(state["newshape"])
            raise ValueError(f"{where}: unsupported chumpy operation '{kind}'")
        raise ValueError(f"{where}: cannot turn a {name} into an array")
    if isinstance(obj, (list, tuple, int, float)):
        return np.asarray(obj)
    raise ValueError(f"{where}: expected an array, found {type(obj).__name__}")


def load_flame_pickle(path: str) -> Dict[str, np.ndarray]:
    """The arrays of an official FLAME model pickle (chumpy / scipy objects turned into NumPy arrays)."""
    raw = load_pickle(path, allowed=_stub_globals())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a pickled dict of FLAME arrays, found {type(raw).__name__}")
    out = {}
    for key, value in raw.items():
        if isinstance(value, str) or value is None:
            continue  # bs_style / bs_type strings
        try:
            out[key] = to_array(value, f"{path}: key '{key}'")
        except ValueError:
            if key in _REQUIRED_PKL_KEYS:
                raise
    return out


_REQUIRED_PKL_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights")

# ---------------------------------------------------------------------------------------------------------------
# landmark_embedding.npy: a pickled dict whose dynamic arrays are torch tensors

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str, dtype):
        self.name, self.dtype = name, np.dtype(dtype)


class _StorageRef:
    def __init__(self, key: str, view: Optional[tuple]):
        self.key, self.view = key, view


def _load_storage_bytes(data: bytes) -> np.ndarray:
    """A storage from torch's legacy serialisation (what pickling a torch storage embeds), as a 1-D array."""
    f = io.BytesIO(data)
    types = {("torch", name): _StorageType(name, dt) for name, dt in _STORAGE_DTYPES.items()}
    plain = lambda: RestrictedUnpickler(f, source="<torch storage>").load()  # noqa: E731
    if plain() != _LEGACY_MAGIC:
        raise ValueError("not a torch legacy serialisation (bad magic number)")
    plain()  # protocol version
    sys_info = plain()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise ValueError("big-endian torch storages are not supported")
    found: Dict[str, list] = {}

    class Unpickler(RestrictedUnpickler):
        def persistent_load(self, pid):
            if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
                raise ValueError(f"unexpected persistent id {pid!r}")
            stype, key, numel = pid[1], str(pid[2]), int(pid[4])
            if not isinstance(stype, _StorageType):
                raise ValueError(f"unexpected storage type {stype!r}")
            found.setdefault(key, [stype.dtype, numel])
            return _StorageRef(key, pid[5] if len(pid) > 5 else None)

    ref = Unpickler(f, allowed=types, source="<torch storage>").load()
    keys = plain()
    arrays = {}
    for key in keys:
        dtype, numel = found[str(key)]
        n = int.from_bytes(f.read(8), "little")
        raw = f.read(n * dtype.itemsize)
        if n != numel or len(raw) != n * dtype.itemsize:
            raise ValueError(f"truncated torch storage '{key}'")
        arrays[str(key)] = np.frombuffer(raw, dtype=dtype).copy()
    if not isinstance(ref, _StorageRef):
        raise ValueError("the pickled object is not a storage")
    arr = arrays[ref.key]
    if ref.view is not None:  # (view_key, offset, size)
        _, offset, size = ref.view
        arr = arr[int(offset):int(offset) + int(size)]
    return arr


def _rebuild_tensor(storage, storage_offset, size, stride, *unused) -> np.ndarray:
    if not isinstance(storage, np.ndarray):
        raise ValueError("tensor without a storage")
    itemsize = storage.dtype.itemsize
    base = storage[int(storage_offset):]
    needed = 1 + sum((int(n) - 1) * int(s) for n, s in zip(size, stride)) if all(int(n) > 0 for n in size) else 0
    if needed > len(base):
        raise ValueError("tensor reaches past its storage")
    # A stride of 0 lets a one-element storage declare any size; the copy below would allocate all of it.
    refuse_large("a pickled tensor", int(np.prod([int(n) for n in size], dtype=object)) * itemsize)
    return np.lib.stride_tricks.as_strided(base, shape=tuple(int(n) for n in size),
                                           strides=tuple(int(s) * itemsize for s in stride)).copy()


class _TensorType:
    pass


def _rebuild_from_type(func, cls, args, state):
    return func(*args)


def _torch_globals() -> Dict[Tuple[str, str], Any]:
    return {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
        ("torch", "Tensor"): _TensorType,
        ("numpy._core.multiarray", "_reconstruct"): guarded_reconstruct,
        ("numpy._core.multiarray", "scalar"): _SAFE_SCALAR,
    }


def load_landmark_embedding(path: str) -> Dict[str, np.ndarray]:
    """The dict inside ``landmark_embedding.npy`` with every value (NumPy array or torch tensor) as NumPy."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(f)
        except ValueError as e:
            raise ValueError(f"{path}: not a .npy file ({e})") from None
        if dtype != np.dtype(object) or shape != ():
            raise ValueError(f"{path}: expected a pickled dict (0-d object array), found dtype {dtype} shape {shape}")
        try:
            obj = RestrictedUnpickler(f, allowed=_torch_globals(), source=path).load()
        except RefusedGlobal:
            raise
        except Exception as e:
            raise ValueError(f"{path}: not a readable landmark embedding ({type(e).__name__}: {e})") from e
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj[()]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, found {type(obj).__name__}")
    return {k: to_array(v, f"{path}: key '{k}'") for k, v in obj.items()}


# ---------------------------------------------------------------------------------------------------------------
# OBJ texture coordinates

def read_obj(path: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(v (N,3), vt (T,2), faces (F,3), uv_faces (F,3)) of a triangle OBJ with v/vt face corners (0-based)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    v: List[List[float]] = []
    vt: List[List[float]] = []
    faces: List[List[int]] = []
    uv_faces: List[List[int]] = []
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                if parts[0] == "v":
                    v.append([float(x) for x in parts[1:4]])
                elif parts[0] == "vt":
                    vt.append([float(x) for x in parts[1:3]])
                elif parts[0] == "f":
                    if len(parts) != 4:
                        raise ValueError(f"expected a triangle, found {len(parts) - 1} corners")
                    fv, ft = [], []
                    for corner in parts[1:]:
                        idx = corner.split("/")
                        if len(idx) < 2 or not idx[1]:
                            raise ValueError("face corner without a texture index (expected v/vt)")
                        a, b = int(idx[0]), int(idx[1])
                        fv.append(a - 1 if a > 0 else len(v) + a)
                        ft.append(b - 1 if b > 0 else len(vt) + b)
                    faces.append(fv)
                    uv_faces.append(ft)
            except (ValueError, IndexError) as e:
                raise ValueError(f"{path}:{line_no}: {e}") from None
    if not faces or not vt:
        raise ValueError(f"{path}: expected faces with texture coordinates (v/vt), found {len(faces)} faces and "
                         f"{len(vt)} vt")
    out = (np.asarray(v, np.float64), np.asarray(vt, np.float64), np.asarray(faces, np.int64),
           np.asarray(uv_faces, np.int64))
    if out[2].min() < 0 or out[2].max() >= len(v) or out[3].min() < 0 or out[3].max() >= len(vt):
        raise ValueError(f"{path}: face indices out of range")
    return out


def align_uv_faces(faces: np.ndarray, obj_faces: np.ndarray, obj_uv_faces: np.ndarray, where: str) -> np.ndarray:
    """Texture indices per corner of ``faces`` (the model's face order) from an OBJ whose faces may be listed in
    another order or start at another corner."""
    if obj_faces.shape == faces.shape and np.array_equal(obj_faces, faces):
        return obj_uv_faces
    lookup = {}
    for i, f in enumerate(obj_faces):
        for r in range(3):
            lookup[tuple(np.roll(f, -r))] = np.roll(obj_uv_faces[i], -r)
    out = np.empty_like(faces)
    for i, f in enumerate(faces):
        t = lookup.get(tuple(f))
        if t is None:
            raise ValueError(f"{where}: face {i} {tuple(f)} of the model is not in the OBJ (different topology?)")
        out[i] = t
    return out


def vertex_uv_from_corners(n_vertices: int, faces: np.ndarray, uv: np.ndarray, uv_faces: np.ndarray) -> np.ndarray:
    """Per-vertex (u, v): each vertex takes the texture coordinate of its first face corner (seam vertices have
    several; FLAME's own flame_uv_coords.npy makes the same kind of choice)."""
    out = np.zeros((n_vertices, 2), np.float64)
    seen = np.zeros(n_vertices, bool)
    for f, t in zip(faces.reshape(-1), uv_faces.reshape(-1)):
        if not seen[f]:
            out[f] = uv[t]
            seen[f] = True
    return out


# ---------------------------------------------------------------------------------------------------------------

def _check(cond: bool, where: str, key: str, expected: str, found) -> None:
    if not cond:
        raise ValueError(f"{where}: key '{key}': expected {expected}, found {found}")


def _range(arr: np.ndarray) -> str:
    return f"values in [{arr.min()}, {arr.max()}]" if arr.size else "no values"


def _load_plain_npy(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"{path}: not a plain .npy array ({e})") from None


def convert(model: str, landmarks: Optional[str] = None, template: Optional[str] = None,
            eyelids: Optional[Sequence[str]] = None, masks: Optional[str] = None, vertex_uv: Optional[str] = None,
            mirror: Optional[str] = None, n_shape_basis: Optional[int] = None,
            float32: bool = False, uv_vertices: Optional[str] = None) -> Dict[str, np.ndarray]:
    """The arrays of our FLAME layout from the official files (see the module docstring)."""
    pkl = load_flame_pickle(model)
    for key in _REQUIRED_PKL_KEYS:
        if key not in pkl:
            raise ValueError(f"{model}: missing key '{key}' (found {sorted(pkl)})")
    fdt = np.float32 if float32 else np.float64
    v_template = np.asarray(pkl["v_template"], fdt)
    _check(v_template.ndim == 2 and v_template.shape[1] == 3, model, "v_template", "shape (V, 3)", v_template.shape)
    V = v_template.shape[0]
    faces = np.asarray(pkl["f"]).astype(np.int64)
    _check(faces.ndim == 2 and faces.shape[1] == 3, model, "f", "shape (F, 3)", faces.shape)
    shapedirs = np.asarray(pkl["shapedirs"], fdt)
    _check(shapedirs.ndim == 3 and shapedirs.shape[:2] == (V, 3), model, "shapedirs", f"shape ({V}, 3, K)",
           shapedirs.shape)
    J_regressor = np.asarray(pkl["J_regressor"], fdt)
    _check(J_regressor.ndim == 2 and J_regressor.shape[1] == V, model, "J_regressor", f"shape (J, {V})",
           J_regressor.shape)
    J = J_regressor.shape[0]
    posedirs = np.asarray(pkl["posedirs"], fdt)
    _check(posedirs.shape == (V, 3, 9 * (J - 1)), model, "posedirs", f"shape ({V}, 3, {9 * (J - 1)})", posedirs.shape)
    kintree = np.asarray(pkl["kintree_table"]).astype(np.int64)
    _check(kintree.shape == (2, J), model, "kintree_table", f"shape (2, {J})", kintree.shape)
    kintree[0, 0] = -1  # stored as 2^32 - 1
    weights = np.asarray(pkl["weights"], fdt)
    _check(weights.shape == (V, J), model, "weights", f"shape ({V}, {J})", weights.shape)
    K = shapedirs.shape[2]
    if n_shape_basis is None:
        n_shape_basis = min(300, K)
    out: Dict[str, np.ndarray] = {
        "v_template": v_template, "f": faces, "shapedirs": shapedirs,
        "n_shape_basis": np.asarray(n_shape_basis, np.int64), "posedirs": posedirs, "J_regressor": J_regressor,
        "kintree_table": kintree, "weights": weights,
    }
    if landmarks:
        emb = load_landmark_embedding(landmarks)
        for key in ("static_lmk_faces_idx", "static_lmk_bary_coords", "dynamic_lmk_faces_idx",
                    "dynamic_lmk_bary_coords"):
            if key not in emb:
                raise ValueError(f"{landmarks}: missing key '{key}' (found {sorted(emb)})")
        sf = emb["static_lmk_faces_idx"].astype(np.int64).reshape(-1)
        sb = emb["static_lmk_bary_coords"].astype(fdt).reshape(-1, 3)
        df = emb["dynamic_lmk_faces_idx"].astype(np.int64)
        db = emb["dynamic_lmk_bary_coords"].astype(fdt)
        _check(sb.shape == (len(sf), 3), landmarks, "static_lmk_bary_coords", f"shape ({len(sf)}, 3)", sb.shape)
        _check(df.ndim == 2, landmarks, "dynamic_lmk_faces_idx", "shape (Y, C)", df.shape)
        _check(db.shape == df.shape + (3,), landmarks, "dynamic_lmk_bary_coords", f"shape {df.shape + (3,)}",
               db.shape)
        for key, arr in (("static_lmk_faces_idx", sf), ("dynamic_lmk_faces_idx", df)):
            _check(arr.size == 0 or (arr.min() >= 0 and arr.max() < len(faces)), landmarks, key,
                   f"face indices in [0, {len(faces)})", _range(arr))
        out.update(static_lmk_faces_idx=sf, static_lmk_bary_coords=sb, dynamic_lmk_faces_idx=df,
                   dynamic_lmk_bary_coords=db)
    if template:
        obj_v, vt, obj_f, obj_ft = read_obj(template)
        _check(len(obj_v) == V, template, "v", f"{V} vertices", len(obj_v))
        out["vt"] = vt.astype(fdt)
        out["ft"] = align_uv_faces(faces, obj_f, obj_ft, template)
        out["vertex_uv"] = vertex_uv_from_corners(V, faces, vt, out["ft"]).astype(fdt)
    if vertex_uv:
        uv = _load_plain_npy(vertex_uv)
        _check(uv.shape == (V, 2), vertex_uv, "vertex_uv", f"shape ({V}, 2)", uv.shape)
        out["vertex_uv"] = uv.astype(fdt)
    if eyelids:
        for name, path in zip(("l_eyelid", "r_eyelid"), eyelids):
            arr = _load_plain_npy(path)
            _check(arr.shape == (V, 3), path, name, f"shape ({V}, 3)", arr.shape)
            out[name] = arr.astype(fdt)
    if masks:
        raw = load_pickle(masks, allowed={})
        if not isinstance(raw, dict):
            raise ValueError(f"{masks}: expected a pickled dict of vertex-index arrays, found {type(raw).__name__}")
        for name, idx in raw.items():
            arr = np.asarray(idx).astype(np.int64).reshape(-1)
            _check(arr.size == 0 or (arr.min() >= 0 and arr.max() < V), masks, name, f"vertex indices in [0, {V})",
                   _range(arr))
            out[f"mask.{name}"] = arr
    if mirror:
        arr = _load_plain_npy(mirror).astype(np.int64)
        _check(arr.shape == (V,), mirror, "mirror_index", f"shape ({V},)", arr.shape)
        _check(arr.min() >= 0 and arr.max() < V, mirror, "mirror_index", f"indices in [0, {V})", _range(arr))
        out["mirror_index"] = arr
    if uv_vertices:
        # The official UV-loss vertex set (VALID_VERTS): unique vertex ids, stored as a vertex mask.
        arr = _load_plain_npy(uv_vertices)
        _check(arr.ndim == 1 and arr.size > 0 and np.issubdtype(arr.dtype, np.integer), uv_vertices, "uv_valid",
               "a non-empty 1-D integer array of vertex ids", f"{arr.dtype} {arr.shape}")
        arr = arr.astype(np.int64)
        _check(arr.min() >= 0 and arr.max() < V, uv_vertices, "uv_valid", f"vertex indices in [0, {V})", _range(arr))
        _check(len(np.unique(arr)) == arr.size, uv_vertices, "uv_valid", "unique vertex ids",
               f"{arr.size - len(np.unique(arr))} repeated")
        out["mask.uv_valid"] = arr
    return out


def write_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """np.savez_compressed into a temporary file beside ``path``, renamed into place when complete."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pixel3dmm.convert_flame",
        description="Convert the official FLAME files into pixel3dmm's FLAME .npz (docs/flame.md).")
    parser.add_argument("model", help="generic_model.pkl (FLAME 2020) or flame2023*.pkl")
    parser.add_argument("--landmarks", help="landmark_embedding.npy (FLAME / MICA / Pixel3DMM repositories)")
    parser.add_argument("--template", help="head_template.obj with vt (FLAME / Pixel3DMM assets)")
    parser.add_argument("--eyelids", nargs=2, metavar=("L_EYELID", "R_EYELID"), help="l_eyelid.npy r_eyelid.npy")
    parser.add_argument("--masks", help="FLAME_masks.pkl (FLAME website)")
    parser.add_argument("--vertex-uv", help="flame_uv_coords.npy: per-vertex UVs (else derived from --template)")
    parser.add_argument("--mirror", help="flame_mirror_index.npy (Pixel3DMM assets)")
    parser.add_argument("--uv-vertices", help="uv_valid_verty_noEyes_noEyeRegion_debug_wEars.npy (Pixel3DMM assets): "
                        "the official UV-loss vertex set, stored as mask.uv_valid")
    parser.add_argument("--n-shape-basis", type=int, help="identity components before the expression ones "
                        "(default: 300, FLAME's split)")
    parser.add_argument("--float32", action="store_true", help="store floats as float32 (default: float64)")
    parser.add_argument("-o", "--output", required=True, help="output .npz")
    args = parser.parse_args(argv)
    if not args.output.endswith(".npz"):
        parser.error("--output must end with .npz")
    try:
        arrays = convert(args.model, landmarks=args.landmarks, template=args.template, eyelids=args.eyelids,
                         masks=args.masks, vertex_uv=args.vertex_uv, mirror=args.mirror,
                         n_shape_basis=args.n_shape_basis, float32=args.float32, uv_vertices=args.uv_vertices)
        write_npz(args.output, arrays)
    except (ValueError, FileNotFoundError, RefusedGlobal) as e:
        print(f"convert_flame: error: {e}", file=sys.stderr)
        return 3
    V = arrays["v_template"].shape[0]
    print(f"wrote {args.output}: V={V}, F={len(arrays['f'])}, J={arrays['J_regressor'].shape[0]}, "
          f"components={arrays['shapedirs'].shape[2]} ({int(arrays['n_shape_basis'])} identity), "
          f"{len(arrays)} arrays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
