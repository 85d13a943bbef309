#pragma once
/// Scoring one predicted mesh against its ground truth in the NeRSemble protocol: aligned from the 7 NoW landmarks
/// (rigid Umeyama) refined by ICP, over the face region, then compared with Chamfer distances, R2.5 and normal
/// consistency (metrics.h).

#include <torch/types.h>

#include "pixel3dmm/eval/alignment.h"
#include "pixel3dmm/eval/metrics.h"
#include "pixel3dmm/flame/flame_model.h"
#include "pixel3dmm/io/mesh.h"

namespace pixel3dmm::eval {

struct ScoreOptions {
  MetricOptions metrics;    ///< R2.5 threshold, samples per surface
  IcpOptions icp;           ///< ICP after the landmark alignment (iterations = 0: landmarks only)
  bool with_scale = false;  ///< similarity instead of rigid alignment (NeRSemble: rigid)
};

/// One geometry's score.
struct GeometryScore {
  SurfaceMetrics metrics;
  Similarity alignment;        ///< prediction -> truth
  torch::Tensor vertex_error;  ///< V_gt float32 metres: each truth vertex to the aligned prediction; NaN outside
                               ///< the region scored
};

/// Scores meshes against ground truth with one FLAME model's face region and landmark embedding.
class Scorer {
 public:
  explicit Scorer(flame::FlameModel model, ScoreOptions options = {});

  /// pred: a FLAME-topology mesh (the NoW landmarks are read off it); gt: a FLAME-topology mesh, or any mesh (already
  /// cropped to the face) with `gt_landmarks` (7 x 3, NoW order) given. Both are restricted to the face region
  /// (eval::face_region_vertices) when they have FLAME topology.
  GeometryScore score(const io::Mesh& pred, const io::Mesh& gt, const torch::Tensor& gt_landmarks = {}) const;

  const flame::FlameModel& model() const { return model_; }
  const ScoreOptions& options() const { return options_; }
  /// The faces of the scored region of a mesh with `n_vertices` vertices and faces `faces`.
  torch::Tensor region_faces(const torch::Tensor& faces, int64_t n_vertices) const;

 private:
  flame::FlameModel model_;
  ScoreOptions options_;
  torch::Tensor in_region_;  // V bool
};

}  // namespace pixel3dmm::eval
