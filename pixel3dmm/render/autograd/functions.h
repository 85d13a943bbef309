#pragma once
/// The autograd wrappers of the render ops, one file per op (autograd/<op>_autograd.cpp), as torchvision lays out
/// csrc/ops/autograd: each a torch::autograd::Function around the op's CPU kernels (render/cpu/kernels.h). They take
/// checked, contiguous inputs: call the public functions (render/<op>.h), which check and then call these.

#include <torch/torch.h>

#include <array>

namespace pixel3dmm::render::autograd {

/// Differentiable in attr and pos (see cpu::interpolate_forward for shapes).
torch::Tensor interpolate(const torch::Tensor& attr, const torch::Tensor& pos, const torch::Tensor& tri_id,
                          const torch::Tensor& bary, const torch::Tensor& attr_faces, const torch::Tensor& pos_faces);
/// Differentiable in color and pos_clip (see cpu::antialias_forward).
torch::Tensor antialias(const torch::Tensor& color, const torch::Tensor& pos_clip, const torch::Tensor& tri_id,
                        const torch::Tensor& depth, const torch::Tensor& faces, const torch::Tensor& opposite);
/// Differentiable in coords (see cpu::texture_forward; note the argument order: coords first).
torch::Tensor sample_texture(const torch::Tensor& coords, const torch::Tensor& texture,
                             const torch::Tensor& triangle_id, std::array<double, 2> scale,
                             std::array<double, 2> offset);
/// Differentiable in vertices: B x V x 3 -> unit vertex normals (area-weighted face normals summed).
torch::Tensor vertex_normals(const torch::Tensor& vertices, const torch::Tensor& faces);

}  // namespace pixel3dmm::render::autograd
