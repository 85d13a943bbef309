"""pixel3dmm.render from Python: shapes, autograd through the C++ ops (torch.autograd.gradcheck), the camera."""
import math

import pytest
import torch

import pixel3dmm
from pixel3dmm import render


def small_scene(seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = [[0.05, 0.0, 0.2, 1.0]]
    for k in range(6):
        a = k * math.pi / 3 + 0.3
        pts.append([0.7 * math.cos(a), 0.7 * math.sin(a), 0.2 + 0.05 * k, 1.0])
    pts += [[-0.9, -0.8, -0.3, 1.3], [0.2, -0.9, -0.3, 1.1], [-0.3, 0.1, -0.2, 0.9]]
    pos = torch.tensor(pts, dtype=torch.float64)[None]
    pos = pos + 0.03 * (torch.rand(pos.shape, generator=g, dtype=torch.float64) - 0.5) * torch.tensor(
        [1.0, 1.0, 0.2, 0.5], dtype=torch.float64)
    faces = [[0, 1 + k, 1 + (k + 1) % 6] for k in range(6)] + [[7, 8, 9]]
    return pos, torch.tensor(faces, dtype=torch.int64)


def test_exports():
    assert "render" in pixel3dmm.__all__
    for name in ["Camera", "rasterize", "interpolate", "antialias", "MeshRenderer"]:
        assert name in render.__all__


def test_gradcheck_interpolate_and_antialias():
    pos, faces = small_scene(1)
    attr = torch.rand(1, 10, 2, dtype=torch.float64, requires_grad=True)
    pos = pos.requires_grad_(True)

    def interp(p, a):
        return render.interpolate(a, render.rasterize(p, faces, 9, 11))

    def aa(p, a):
        r = render.rasterize(p, faces, 9, 11)
        return render.antialias(render.interpolate(a, r), r)

    assert torch.autograd.gradcheck(interp, (pos, attr), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradcheck(aa, (pos, attr), eps=1e-6, atol=1e-6)


def test_mesh_renderer_sphere_and_backward():
    mesh = render.uv_sphere(12, 24, 0.12)
    r = render.MeshRenderer(mesh.faces, mesh.uvs, mesh.uv_faces, mesh.vertices.shape[0])
    cam = render.Camera.official(48)
    verts = mesh.vertices[None].clone().requires_grad_(True)
    out = r.render(verts, cam)
    assert out.uv.shape == (1, 2, 48, 48)
    assert out.normals.shape == (1, 3, 48, 48)
    assert out.mask.shape == (1, 1, 48, 48)
    assert out.depth.shape == (1, 1, 48, 48)
    assert out.regions is None
    (out.uv.sum() + out.mask.sum() + out.depth.sum()).backward()
    assert verts.grad is not None and verts.grad.abs().sum() > 0
    vis = r.visibility(mesh.vertices[None], cam, out.depth)
    assert vis.dtype == torch.bool and vis[0, mesh.vertices[:, 2] > 0.08].all()
    assert "MeshRenderer(" in repr(r) and "Camera(" in repr(cam)


def test_camera_opencv_round_trip_and_projection_offset():
    cam = render.Camera.official(256)
    K, R, t = cam.to_opencv()
    assert K[0, 0, 2].item() == pytest.approx(128.0)
    back = render.Camera.from_opencv(K, R, t, 256, 256)
    assert torch.allclose(back.focal, torch.tensor([[3.90625, 3.90625]]))
    assert torch.allclose(back.principal_point, torch.zeros(1, 2), atol=1e-6)
    pts = torch.rand(1, 5, 3) * 0.2 - 0.1
    diff = cam.project(pts)[..., :2] - cam.project_raster(pts)
    assert torch.allclose(diff, torch.tensor([-0.5, 0.5]).expand(1, 5, 2), atol=1e-4)
    cam64 = cam.to(torch.float64)
    assert cam64.focal.dtype == torch.float64


def test_errors_are_value_errors():
    pos, faces = small_scene()
    with pytest.raises(ValueError, match="pos_clip"):
        render.rasterize(pos[..., :3], faces, 8, 8)
    r = render.rasterize(pos, faces, 8, 8)
    with pytest.raises(ValueError, match="attributes"):
        render.interpolate(torch.ones(10, 1), r)  # float32 vs the raster's float64
