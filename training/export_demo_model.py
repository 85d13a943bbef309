"""Copies trained demo networks into training/demo-model/ (embedded in the library), weights stored as float16.

    /usr/bin/python3 training/export_demo_model.py build/demo-runs/uv/model.safetensors uv
    /usr/bin/python3 training/export_demo_model.py build/demo-runs/normals/model.safetensors normals

float16 halves the files (the loader converts back to float32); the rounding changes the networks' outputs by
far less than their error. Plain Python + NumPy: reads and writes the safetensors layout directly.
"""
import json
import os
import pathlib
import shutil
import struct
import sys

import numpy as np


def read_safetensors(path):
    data = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}, expected F32"
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(info["shape"])
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        raw = tensors[name].astype("<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = pathlib.Path(str(path) + ".tmp")
    tmp.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    os.replace(tmp, path)


def main():
    source, name = pathlib.Path(sys.argv[1]), sys.argv[2]
    target = pathlib.Path(__file__).parent / "demo-model"
    target.mkdir(exist_ok=True)
    tensors, meta = read_safetensors(source)
    write_safetensors(target / f"{name}.safetensors", tensors, meta)
    shutil.copyfile(source.with_suffix(".json"), target / f"{name}.json")
    print(f"wrote {target / name}.safetensors ({sum(t.size for t in tensors.values())} parameters, float16)")


if __name__ == "__main__":
    main()
