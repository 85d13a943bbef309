"""Meshes, images and JSON configs through the Python API (pixel3dmm.io)."""
import json

import numpy as np
import pytest
import torch

import pixel3dmm
from pixel3dmm import io


def tetrahedron():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64) * 0.3
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int32)
    rng = np.random.default_rng(0)
    return dict(vertices=vertices, faces=faces, normals=rng.normal(size=(4, 3)), colors=rng.uniform(size=(4, 3)),
                uvs=rng.uniform(size=(4, 2)))


def read_ply_with_numpy(data: bytes):
    """A tiny independent reader for the binary PLY layout pixel3dmm writes (fixed triangle lists)."""
    header, body = data.split(b"end_header\n", 1)
    lines = header.decode("ascii").splitlines()
    assert lines[0] == "ply" and lines[1] == "format binary_little_endian 1.0"
    types = {"float": "<f4", "uchar": "u1", "int": "<i4"}
    elements = []
    for line in lines[2:]:
        tok = line.split()
        if tok[0] == "element":
            elements.append((tok[1], int(tok[2]), []))
        elif tok[0] == "property" and tok[1] == "list":
            assert tok[2:4] == ["uchar", "int"]
            elements[-1][2].extend([("n", "u1"), (tok[4], "<i4", (3,))])
        elif tok[0] == "property":
            elements[-1][2].append((tok[2], types[tok[1]]))
    out, offset = {}, 0
    for name, count, fields in elements:
        dtype = np.dtype(fields)
        out[name] = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
        offset += dtype.itemsize * count
    assert offset == len(body)
    return out


def test_mesh_round_trip_ply_and_obj(tmp_path):
    arrays = tetrahedron()
    for name, kwargs in [("m.ply", {}), ("a.ply", {"binary": False}), ("m.obj", {"texture_path": "tex.png"})]:
        io.save_mesh(tmp_path / name, **arrays, **kwargs)
        mesh = io.load_mesh(tmp_path / name)
        assert isinstance(mesh, io.Mesh)
        assert mesh.vertices.dtype == torch.float32 and mesh.faces.dtype == torch.int64
        np.testing.assert_array_equal(mesh.vertices.numpy(), arrays["vertices"].astype(np.float32))
        np.testing.assert_array_equal(mesh.faces.numpy(), arrays["faces"])
        np.testing.assert_array_equal(mesh.normals.numpy(), arrays["normals"].astype(np.float32))
        np.testing.assert_allclose(mesh.colors.numpy(), arrays["colors"], atol=0.5 / 255 + 1e-7)
        np.testing.assert_array_equal(mesh.uvs.numpy(), arrays["uvs"].astype(np.float32))
    assert "map_Kd tex.png" in (tmp_path / "m.mtl").read_text()
    # A Mesh object saves the same way, and None fields are absent from the file.
    mesh = io.load_mesh(tmp_path / "m.ply")
    mesh.normals = None
    io.save_mesh(tmp_path / "n.ply", mesh)
    assert io.load_mesh(tmp_path / "n.ply").normals is None


def test_ply_bytes_read_by_an_independent_numpy_reader(tmp_path):
    arrays = tetrahedron()
    io.save_mesh(tmp_path / "m.ply", **arrays)
    parsed = read_ply_with_numpy((tmp_path / "m.ply").read_bytes())
    v = parsed["vertex"]
    np.testing.assert_array_equal(np.stack([v["x"], v["y"], v["z"]], 1), arrays["vertices"].astype(np.float32))
    np.testing.assert_array_equal(np.stack([v["nx"], v["ny"], v["nz"]], 1), arrays["normals"].astype(np.float32))
    np.testing.assert_array_equal(np.stack([v["red"], v["green"], v["blue"]], 1),
                                  np.round(arrays["colors"] * 255).astype(np.uint8))
    np.testing.assert_array_equal(np.stack([v["s"], v["t"]], 1), arrays["uvs"].astype(np.float32))
    assert (parsed["face"]["n"] == 3).all()
    np.testing.assert_array_equal(parsed["face"]["vertex_indices"], arrays["faces"])


def test_mesh_class_fields_and_repr():
    mesh = io.Mesh(vertices=np.zeros((3, 3), np.float32), faces=torch.tensor([[0, 1, 2]]))
    assert isinstance(mesh.vertices, torch.Tensor)
    assert mesh.uvs is None
    mesh.uvs = np.zeros((3, 2))
    assert repr(mesh) == "Mesh(vertices=3, faces=1, uvs=3)"
    mesh.validate()
    mesh.faces = torch.tensor([[0, 1, 3]])
    with pytest.raises(ValueError, match="out of range for 3 vertices"):
        mesh.validate()


def test_image_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(3, 5, 6)).astype(np.float32) / 255
    io.save_image(tmp_path / "a.png", rgb)
    img = io.load_image(tmp_path / "a.png")
    assert img.shape == (1, 3, 5, 6) and img.dtype == torch.float32
    np.testing.assert_allclose(img[0].numpy(), rgb, atol=1e-7)

    gray16 = rng.integers(0, 65536, size=(4, 7)).astype(np.uint16)  # H x W uint16: scaled by 1/65535
    io.save_image(tmp_path / "g.png", gray16, bit_depth=16)
    img = io.load_image(tmp_path / "g.png")
    np.testing.assert_allclose(img[0].numpy(), np.broadcast_to(gray16 / 65535.0, (3, 4, 7)), atol=1e-7)

    io.save_image(tmp_path / "b.jpg", torch.full((1, 3, 8, 8), 0.5))
    assert abs(io.load_image(tmp_path / "b.jpg").mean().item() - 0.5) < 0.01


def test_config_round_trip_and_overrides(tmp_path):
    config = {"fit": {"iters": 500, "lr": 0.005}, "name": "run"}
    io.save_config(tmp_path / "c.json", config)
    assert json.loads((tmp_path / "c.json").read_text()) == config
    loaded = io.load_config(tmp_path / "c.json", ["fit.iters=800", "fit.weights=[1, 2]", "name=other run"])
    assert loaded == {"fit": {"iters": 800, "lr": 0.005, "weights": [1, 2]}, "name": "other run"}
    assert io.apply_overrides(config, "fit.lr=1e-3")["fit"]["lr"] == 1e-3
    assert config["fit"]["lr"] == 0.005  # the input is not modified
    (tmp_path / "comments.json").write_text('// defaults\n{"a": 1 /* one */}\n')
    assert io.load_config(tmp_path / "comments.json") == {"a": 1}


def test_errors_map_to_python_exceptions(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ply"):
        io.load_mesh(tmp_path / "missing.ply")
    with pytest.raises(FileNotFoundError):
        io.load_image(tmp_path / "missing.png")
    with pytest.raises(FileNotFoundError):
        io.load_config(tmp_path / "missing.json")

    (tmp_path / "bad.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 99999999\n"
                                       b"property float x\nproperty float y\nproperty float z\nend_header\n\0\0")
    with pytest.raises(ValueError, match="element 'vertex' declares 99999999 entries"):
        io.load_mesh(tmp_path / "bad.ply")
    (tmp_path / "bad.obj").write_text("v 0 0 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match=r"bad.obj:2: vertex index 2 out of range"):
        io.load_mesh(tmp_path / "bad.obj")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not an image"):
        io.load_image(tmp_path / "bad.png")
    (tmp_path / "bad.json").write_text('{\n  "a": 1,\n  oops\n}\n')
    with pytest.raises(ValueError, match=r"bad.json:3:\d+: invalid JSON"):
        io.load_config(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="'a' is number 1, not an object"):
        io.apply_overrides({"a": 1}, ["a.b=2"])
    with pytest.raises(ValueError, match="expected shape"):
        io.save_image(tmp_path / "x.png", np.zeros((2, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="mesh.faces"):
        io.save_mesh(tmp_path / "x.ply", vertices=np.zeros((2, 3)), faces=np.array([[0, 1, 2]]))
    with pytest.raises(RuntimeError, match="does not exist"):
        io.save_config(tmp_path / "no" / "dir" / "c.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "bad.obj", "bad.ply", "bad.png"]


def test_names_are_exported():
    for name in ["Mesh", "load_mesh", "save_mesh", "load_image", "save_image", "load_config", "save_config",
                 "apply_overrides"]:
        assert name in io.__all__ and hasattr(pixel3dmm.io, name)
