#pragma once
/// The CPU kernels of the render ops, one file per op (cpu/<op>_kernel.cpp), as torchvision lays out
/// csrc/ops/cpu: plain loops over contiguous CPU tensors of the dispatched dtype (float32 or float64), no argument
/// checks (the public functions in render/<op>.cpp check), no autograd (render/autograd/ wraps them). Shapes: B batch,
/// V vertices, F faces, H x W pixels, C channels.

#include <torch/types.h>

#include <array>
#include <utility>
#include <vector>

#include "pixel3dmm/render/rasterize.h"

namespace pixel3dmm::render::cpu {

/// pos: B x V x 4 clip positions; faces: F x 3 int64. Fills out.triangle_id, out.bary and out.depth (allocated,
/// out.height x out.width).
void rasterize(const torch::Tensor& pos, const torch::Tensor& faces, RasterOutput& out);

/// attr: Ba x V x C (Ba = 1 or B); tri_id: B x H x W int32; bary: B x H x W x 2; faces: F x 3 int64 -> B x H x W x C,
/// each pixel the barycentric blend of its triangle's corner attributes (0 where tri_id < 0).
torch::Tensor interpolate_forward(const torch::Tensor& attr, const torch::Tensor& tri_id, const torch::Tensor& bary,
                                  const torch::Tensor& faces);
/// grad: B x H x W x C -> (d/d attr: Ba x V x C, d/d pos: B x Vp x 4 through the barycentrics), each undefined unless
/// asked for. pos_faces index pos (the rasterised mesh), attr_faces index attr.
std::pair<torch::Tensor, torch::Tensor> interpolate_backward(const torch::Tensor& grad, const torch::Tensor& attr,
                                                             const torch::Tensor& pos, const torch::Tensor& tri_id,
                                                             const torch::Tensor& bary,
                                                             const torch::Tensor& attr_faces,
                                                             const torch::Tensor& pos_faces, bool need_attr,
                                                             bool need_pos);

/// color: B x H x W x C; pos: B x V x 4; faces: F x 3 int64; opposite: F x 3 int32 (edge_topology); tri_id, depth:
/// the raster's -> (the antialiased colours, the blends found as three tensors for antialias_backward).
std::pair<torch::Tensor, std::vector<torch::Tensor>> antialias_forward(const torch::Tensor& color,
                                                                       const torch::Tensor& pos,
                                                                       const torch::Tensor& faces,
                                                                       const torch::Tensor& opposite,
                                                                       const torch::Tensor& tri_id,
                                                                       const torch::Tensor& depth);
/// grad: B x H x W x C -> (d/d color, d/d pos: B x V x 4), each undefined unless asked for.
std::pair<torch::Tensor, torch::Tensor> antialias_backward(const torch::Tensor& grad, const torch::Tensor& color,
                                                           const torch::Tensor& pos, const torch::Tensor& faces,
                                                           const std::vector<torch::Tensor>& blends, bool need_color,
                                                           bool need_pos);

/// texture: C x Ht x Wt (coords' dtype); coords: B x H x W x 2; triangle_id: B x H x W int32 -> B x H x W x C (see
/// render/texture.h). deriv: B x H x W x C x 2 to fill with d(out)/d(coords), or undefined.
torch::Tensor texture_forward(const torch::Tensor& texture, const torch::Tensor& coords,
                              const torch::Tensor& triangle_id, std::array<double, 2> scale,
                              std::array<double, 2> offset, torch::Tensor& deriv);
/// grad: B x H x W x C, deriv from texture_forward -> d/d coords: B x H x W x 2 (times the scale already).
torch::Tensor texture_backward(const torch::Tensor& grad, const torch::Tensor& deriv);

/// v: B x V x 3; faces: F x 3 int64 -> B x V x 3, per vertex the sum of its faces' (v1 - v0) x (v2 - v0).
torch::Tensor face_crosses(const torch::Tensor& v, const torch::Tensor& faces);
/// gs: B x V x 3, the gradient with respect to face_crosses' output -> the gradient with respect to v.
torch::Tensor face_crosses_backward(const torch::Tensor& v, const torch::Tensor& faces, const torch::Tensor& gs);

}  // namespace pixel3dmm::render::cpu
