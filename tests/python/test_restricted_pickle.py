import io
import os
import pickle

import numpy as np
import pytest

from pixel3dmm.restricted_pickle import RestrictedUnpickler, load, stub_class


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_plain_arrays_and_dicts_load():
    data = pickle.dumps({"a": np.arange(6, dtype=np.float64).reshape(2, 3), "b": [1, "x"]}, protocol=2)
    out = RestrictedUnpickler(io.BytesIO(data)).load()
    assert out["b"] == [1, "x"]
    np.testing.assert_array_equal(out["a"], np.arange(6).reshape(2, 3))


def test_unlisted_global_is_refused_with_its_name():
    data = pickle.dumps(Evil())
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        RestrictedUnpickler(io.BytesIO(data), source="evil.pkl").load()


def test_mapped_class_becomes_stub(tmp_path, monkeypatch):
    import sys
    import types

    class Ch:
        def __init__(self):
            self.x = np.ones(3)

    fake = types.ModuleType("chumpy.ch")
    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    fake.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", fake)
    data = pickle.dumps(Ch(), protocol=2)
    path = tmp_path / "t.pkl"
    path.write_bytes(data)
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")
    Stub = stub_class("chumpy.ch", "Ch")
    obj = load(str(path), allowed={("chumpy.ch", "Ch"): Stub})
    assert isinstance(obj, Stub)
    np.testing.assert_array_equal(obj.state["x"], np.ones(3))


def test_truncated_pickle_is_a_value_error(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": np.zeros(100)})[:50])
    with pytest.raises(ValueError, match="cut.pkl"):
        load(str(path))
