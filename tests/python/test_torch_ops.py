"""torch.ops.pixel3dmm: the render and skinning ops as PyTorch operators (after `import pixel3dmm`), the same
results as the pixel3dmm.render functions and the skinning formulas, gradients through the op path, TorchScript, and
argument errors for a raster assembled from loose tensors."""
import pytest
import torch

import pixel3dmm  # noqa: F401  (loads libpixel3dmm, which registers the ops)
from pixel3dmm import render
from test_render import small_scene

ops = torch.ops.pixel3dmm


def test_ops_match_the_library_functions():
    pos, faces = small_scene(2)
    attr = torch.rand(1, 10, 3, dtype=torch.float64)
    r = render.rasterize(pos, faces, 13, 17)
    tri, bary, depth = ops.rasterize(pos, faces, 13, 17)
    assert tri.dtype == torch.int32 and tri.shape == (1, 13, 17)
    assert torch.equal(tri, r.triangle_id) and torch.equal(bary, r.bary) and torch.equal(depth, r.depth)
    assert (tri >= 0).sum() > 20  # the scene covers part of the image
    color = ops.interpolate(attr, pos, faces, tri, bary)
    assert torch.equal(color, render.interpolate(attr, r))
    assert torch.equal(ops.antialias(color, pos, faces, tri, bary, depth), render.antialias(color, r))
    topo = ops.edge_topology(faces, 10)
    assert torch.equal(topo, render.edge_topology(faces, 10))
    assert torch.equal(ops.antialias(color, pos, faces, tri, bary, depth, topo), render.antialias(color, r))


def test_gradcheck_through_the_ops():
    pos, faces = small_scene(1)
    pos = pos.requires_grad_(True)
    attr = torch.rand(1, 10, 2, dtype=torch.float64, requires_grad=True)

    def aa(p, a):
        tri, bary, depth = ops.rasterize(p, faces, 9, 11)
        return ops.antialias(ops.interpolate(a, p, faces, tri, bary), p, faces, tri, bary, depth)

    assert torch.autograd.gradcheck(aa, (pos, attr), eps=1e-6, atol=1e-6)
    coeffs = torch.rand(2, 4, dtype=torch.float64, requires_grad=True)
    basis = torch.rand(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c, b: ops.blend(c, b), (coeffs, basis))


def test_skinning_ops_match_the_library_functions():
    coeffs, basis, base = torch.rand(2, 4), torch.rand(4, 6), torch.rand(1, 6)
    assert torch.allclose(ops.blend(coeffs, basis, base), base + coeffs @ basis, atol=1e-6)
    assert torch.allclose(ops.blend(coeffs, basis), coeffs @ basis, atol=1e-6)
    verts = torch.rand(2, 5, 3)
    relative = torch.eye(4).repeat(2, 3, 1, 1)
    relative[:, 1, :3, 3] = torch.tensor([0.1, 0.2, 0.3])
    weights = torch.softmax(torch.rand(5, 3), dim=1)
    out = ops.skin(verts, relative, weights)
    assert torch.allclose(out, verts + weights[:, 1:2] * torch.tensor([0.1, 0.2, 0.3]), atol=1e-6)


@torch.jit.script
def scripted_silhouette(pos: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    tri, bary, depth = torch.ops.pixel3dmm.rasterize(pos, faces, 12, 12)
    ones = torch.ones(pos.size(0), pos.size(1), 1, dtype=pos.dtype)
    cover = torch.ops.pixel3dmm.interpolate(ones, pos, faces, tri, bary, None)
    return torch.ops.pixel3dmm.antialias(cover, pos, faces, tri, bary, depth, None)


def test_torchscript_calls_the_ops():
    assert "pixel3dmm::rasterize" in str(scripted_silhouette.graph)
    pos, faces = small_scene(3)
    pos = pos.requires_grad_(True)
    sil = scripted_silhouette(pos, faces)
    tri, bary, depth = ops.rasterize(pos, faces, 12, 12)
    expect = ops.antialias((tri >= 0).to(pos.dtype)[..., None], pos, faces, tri, bary, depth)
    assert torch.allclose(sil, expect)
    sil.sum().backward()
    assert pos.grad is not None and pos.grad.abs().sum() > 0  # silhouette edges move with the vertices


def test_a_loose_raster_is_checked():
    pos, faces = small_scene()
    tri, bary, depth = ops.rasterize(pos, faces, 8, 8)
    attr = torch.rand(1, 10, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"triangle_id: expected ids in \[-1, 7\)"):
        ops.interpolate(attr, pos, faces, tri + 7, bary)
    with pytest.raises(ValueError, match=r"triangle_id: expected dtype Int, found Long"):
        ops.interpolate(attr, pos, faces, tri.long(), bary)
    with pytest.raises(ValueError, match=r"bary: expected shape \[1, 8, 8, 2\], found \[1, 8, 7, 2\]"):
        ops.interpolate(attr, pos, faces, tri, bary[:, :, :7])
    with pytest.raises(ValueError, match=r"depth \(must match pos_clip\)"):
        ops.antialias(attr.new_ones(1, 8, 8, 1), pos, faces, tri, bary, depth.float())
    with pytest.raises(ValueError, match="pos_clip"):
        ops.rasterize(pos[..., :3], faces, 8, 8)
