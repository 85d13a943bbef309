#pragma once
/// The differentiable render ops as PyTorch operators: `torch.ops.pixel3dmm.<name>` from Python once the library is
/// loaded (`import pixel3dmm`), callable from TorchScript, and `c10::Dispatcher` ops for C++ programs that want them.
/// Each op is a thin shell over the function of the same name in rasterize.h, interpolate.h and antialias.h (same
/// kernels, same autograd), with the raster passed as plain tensors, the way nvdiffrast's Python API passes it:
///
///   rasterize(Tensor pos_clip, Tensor faces, int height, int width) -> (Tensor triangle_id, Tensor bary,
///             Tensor depth)
///   interpolate(Tensor attr, Tensor pos_clip, Tensor faces, Tensor triangle_id, Tensor bary,
///               Tensor? attr_faces=None) -> Tensor
///   antialias(Tensor color, Tensor pos_clip, Tensor faces, Tensor triangle_id, Tensor bary, Tensor depth,
///             Tensor? topology=None) -> Tensor
///   edge_topology(Tensor faces, int num_vertices) -> Tensor
///
/// Shapes as in those headers: pos_clip B x V x 4, faces F x 3, triangle_id B x H x W int32, bary B x H x W x 2,
/// depth B x H x W. interpolate and antialias differentiate w.r.t. attr / color and pos_clip. The ops are
/// registered as CompositeImplicitAutograd kernels: autograd records the library's own backward functions.
/// The FLAME skinning ops (blend, skin) are registered by flame/torch_ops.h into the same namespace.

#include "pixel3dmm/render/rasterize.h"

namespace pixel3dmm::render {

/// The raster of `rasterize`'s op outputs, checked against each other and against pos_clip and faces: the op
/// arguments come from users, not from `rasterize`, so a wrong shape, dtype or triangle id must be an error, not an
/// out-of-bounds read. `what` names the op in messages.
RasterOutput raster_from_tensors(const torch::Tensor& pos_clip, const torch::Tensor& faces,
                                 const torch::Tensor& triangle_id, const torch::Tensor& bary,
                                 const torch::Tensor& depth, const std::string& what);

}  // namespace pixel3dmm::render
