"""A restricted unpickler for the pickles researchers bring (FLAME ``.pkl`` files, Lightning checkpoints).

Pickles can run arbitrary code, and the official files reference packages we neither need nor want to install
(chumpy, scipy, OmegaConf, Lightning). ``RestrictedUnpickler`` resolves only an allow-list of globals: safe builtins
and NumPy's array reconstruction, plus what a caller maps explicitly (e.g. ``chumpy.ch.Ch`` -> a plain-array
stand-in). Anything else raises ``pickle.UnpicklingError`` naming the module and class.

The allow-list holds no callable that reaches other objects by name (``getattr`` would lead from any object to
``__self__`` / ``__globals__`` and so to ``eval``), and the constructors that could turn a few bytes into a huge
allocation (``bytes(10**12)``, ``list(range(10**12))``, ``numpy.ndarray((10**6, 10**6))``) are wrapped to refuse
more than ``MAX_ALLOCATION_BYTES`` (default 4 GiB, env ``PIXEL3DMM_MAX_PICKLE_ALLOCATION``). Array payloads are bounded
by the pickle's own size, since NumPy checks them against the declared shape.
"""
import _compat_pickle
import builtins
import collections
import io
import os
import pickle
import pickletools
import types
import warnings
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

Global = Tuple[str, str]

MAX_ALLOCATION_BYTES = int(os.environ.get("PIXEL3DMM_MAX_PICKLE_ALLOCATION", 4 << 30))


def refuse_large(what: str, nbytes: int) -> None:
    """Raises ``pickle.UnpicklingError`` when ``nbytes`` exceeds ``MAX_ALLOCATION_BYTES``."""
    if nbytes > MAX_ALLOCATION_BYTES:
        raise pickle.UnpicklingError(
            f"{what} would allocate {nbytes} bytes, more than the limit of {MAX_ALLOCATION_BYTES} "
            "(PIXEL3DMM_MAX_PICKLE_ALLOCATION)")


def _count(value: Any) -> int:
    """Elements an argument would expand to (a range or an int count); 0 for anything already materialised."""
    if isinstance(value, range):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    return 0


def _bounded(ctor: Any, element_bytes: int) -> Any:
    """``ctor`` refusing an argument that expands to more than the allocation limit (``bytes(n)``, ``list(range)``)."""
    def make(*args, **kwargs):
        if args:
            refuse_large(f"{ctor.__name__}({type(args[0]).__name__})", _count(args[0]) * element_bytes)
        return ctor(*args, **kwargs)
    make.__name__ = ctor.__name__
    return make


def _array_bytes(shape: Any, dtype: Any) -> int:
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    n = 1
    for d in dims:
        n *= max(int(d), 0)
    return n * np.dtype(dtype if dtype is not None else np.float64).itemsize


class _GuardedNdarray(np.ndarray):
    """What a pickle's ``numpy.ndarray`` global resolves to: constructing one checks the size first and returns a
    plain ``numpy.ndarray``; as the class argument of ``_reconstruct`` it stands for ``numpy.ndarray``."""

    def __new__(cls, shape, dtype=float, *args, **kwargs):
        refuse_large("numpy.ndarray", _array_bytes(shape, dtype))
        return np.ndarray(shape, dtype, *args, **kwargs)


def guarded_reconstruct(subtype, shape, dtype, *args):
    if subtype is _GuardedNdarray:
        subtype = np.ndarray
    refuse_large("numpy.core.multiarray._reconstruct", _array_bytes(shape, dtype))
    return np.core.multiarray._reconstruct(subtype, shape, dtype, *args)


def _checked_scalar(dtype, data=None):
    """``numpy.core.multiarray.scalar`` for plain dtypes only, with exactly one element's bytes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype!r} is not allowed")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype} needs {dtype.itemsize} bytes")
    return np.core.multiarray.scalar(dtype, data)


def _checked_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` (protocol 0/1 instances of plain classes) with ``object`` as the base only:
    another base's ``__new__`` (``numpy.ndarray.__new__(cls, shape)``) would run with pickled arguments."""
    if base is not object:
        raise pickle.UnpicklingError(f"copyreg._reconstructor with base {getattr(base, '__name__', base)!r} "
                                     "is not allowed (only object)")
    return __import__("copyreg")._reconstructor(cls, base, state)


def check_dtype_state(dtype: np.dtype, state: Any) -> None:
    """The ``__setstate__`` argument of a pickled ``numpy.dtype``, restricted to what a plain dtype pickles as:
    ``(3, byteorder, None, None, None, -1, -1, flags)`` with the dtype's own flags (0 for numbers, 63 for objects).
    NumPy trusts this tuple: a mutated one (sizes of -1 where a names tuple belongs) crashes the interpreter."""
    ok = (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ("<", ">", "|", "=")
          and state[2] is None and state[3] is None and state[4] is None
          and state[5] == -1 and state[6] == -1 and type(state[7]) is int and state[7] == dtype.flags)
    if not ok:
        raise pickle.UnpicklingError(f"numpy dtype state {state!r} is not a plain dtype's")


# bytes/bytearray/str elements are 1 byte; containers hold 8-byte pointers (at least).
_ELEMENT_BYTES = {"bytes": 1, "bytearray": 1, "list": 8, "tuple": 8, "set": 8, "frozenset": 8, "dict": 8}
_SAFE_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str",
                  "bytes", "bytearray", "slice", "range", "object"}

_SAFE_GLOBALS: Dict[Global, Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("numpy.core.multiarray", "_reconstruct"): guarded_reconstruct,
    ("numpy.core.multiarray", "scalar"): _checked_scalar,
    ("numpy", "ndarray"): _GuardedNdarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.numeric", "_frombuffer"): getattr(np.core.numeric, "_frombuffer", None),
    ("_codecs", "encode"): __import__("codecs").encode,
}
for _name in _SAFE_BUILTINS:
    _value = getattr(builtins, _name)
    if _name in _ELEMENT_BYTES:
        _value = _bounded(_value, _ELEMENT_BYTES[_name])
    _SAFE_GLOBALS[("builtins", _name)] = _value
    _SAFE_GLOBALS[("__builtin__", _name)] = _value  # Python 2 pickles
_SAFE_GLOBALS[("copy_reg", "_reconstructor")] = _checked_reconstructor
_SAFE_GLOBALS[("copyreg", "_reconstructor")] = _checked_reconstructor


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


class _BoundedReader:
    """A file's read/readline that never ask for more than what is left, so that a length field of a corrupt
    pickle cannot make the reader allocate it."""

    def __init__(self, file, end: int):
        self._file, self._end = file, end

    def tell(self) -> int:
        return self._file.tell()

    def read(self, n: int = -1) -> bytes:
        left = max(self._end - self._file.tell(), 0)
        return self._file.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self._file.readline()


def check_lengths(file, source: str = "<pickle>") -> None:
    """Walks the opcodes of the pickle at ``file``'s position (then rewinds) and raises ``pickle.UnpicklingError``
    when a length field claims more bytes than the file holds or an opcode is unknown. CPython's unpickler allocates
    a BYTEARRAY8 / BINBYTES8 / BINUNICODE8 of the declared length before reading it, so a 30-byte file could
    otherwise ask for gigabytes. Files that cannot seek are not checked."""
    try:
        if not file.seekable():
            return
    except AttributeError:
        return
    start = file.tell()
    end = file.seek(0, io.SEEK_END)
    file.seek(start)
    try:
        with warnings.catch_warnings():  # pickletools warns about escapes in protocol-0 strings; the unpickler won't
            warnings.simplefilter("ignore")
            for _ in pickletools.genops(_BoundedReader(file, end)):
                pass
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError) as e:
        raise pickle.UnpicklingError(f"{source}: corrupt pickle ({e})") from None
    finally:
        file.seek(start)


class RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that resolves only safe globals plus the caller's ``allowed`` map, after checking every length
    field against the size of the file (``check_lengths``).

    It is Python's pure-Python unpickler, so that the BUILD opcode can be checked: ``numpy.dtype.__setstate__``
    crashes the interpreter on a corrupt state (``check_dtype_state``). The pickles the converters read have few
    opcodes (their arrays are single byte strings), so the pure-Python loop costs little."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def load_build(self):
        inst = self.stack[-2] if len(self.stack) >= 2 else None
        if isinstance(inst, np.dtype):
            check_dtype_state(inst, self.stack[-1])
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def __init__(self, file, *, allowed: Optional[Dict[Global, Any]] = None, source: str = "<pickle>", **kwargs):
        kwargs.setdefault("encoding", "latin1")  # Python 2 pickles (FLAME 2020) store numpy buffers as str
        check_lengths(file, source)
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
    """Unpickles a file with the restricted unpickler. Errors name the file: FileNotFoundError when it is missing,
    ValueError when it is not a readable pickle, RefusedGlobal when it names a global off the allow-list."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        data = f.read()
    try:
        return RestrictedUnpickler(io.BytesIO(data), allowed=allowed, source=path).load()
    except RefusedGlobal:
        raise
    except Exception as e:  # truncated or corrupt data surfaces as many different exception types
        raise ValueError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from e


def pickle_module(allowed: Dict[Global, Any], source: str = "<checkpoint>",
                  stub: Optional[Callable[[str, str], Optional[type]]] = None) -> types.ModuleType:
    """A module usable as ``torch.load(..., pickle_module=...)`` that unpickles with the restricted rules.

    ``stub(module, name)`` (optional) is asked for a stand-in class when a global is not allowed (e.g. the training
    code's config classes inside a checkpoint); it returns None to refuse the global. Each stand-in is made once per
    module. Python 2 names (``__builtin__.unicode``) are mapped to Python 3 ones first, as ``pickle`` does."""
    mod = types.ModuleType("pixel3dmm_restricted_pickle")
    stubs: Dict[Global, Any] = {}

    class Unpickler(RestrictedUnpickler):
        def __init__(self, file, **kwargs):
            super().__init__(file, allowed=allowed, source=source, **kwargs)

        def find_class(self, module, name):
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
            try:
                return super().find_class(module, name)
            except RefusedGlobal:
                if stub is None:
                    raise
                if (module, name) not in stubs:
                    made = stub(module, name)
                    if made is None:
                        raise
                    stubs[(module, name)] = made
                return stubs[(module, name)]

    mod.Unpickler = Unpickler
    mod.load = lambda f, **kw: Unpickler(f, **kw).load()
    mod.__dict__["UnpicklingError"] = pickle.UnpicklingError
    return mod


__all__ = ["RestrictedUnpickler", "RefusedGlobal", "Stub", "stub_class", "load", "pickle_module", "MAX_ALLOCATION_BYTES",
           "refuse_large", "guarded_reconstruct", "check_lengths",
           "check_dtype_state"]
