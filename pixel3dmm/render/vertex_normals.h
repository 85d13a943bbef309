#pragma once
/// Area-weighted unit vertex normals, differentiable, as one fused CPU op.

#include <torch/torch.h>

namespace pixel3dmm::render {

/// vertices: B x V x 3 (float32 or float64), faces: F x 3 -> B x V x 3 unit vertex normals: per vertex the sum of
/// the cross products (v1 - v0) x (v2 - v0) of its faces (area-weighted face normals), divided by max(|n|, 1e-6),
/// as pytorch3d's Meshes.verts_normals. Sums are accumulated corner by corner in face order (the order of three
/// index_add calls), so the numbers are those of the plain tensor formulation. The backward pass is analytic
/// (once differentiable), parallel over the batch.
torch::Tensor vertex_normals(const torch::Tensor& vertices, const torch::Tensor& faces);

}  // namespace pixel3dmm::render
