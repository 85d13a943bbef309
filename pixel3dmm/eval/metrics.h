#pragma once
/// Geometry metrics of the benchmark: Chamfer distances (L1 and L2, both directions), R2.5 (the share of ground-truth
/// points within 2.5 mm of the reconstruction, the NeRSemble benchmark's recall) and normal consistency. Inputs are
/// in metres (FLAME units); distances are reported in millimetres.

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace pixel3dmm::eval {

/// Points sampled on a triangle surface with their interpolated vertex normals.
struct SurfaceSamples {
  torch::Tensor points;   ///< N x 3 float32
  torch::Tensor normals;  ///< N x 3 float32 unit
};

/// vertices: V x 3, faces: F x 3 -> V x 3 float32 unit vertex normals (area-weighted face normals; counter-clockwise
/// faces point outwards). Isolated vertices get (0, 0, 0).
torch::Tensor vertex_normals(const torch::Tensor& vertices, const torch::Tensor& faces);

/// `n` points uniformly distributed over the surface's area (deterministic in `seed`), with normals interpolated
/// from vertex_normals. Throws ValueError for an empty or zero-area surface.
SurfaceSamples sample_surface(const torch::Tensor& vertices, const torch::Tensor& faces, int64_t n, uint64_t seed);

/// Reconstruction (pred) vs ground truth (gt). "accuracy" = pred -> gt (how far the reconstruction lies from the
/// truth), "completeness" = gt -> pred (how far the truth lies from the reconstruction).
struct SurfaceMetrics {
  double accuracy_l1 = 0, completeness_l1 = 0, chamfer_l1 = 0;  ///< mean distance, mm; chamfer = mean of both
  double accuracy_l2 = 0, completeness_l2 = 0, chamfer_l2 = 0;  ///< mean squared distance, mm^2
  double r25 = 0;          ///< share of gt points within `threshold` of pred, in [0, 1] (recall)
  double precision25 = 0;  ///< share of pred points within `threshold` of gt, in [0, 1]
  double normal_consistency = 0;  ///< mean |n_pred . n_gt| at closest points, both directions averaged, in [0, 1]
  int64_t n_pred = 0, n_gt = 0;   ///< points compared
  torch::Tensor gt_distances;     ///< n_gt float32, metres: each gt point to pred (for heat maps)
  torch::Tensor pred_distances;   ///< n_pred float32, metres
};

struct MetricOptions {
  double threshold = 0.0025;  ///< R2.5 threshold, metres
  int64_t samples = 20000;    ///< points sampled per surface by compare_surfaces
  uint64_t seed = 0;          ///< sampling seed
};

/// Point-set metrics (nearest point of the other set, k-d tree). pred: N x 3, gt: M x 3 metres; normals N x 3 /
/// M x 3 or undefined (normal consistency is then 0). Sampling two copies of one surface gives their spacing as
/// error: prefer compare_surfaces for meshes.
SurfaceMetrics chamfer(const torch::Tensor& pred, const torch::Tensor& gt, const torch::Tensor& pred_normals = {},
                       const torch::Tensor& gt_normals = {}, const MetricOptions& options = {});

/// Surface metrics: options.samples points sampled on each surface, each measured to the exact closest point of
/// the other surface (point-to-triangle), normals interpolated there. vertices V x 3 metres, faces F x 3 int64.
SurfaceMetrics compare_surfaces(const torch::Tensor& pred_vertices, const torch::Tensor& pred_faces,
                                const torch::Tensor& gt_vertices, const torch::Tensor& gt_faces,
                                const MetricOptions& options = {});

/// "SurfaceMetrics(chamfer_l1=1.23 mm, r25=91.2%, nc=0.981, ...)".
std::string repr(const SurfaceMetrics& m);

}  // namespace pixel3dmm::eval
