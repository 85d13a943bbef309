"""safetensors, .npy and .npz through pixel3dmm against NumPy's own writers and readers and against an
independent pure-Python safetensors reader and writer (struct + json + numpy.frombuffer)."""
import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import io as pio

NUMPY_DTYPES = ["<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "|u1", "|b1", "<u2", "<u4"]
BIG_ENDIAN = [d.replace("<", ">") for d in NUMPY_DTYPES if d.startswith("<")]


def sample(dtype, shape=(3, 4, 2), seed=0):
    """Values that use the whole range of the dtype."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = rng.standard_normal(shape) * 100
    elif dt.kind == "b":
        a = rng.random(shape) > 0.5
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=np.int64 if dt.kind == "i" else np.uint64)
    return a.astype(dt)


def expected(a):
    """The tensor pixel3dmm must return for a NumPy array: native byte order, uint16/32 widened, C order."""
    a = np.asarray(a)
    native = a.astype(a.dtype.newbyteorder("="))
    native = native.astype({"u2": np.int32, "u4": np.int64}.get(f"{native.dtype.kind}{native.dtype.itemsize}",
                                                                 native.dtype))
    return torch.from_numpy(native.copy(order="C"))


def assert_same(t, a):
    e = expected(a)
    assert isinstance(t, torch.Tensor)
    assert t.dtype == e.dtype, (t.dtype, e.dtype)
    assert tuple(t.shape) == tuple(e.shape)
    assert t.is_contiguous()
    assert torch.equal(t, e)


# --- .npy ---

@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", NUMPY_DTYPES + BIG_ENDIAN)
def test_np_save_read_by_pixel3dmm(tmp_path, dtype, order):
    a = sample(dtype)
    a = np.asfortranarray(a) if order == "F" else np.ascontiguousarray(a)
    np.save(tmp_path / "a.npy", a)
    assert_same(pio.load_npy(tmp_path / "a.npy"), a)


def test_np_save_scalars_empty_and_1d(tmp_path):
    for i, a in enumerate([np.float32(2.5), np.array(7, dtype=np.int64), np.zeros((0, 3), np.float64),
                           np.zeros((2, 0, 4), np.int16, order="F"), np.arange(5, dtype=np.int8)]):
        np.save(tmp_path / f"{i}.npy", a)
        assert_same(pio.load_npy(str(tmp_path / f"{i}.npy")), a)


def test_save_npy_read_by_numpy(tmp_path):
    for i, dtype in enumerate(NUMPY_DTYPES[:9]):
        a = sample(dtype)
        pio.save_npy(tmp_path / f"{i}.npy", torch.from_numpy(a).transpose(0, 2))  # non-contiguous tensor
        b = np.load(tmp_path / f"{i}.npy")
        assert b.dtype == a.dtype
        np.testing.assert_array_equal(b, a.transpose(2, 1, 0))
    pio.save_npy(tmp_path / "s.npy", torch.tensor(1.5))
    assert np.load(tmp_path / "s.npy").shape == ()


def test_numpy_inputs_are_accepted(tmp_path):
    a = sample(">i4").T  # big endian and non-contiguous
    pio.save_npy(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), a)
    u = np.array([0, 65535], dtype=np.uint16)
    pio.save_npz(tmp_path / "u.npz", {"u": u, "s": np.float64(3.0)})
    out = pio.load_npz(tmp_path / "u.npz")
    assert out["u"].dtype == torch.int32 and out["u"].tolist() == [0, 65535]
    assert out["s"].shape == () and out["s"].item() == 3.0
    with pytest.raises(TypeError, match="save_npy: expected a torch.Tensor or numpy.ndarray, found list"):
        pio.save_npy(tmp_path / "x.npy", [1, 2])
    with pytest.raises(TypeError, match="save_npz: 'o': NumPy dtype object"):
        pio.save_npz(tmp_path / "o.npz", {"o": np.array([{}, 1], dtype=object)})


# --- .npz ---

def numpy_arrays():
    arrays = {f"a{i}": sample(d, seed=i) for i, d in enumerate(NUMPY_DTYPES + BIG_ENDIAN)}
    arrays["fortran"] = np.asfortranarray(sample("<f4", (5, 6)))
    arrays["scalar"] = np.array(3.25)
    arrays["empty"] = np.zeros((0,), np.int32)
    return arrays


@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
def test_numpy_npz_read_by_pixel3dmm(tmp_path, writer):
    arrays = numpy_arrays()
    writer(tmp_path / "a.npz", **arrays)
    out = pio.load_npz(tmp_path / "a.npz")
    assert sorted(out) == sorted(arrays)
    for k, a in arrays.items():
        assert_same(out[k], a)


@pytest.mark.parametrize("compress", [False, True])
def test_pixel3dmm_npz_read_by_numpy(tmp_path, compress):
    arrays = {f"a{i}": torch.from_numpy(sample(d, seed=i)) for i, d in enumerate(NUMPY_DTYPES[:9])}
    arrays["scalar"] = torch.tensor(-1.0)
    arrays["empty"] = torch.zeros(3, 0)
    pio.save_npz(tmp_path / "a.npz", arrays, compress=compress)
    with zipfile.ZipFile(tmp_path / "a.npz") as z:
        assert z.testzip() is None  # every CRC checks out in Python's own ZIP reader
        methods = {i.compress_type for i in z.infolist()}
        assert methods == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}
    with np.load(tmp_path / "a.npz") as f:
        assert sorted(f.files) == sorted(arrays)
        for k, t in arrays.items():
            np.testing.assert_array_equal(f[k], t.numpy())
            assert f[k].dtype == t.numpy().dtype


def test_corrupt_npy_and_npz_raise_value_errors_naming_the_file(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{}, []], dtype=object))
    with pytest.raises(ValueError, match=r"o\.npy: object arrays are not supported .*found descr '\|O'"):
        pio.load_npy(tmp_path / "o.npy")
    np.save(tmp_path / "s.npy", np.zeros(3, dtype=[("x", "<f4"), ("y", "<i2")]))
    with pytest.raises(ValueError, match=r"s\.npy: structured dtypes are not supported"):
        pio.load_npy(tmp_path / "s.npy")
    np.save(tmp_path / "t.npy", np.arange(10.0))
    (tmp_path / "t.npy").write_bytes((tmp_path / "t.npy").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"t\.npy: data is truncated, expected 80 bytes .* found 79"):
        pio.load_npy(tmp_path / "t.npy")
    np.savez(tmp_path / "c.npz", w=np.arange(100.0))
    raw = bytearray((tmp_path / "c.npz").read_bytes())
    raw[raw.find(b"PK\x01\x02") - 3] ^= 0xFF  # a byte of the stored array
    (tmp_path / "c.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"c\.npz: member 'w\.npy': CRC-32 mismatch"):
        pio.load_npz(tmp_path / "c.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        pio.load_npz(tmp_path / "missing.npz")


# --- safetensors against an independent pure-Python implementation ---

ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
             "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def py_read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    out = {}
    for key, info in header.items():
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        if info["dtype"] == "BF16":
            out[key] = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16).reshape(info["shape"]) if raw else \
                torch.zeros(info["shape"], dtype=torch.bfloat16)
        else:
            array = np.frombuffer(raw, dtype=ST_DTYPES[info["dtype"]]).reshape(info["shape"])
            out[key] = torch.from_numpy(array.copy())
    return out, metadata, n


def py_write_safetensors(path, tensors, metadata=None):
    names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
             torch.bool: "BOOL"}
    header, blobs, offset = {}, [], 0
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[key] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def torch_tensors():
    torch.manual_seed(0)
    f = torch.randn(3, 4, dtype=torch.float64) * 100
    return {"f64": f, "f32": f.float(), "f16": f.half(), "bf16": f.bfloat16(),
            "i64": torch.randint(-2**62, 2**62, (5,)), "i32": torch.randint(-2**30, 2**30, (2, 3), dtype=torch.int32),
            "i16": torch.randint(-2**15, 2**15, (7,), dtype=torch.int16),
            "i8": torch.randint(-128, 128, (2, 2, 2), dtype=torch.int8),
            "u8": torch.randint(0, 256, (9,), dtype=torch.uint8), "bool": torch.rand(4, 1) > 0.5,
            "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3), "strided": f.float().t()}


def assert_same_tensors(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


def test_safetensors_written_by_cpp_read_by_pure_python(tmp_path):
    tensors = torch_tensors()
    pio.save_safetensors(tmp_path / "t.safetensors", tensors, {"format": "pt", "epoch": 3})
    read, metadata, n = py_read_safetensors(tmp_path / "t.safetensors")
    assert n % 8 == 0
    assert metadata == {"format": "pt", "epoch": "3"}
    assert_same_tensors(tensors, read)


def test_safetensors_written_by_pure_python_read_by_cpp(tmp_path):
    tensors = torch_tensors()
    py_write_safetensors(tmp_path / "t.safetensors", tensors, {"source": "pure python"})
    assert_same_tensors(tensors, pio.load_safetensors(tmp_path / "t.safetensors"))
    assert pio.load_safetensors_metadata(tmp_path / "t.safetensors") == {"source": "pure python"}


def test_safetensors_accepts_numpy_and_round_trips(tmp_path):
    arrays = {"a": sample("<f4"), "b": sample(">i2").T}
    pio.save_safetensors(str(tmp_path / "n.safetensors"), arrays)
    out = pio.load_safetensors(str(tmp_path / "n.safetensors"))
    for k, a in arrays.items():
        assert_same(out[k], a)


def test_corrupt_safetensors_raise_value_errors(tmp_path):
    path = tmp_path / "bad.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(24))
    with pytest.raises(ValueError, match=r"bad\.safetensors: tensor 'w': byte range \[0, 20\] does not match "
                                         r"shape \[2, 3\] x F32, expected 24 bytes, found 20"):
        pio.load_safetensors(path)
    path.write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="expected at least 8 bytes, found 2"):
        pio.load_safetensors(path)
    with pytest.raises(FileNotFoundError):
        pio.load_safetensors(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="ComplexFloat"):
        pio.save_safetensors(path, {"c": torch.ones(2, dtype=torch.complex64)})


def test_acceptance_plain_python_session(tmp_path):
    """`python3 -c 'import pixel3dmm, torch; ...'` reads what C++ wrote and C++ reads what that session wrote."""
    cpp_file, py_file = tmp_path / "cpp.safetensors", tmp_path / "py.safetensors"
    pio.save_safetensors(cpp_file, {"x": torch.arange(6.0).reshape(2, 3)})
    script = (
        "import pixel3dmm, torch, sys\n"
        "t = pixel3dmm.io.load_safetensors(sys.argv[1])\n"
        "assert torch.equal(t['x'], torch.arange(6.0).reshape(2, 3)), t\n"
        "pixel3dmm.io.save_safetensors(sys.argv[2], {'y': t['x'] * 2}, {'by': 'python'})\n"
    )
    subprocess.run([sys.executable, "-c", script, str(cpp_file), str(py_file)], check=True, env=os.environ.copy())
    assert torch.equal(pio.load_safetensors(py_file)["y"], torch.arange(6.0).reshape(2, 3) * 2)
    assert pixel3dmm.io.load_safetensors_metadata(py_file) == {"by": "python"}


def test_bytes_entry_points_match_files(tmp_path):
    tensors = {"a": torch.ones(3), "b": torch.zeros(2, dtype=torch.int64)}
    pio.save_safetensors(tmp_path / "a.safetensors", tensors)
    data = (tmp_path / "a.safetensors").read_bytes()
    assert pixel3dmm._C.io.serialize_safetensors(tensors) == data
    back, metadata = pixel3dmm._C.io.parse_safetensors(data)
    assert_same_tensors(tensors, back)
    assert metadata == {}
    npy = io.BytesIO()
    np.save(npy, np.arange(4, dtype=np.int16))
    assert pixel3dmm._C.io.parse_npy(npy.getvalue()).tolist() == [0, 1, 2, 3]


# --- corrupted bytes: a clean ValueError or a successful read, never a crash or another exception ---

def _mutations(data, rng, count):
    for _ in range(count):
        b = bytearray(data)
        kind = rng.integers(3)
        if kind == 0:  # flip a few bytes, mostly in the headers where the structure is
            for _ in range(rng.integers(1, 4)):
                at = int(rng.integers(min(len(b), 256))) if rng.random() < 0.7 else int(rng.integers(len(b)))
                b[at] = int(rng.integers(256))
        elif kind == 1:  # truncate
            b = b[:int(rng.integers(len(b)))]
        else:  # overwrite a 4-byte field with a large value
            at = int(rng.integers(max(1, len(b) - 4)))
            b[at:at + 4] = struct.pack("<I", int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 0])))
        yield bytes(b)


@pytest.mark.parametrize("fmt", ["safetensors", "npy", "npz-stored", "npz-deflated"])
def test_corrupted_bytes_never_crash(fmt):
    cio = pixel3dmm._C.io
    tensors = {"a": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4), "b": torch.ones(5, dtype=torch.int16),
               "c": torch.tensor(True)}
    if fmt == "safetensors":
        data, parse = cio.serialize_safetensors(tensors, {"k": "v"}), cio.parse_safetensors
    elif fmt == "npy":
        data, parse = cio.serialize_npy(tensors["a"]), cio.parse_npy
    else:
        buf = io.BytesIO()
        (np.savez_compressed if fmt == "npz-deflated" else np.savez)(buf, **{k: v.numpy() for k, v in tensors.items()})
        data, parse = buf.getvalue(), cio.parse_npz
    rng = np.random.default_rng(1234)
    failures = 0
    for bad in _mutations(data, rng, 300):
        try:
            parse(bad, "fuzz")
        except ValueError as e:
            assert str(e).startswith("fuzz"), str(e)  # every error names its source
            failures += 1
    assert failures > 100  # most mutations must be caught
