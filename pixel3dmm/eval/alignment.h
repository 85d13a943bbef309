#pragma once
/// Aligning a reconstruction to the ground truth as the benchmark protocol prescribes: a similarity (or rigid)
/// transform from 7 landmarks in the NoW convention (Umeyama), refined by point-to-point ICP against the ground-truth
/// surface. The 7 landmarks are read off a FLAME-topology mesh through the model's static landmark embedding.

#include <torch/types.h>

#include <array>
#include <string>

#include "pixel3dmm/flame/flame_model.h"

namespace pixel3dmm::eval {

/// x -> scale * R x + t.
struct Similarity {
  torch::Tensor rotation;     ///< 3 x 3 float64, proper rotation
  torch::Tensor translation;  ///< 3 float64
  double scale = 1.0;

  static Similarity identity();
  /// points: N x 3 (any floating dtype) -> N x 3 of the same dtype.
  torch::Tensor apply(const torch::Tensor& points) const;
  /// Directions (normals): N x 3 -> R n.
  torch::Tensor rotate(const torch::Tensor& directions) const;
  /// (this after other)(x) = this(other(x)).
  Similarity compose(const Similarity& other) const;
  std::string repr() const;
};

/// The least-squares similarity (Umeyama 1991) mapping src onto dst: src, dst N x 3 (N >= 3, not collinear);
/// with_scale = false gives the rigid motion (Kabsch). Throws ValueError on shape mismatch or degenerate input.
Similarity umeyama(const torch::Tensor& src, const torch::Tensor& dst, bool with_scale = false);

/// The 7 NoW landmarks in iBUG-68 numbering: outer and inner corners of the image-left eye (36, 39), inner and
/// outer corners of the image-right eye (42, 45), nose tip (33), mouth corners (48, 54). DECA, MICA and the
/// NeRSemble benchmark read these off FLAME through the static embedding (its 51 points are iBUG 17-67).
inline constexpr std::array<int, 7> kNowLandmarksIbug = {36, 39, 42, 45, 33, 48, 54};

/// vertices: V x 3 of a mesh with the model's topology -> 7 x 3 (dtype of vertices): the NoW landmarks through the
/// model's static landmark embedding (barycentric points on its triangles). Throws ValueError when the model has no
/// 51-point static embedding or the vertex count differs.
torch::Tensor now_landmarks(const flame::FlameModel& model, const torch::Tensor& vertices);

struct IcpOptions {
  int iterations = 50;          ///< at most
  double max_distance = 0.02;   ///< pairs farther apart than this (metres) are ignored; <= 0: keep all
  double tolerance = 1e-9;      ///< stop when the mean squared pair distance changes by less than this (m^2)
  bool with_scale = false;      ///< also refine a scale (the NeRSemble protocol is rigid)
};

struct IcpResult {
  Similarity transform;  ///< maps the source onto the target (includes the initial transform)
  double rms = 0.0;      ///< root mean square pair distance of the last iteration, metres
  int iterations = 0;
  int64_t pairs = 0;     ///< pairs used in the last iteration
};

/// Point-to-point ICP: source N x 3 starting at `initial`, each iteration pairing every source point with its
/// nearest target point (k-d tree over target M x 3) and re-solving umeyama on the pairs within max_distance.
IcpResult icp(const torch::Tensor& source, const torch::Tensor& target, const Similarity& initial = Similarity::identity(),
              const IcpOptions& options = {});

}  // namespace pixel3dmm::eval
