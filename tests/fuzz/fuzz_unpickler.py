#!/usr/bin/env python3
"""Fuzz loop for pixel3dmm's restricted unpickler (the FLAME and checkpoint converters' pickle reader).

    PYTHONPATH=build/python /usr/bin/python3 tests/fuzz/fuzz_unpickler.py [--seconds 600] [--seed 0]

Seeds are pickles of what the converters read, written by pickle / torch.save: a FLAME-style dict of arrays
(protocols 0, 2, 4), chumpy/scipy-like objects through the converter's stub map, a torch state_dict, and a legacy
torch storage. Each round mutates a seed (bit flips, byte insert/delete, opcode splices, truncation, splicing two
seeds) and loads it with every allow-list the converters use. Accepted outcomes: a value or an exception. Findings:
a global resolved outside the allow-list, a MemoryError (an allocation the size limit should have refused), an
input slower than 2 s, or the interpreter dying (run it under a process supervisor; the exit code tells). Prints
executions, distinct outcomes and findings; exits 1 on any finding.
"""
import argparse
import collections
import io
import os
import pickle
import random
import signal
import sys
import time

import numpy as np

from pixel3dmm import convert_checkpoint, convert_flame
from pixel3dmm import restricted_pickle as rp

SLOW_SECONDS = 2.0


def seeds():
    out = []
    flame_like = {"v_template": np.random.RandomState(0).rand(5, 3), "f": np.arange(6, dtype=np.uint32).reshape(2, 3),
                  "kintree_table": np.array([[2 ** 32 - 1, 0], [0, 1]], dtype=np.int64), "bs_style": "lbs",
                  "weights": np.ones((5, 2), dtype=np.float32) / 2, "scalar": np.float64(0.5),
                  "nested": collections.OrderedDict(a=[1, 2.5, (3, "x")], b={"c": b"\x00\x01", "d": None}),
                  "rng": range(3), "fs": frozenset({1, 2}), "ba": bytearray(b"ab"), "c": complex(1, 2)}
    for protocol in (0, 2, 4):
        out.append(pickle.dumps(flame_like, protocol=protocol))
    # A stubbed class (as chumpy's Ch in FLAME 2020): pickled through copyreg._reconstructor (protocol 0/1) or
    # __reduce_ex__ (2+), with its __dict__ as state.
    # (pickle looks the class up by module to name it: a stand-in module exists only while pickling)
    Ch = type("Ch", (object,), {"__module__": "chumpy.ch"})
    added = [m for m in ("chumpy", "chumpy.ch") if m not in sys.modules]
    for m in added:
        sys.modules[m] = type(sys)(m)
    sys.modules["chumpy.ch"].Ch = Ch
    try:
        ch = Ch()
        ch.x = np.arange(4.0)
        for protocol in (0, 2):
            out.append(pickle.dumps({"shapedirs": ch}, protocol=protocol))
    finally:
        for m in added:
            del sys.modules[m]
    try:
        import torch
        buf = io.BytesIO()
        torch.save({"w": torch.arange(6.0).view(2, 3), "b": torch.zeros(2, dtype=torch.int64)}, buf,
                   _use_new_zipfile_serialization=False)
        out.append(buf.getvalue())
        out.append(pickle.dumps(torch.arange(3.0).storage(), protocol=2))
    except ImportError:
        pass
    return out


OPCODES = [bytes([c]) for c in b"(.0123NSTUVXabcdeghijlopqrstu}\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b" +
           b"\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98"]
TOKENS = [b"cbuiltins\ngetattr\n", b"cbuiltins\nbytes\n", b"cbuiltins\nlist\n", b"cbuiltins\nrange\n",
          b"cnumpy\nndarray\n", b"cnumpy.core.multiarray\n_reconstruct\n", b"cos\nsystem\n", b"J\xff\xff\xff\x7f",
          b"I99999999999\n", b"(I100000000000\ntR", b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f", b"t", b"R", b"b"]


def mutate(rng: random.Random, data: bytes, pool) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and b:
            del b[pos:pos + rng.randint(1, 8)]
        elif op == 3:
            b[pos:pos] = rng.choice(OPCODES)
        elif op == 4:
            b[pos:pos] = rng.choice(TOKENS)
        elif op == 5:
            del b[pos:]
        else:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            b[pos:] = other[cut:]
    return bytes(b)


class Finding(Exception):
    pass


def loaders():
    """Every allow-list a converter reads pickles with."""
    flame_globals = convert_flame._stub_globals()
    torch_globals = convert_flame._torch_globals()
    ckpt = convert_checkpoint._pickle_module("<fuzz>")
    return {
        "plain": lambda data: rp.RestrictedUnpickler(io.BytesIO(data), source="<fuzz>").load(),
        "flame": lambda data: rp.RestrictedUnpickler(io.BytesIO(data), allowed=flame_globals, source="<fuzz>").load(),
        "landmarks": lambda data: rp.RestrictedUnpickler(io.BytesIO(data), allowed=torch_globals, source="<fuzz>").load(),
        "checkpoint": lambda data: ckpt.Unpickler(io.BytesIO(data)).load(),
        "storage": lambda data: convert_flame._load_storage_bytes(data),
    }


class _Slow(BaseException):
    """Raised by the alarm inside a slow load (a BaseException, so the loaders' `except Exception` cannot eat it)."""


def _alarm(signum, frame):
    raise _Slow()


def run_one(load, data: bytes) -> str:
    allowed_modules = set(sys.modules)
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, SLOW_SECONDS)
    try:
        load(data)
        outcome = "ok"
    except _Slow:
        raise Finding(f"slow input: more than {SLOW_SECONDS} s")
    except MemoryError as e:
        raise Finding(f"MemoryError: {e}")
    except RecursionError:
        outcome = "RecursionError"
    except Exception as e:  # noqa: BLE001 - every exception type is an accepted, reported outcome
        outcome = type(e).__name__
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.perf_counter() - start
    if elapsed > SLOW_SECONDS:
        raise Finding(f"slow input: {elapsed:.1f} s")
    # Codec lookups (latin1 strings of Python 2 pickles) import encodings.*: not code the pickle chose.
    imported = {m for m in set(sys.modules) - allowed_modules if not m.startswith("encodings.")}
    if imported:
        raise Finding(f"loading imported modules {sorted(imported)}")
    return outcome


def fuzz(seconds: float, seed: int, findings_dir: str = "") -> dict:
    rng = random.Random(seed)
    pool = seeds()
    fns = loaders()
    # Bounded for the run: anything the limit lets through must also fit in the process.
    rp.MAX_ALLOCATION_BYTES = 256 << 20
    execs, outcomes, findings = 0, collections.Counter(), []
    if findings_dir:
        os.makedirs(findings_dir, exist_ok=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data = mutate(rng, rng.choice(pool), pool)
        if findings_dir:  # what was running if the interpreter dies
            with open(os.path.join(findings_dir, "current.pkl"), "wb") as fh:
                fh.write(data)
        for name, load in fns.items():
            execs += 1
            try:
                outcomes[f"{name}:{run_one(load, data)}"] += 1
            except Finding as f:
                findings.append((name, str(f), data))
                if findings_dir:
                    os.makedirs(findings_dir, exist_ok=True)
                    with open(os.path.join(findings_dir, f"finding-{len(findings)}.pkl"), "wb") as fh:
                        fh.write(data)
        if len(pool) < 200 and rng.random() < 0.05:
            pool.append(data)  # keep some mutants as seeds (a crude corpus)
    return {"executions": execs, "outcomes": outcomes, "findings": findings, "corpus": len(pool)}


def main(argv=None) -> int:
    import faulthandler
    faulthandler.enable()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--findings", default="", help="folder to write finding inputs to")
    args = ap.parse_args(argv)
    r = fuzz(args.seconds, args.seed, args.findings)
    print(f"fuzz_unpickler: {args.seconds:.0f} s, {r['executions']} executions, corpus {r['corpus']}, "
          f"{len(r['outcomes'])} distinct outcomes, {len(r['findings'])} findings")
    for name, what, _ in r["findings"][:20]:
        print(f"  finding ({name}): {what}")
    return 1 if r["findings"] else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: after millions of loads it can stall in torch's / NumPy's finalisers; the figures
    # are printed and nothing is left to clean up.
    os._exit(code)
