"""A restricted unpickler for the pickles researchers bring (FLAME ``.pkl`` files, Lightning checkpoints).

Pickles can run arbitrary code, and the official files reference packages we neither need nor want to install
(chumpy, scipy, OmegaConf, Lightning). ``RestrictedUnpickler`` resolves only an allow-list of globals: safe builtins
and NumPy's array reconstruction, plus what a caller maps explicitly (e.g. ``chumpy.ch.Ch`` -> a plain-array
stand-in). Anything else raises ``pickle.UnpicklingError`` naming the module and class.
"""
import builtins
import collections
import io
import pickle
import types
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

Global = Tuple[str, str]

_SAFE_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str",
                  "bytes", "bytearray", "slice", "range", "object", "getattr"}

_SAFE_GLOBALS: Dict[Global, Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("numpy.core.multiarray", "_reconstruct"): np.core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np.core.multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.numeric", "_frombuffer"): getattr(np.core.numeric, "_frombuffer", None),
    ("_codecs", "encode"): __import__("codecs").encode,
}
for _name in _SAFE_BUILTINS:
    _SAFE_GLOBALS[("builtins", _name)] = getattr(builtins, _name)
    _SAFE_GLOBALS[("__builtin__", _name)] = getattr(builtins, _name)  # Python 2 pickles
_SAFE_GLOBALS[("copy_reg", "_reconstructor")] = __import__("copyreg")._reconstructor
_SAFE_GLOBALS[("copyreg", "_reconstructor")] = __import__("copyreg")._reconstructor


class Stub:
    """Stands in for a class we do not import: keeps constructor arguments and pickled state as attributes.

    ``Stub.state`` is what ``__setstate__`` received (usually the object's ``__dict__``); ``Stub.args`` the
    constructor arguments.
    """

    qualname = "Stub"

    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<{self.qualname} stub>"


def stub_class(module: str, name: str) -> type:
    """A fresh Stub subclass named after the class it replaces (so errors and reprs say what it was)."""
    cls = types.new_class(name, (Stub,))
    cls.qualname = f"{module}.{name}"
    cls.__module__ = "pixel3dmm.restricted_pickle.stubs"
    return cls


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle referenced a global outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only safe globals plus the caller's ``allowed`` map."""

    def __init__(self, file, *, allowed: Optional[Dict[Global, Any]] = None, source: str = "<pickle>", **kwargs):
        kwargs.setdefault("encoding", "latin1")  # Python 2 pickles (FLAME 2020) store numpy buffers as str
        super().__init__(file, **kwargs)
        self._allowed = dict(_SAFE_GLOBALS)
        self._allowed.update(allowed or {})
        self._source = source

    def find_class(self, module: str, name: str):
        target = self._allowed.get((module, name))
        if target is None:
            raise RefusedGlobal(
                f"{self._source}: refusing to load global '{module}.{name}' (not on pixel3dmm's allow-list)")
        return target


def load(path: str, *, allowed: Optional[Dict[Global, Any]] = None) -> Any:
    """Unpickles a file with the restricted unpickler. Errors name the file."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return RestrictedUnpickler(io.BytesIO(data), allowed=allowed, source=path).load()
    except RefusedGlobal:
        raise
    except Exception as e:  # truncated or corrupt data surfaces as many different exception types
        raise ValueError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from e


def pickle_module(allowed: Dict[Global, Any], source: str = "<checkpoint>") -> types.ModuleType:
    """A module usable as ``torch.load(..., pickle_module=...)`` that unpickles with the restricted rules."""
    mod = types.ModuleType("pixel3dmm_restricted_pickle")

    class Unpickler(RestrictedUnpickler):
        def __init__(self, file, **kwargs):
            super().__init__(file, allowed=allowed, source=source, **kwargs)

    mod.Unpickler = Unpickler
    mod.load = lambda f, **kw: Unpickler(f, **kw).load()
    mod.__dict__["UnpicklingError"] = pickle.UnpicklingError
    return mod


__all__ = ["RestrictedUnpickler", "RefusedGlobal", "Stub", "stub_class", "load", "pickle_module"]
