"""The restricted unpickler against hostile pickles: the attacks the fuzz loop (tests/fuzz/fuzz_unpickler.py)
looks for, each as a fixed input, plus a short run of the loop itself."""
import io
import os
import pickle
import sys

import numpy as np
import pytest

from pixel3dmm import convert_flame
from pixel3dmm import restricted_pickle as rp

sys.path.insert(0, os.path.join(os.environ.get("PIXEL3DMM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")), "tests", "fuzz"))
import fuzz_unpickler  # noqa: E402


def load(data: bytes, **kw):
    return rp.RestrictedUnpickler(io.BytesIO(data), source="hostile.pkl", **kw).load()


def test_getattr_escape_to_eval_is_refused():
    # getattr(getattr(getattr, '__self__'), 'eval')("...") ran arbitrary code through the old allow-list.
    p = (b"cbuiltins\ngetattr\n(cbuiltins\ngetattr\n(cbuiltins\ngetattr\nS'__self__'\ntRS'eval'\ntR"
         b"(S\"__import__('os').getpid()\"\ntR.")
    with pytest.raises(rp.RefusedGlobal, match="builtins.getattr"):
        load(p)


@pytest.mark.parametrize("payload, what", [
    (b"cbuiltins\nbytes\n(I100000000000\ntR.", "bytes"),
    (b"cbuiltins\nbytearray\n(I100000000000\ntR.", "bytearray"),
    (b"cbuiltins\nlist\n(cbuiltins\nrange\n(I100000000000\ntRtR.", "list"),
    (b"cbuiltins\nfrozenset\n(cbuiltins\nrange\n(I100000000000\ntRtR.", "frozenset"),
    (b"cnumpy\nndarray\n((I1000000\nI1000000\nttR.", "numpy.ndarray"),
    (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I1000000000000\ntS'b'\ntR.", "_reconstruct"),
])
def test_allocation_bombs_are_refused_before_allocating(payload, what):
    with pytest.raises(pickle.UnpicklingError, match=f"{what}.*would allocate .* bytes, more than the limit"):
        load(payload)


def test_declared_length_beyond_the_data_is_refused():
    # BYTEARRAY8 (protocol 5) declaring 2**40 bytes in a 20-byte file: CPython would allocate it first.
    p = b"\x80\x05\x96" + (1 << 40).to_bytes(8, "little") + b"abc."
    with pytest.raises(pickle.UnpicklingError, match="hostile.pkl: corrupt pickle"):
        load(p)


def test_zero_stride_tensor_cannot_declare_any_size():
    big = 1 << 40
    with pytest.raises(pickle.UnpicklingError, match="a pickled tensor would allocate"):
        convert_flame._rebuild_tensor(np.zeros(1), 0, (big,), (0,))


def test_legitimate_pickles_still_load():
    arrays = {"a": np.arange(12.0).reshape(3, 4), "b": np.zeros((0, 3), np.float32), "r": list(range(5)),
              "s": bytes(4), "t": tuple(range(3))}
    for protocol in (0, 2, 4, 5):
        out = load(pickle.dumps(arrays, protocol=protocol))
        np.testing.assert_array_equal(out["a"], arrays["a"])
        assert type(out["a"]) is np.ndarray and out["b"].shape == (0, 3)
        assert out["r"] == [0, 1, 2, 3, 4] and out["s"] == bytes(4) and out["t"] == (0, 1, 2)


def test_the_limit_is_configurable(monkeypatch):
    monkeypatch.setattr(rp, "MAX_ALLOCATION_BYTES", 100)
    with pytest.raises(pickle.UnpicklingError, match="more than the limit of 100"):
        load(b"cnumpy\nndarray\n((I50\nttR.")  # 50 float64 = 400 bytes
    # Array payloads stored in the pickle are bounded by its size already, whatever the limit.
    np.testing.assert_array_equal(load(pickle.dumps(np.zeros(50), protocol=2)), np.zeros(50))


def test_short_fuzz_run_finds_nothing():
    r = fuzz_unpickler.fuzz(seconds=4, seed=1)
    assert r["executions"] > 100
    assert r["findings"] == [], [(n, w) for n, w, _ in r["findings"][:5]]
    # The mutants reach both outcomes: some still load, most are refused.
    assert any(k.endswith(":ok") for k in r["outcomes"]) and any(not k.endswith(":ok") for k in r["outcomes"])


def test_mutated_dtype_state_is_refused():
    # Found by the fuzz loop: NumPy's dtype.__setstate__ segfaulted on this state (a mutated protocol-0 pickle).
    p = b"cnumpy\ndtype\n(S'f8'\nI00\nI01\ntR(I3\nS'<'\nNI-1\nI-1\nI0\ntb."
    with pytest.raises(pickle.UnpicklingError, match="numpy dtype state"):
        load(p)
    # The state every plain dtype pickles with still loads, objects' flags included.
    for dt in (np.float64, np.dtype(">i4"), object):
        arr = np.array([1, 2], dtype=dt)
        np.testing.assert_array_equal(load(pickle.dumps(arr, protocol=0)), arr)
