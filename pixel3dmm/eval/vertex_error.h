#pragma once
/// Per-vertex geometry errors between two meshes of one topology (a fit and its synthetic ground truth), and the
/// vertex sets they are measured over. The measures of the demo, the fitting and tracking benchmarks and the tests.

#include <torch/types.h>

#include "pixel3dmm/flame/flame_model.h"

namespace pixel3dmm::eval {

/// Mean per-vertex Euclidean distance (metres) between two B x V x 3 vertex sets, over `vertices` (undefined = all).
double mean_vertex_error(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& vertices = {});

/// Mean per-vertex distance (metres) after the rigid motion (eval::umeyama without scale) that best aligns `a` onto
/// `b`, per batch item; a, b: B x V x 3, `vertices` (undefined = all) selects the vertices aligned and measured.
/// The measure for posed geometry: a single image fixes the head's depth only up to the focal length (a head 10%
/// farther away under a 10% longer lens looks nearly the same), so raw world-space errors mostly measure that
/// ambiguity, not the reconstruction. ValueError (from eval::umeyama) for non-finite or degenerate (collinear)
/// vertices.
double aligned_vertex_error(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& vertices = {});

/// The vertices geometry errors are measured over: all but the eyeballs. An eyeball spinning about its centre leaves
/// the surface unchanged yet moves its vertices, and only the pupil constrains that spin (the official fit does not
/// regularise it beyond a weak prior), so eyeball vertices would measure an invisible degree of freedom.
torch::Tensor non_eyeball_vertices(const flame::FlameModel& model);

/// The vertices a frontal-to-three-quarter photo shows: FLAME's masks face, forehead, eye_region, nose, lips,
/// left_ear and right_ear, eyeballs excluded. The region the paper's benchmark scores (it crops its scans to the
/// face); the scalp and neck (60% of the non-eyeball vertices) are never seen from the front, so a single image
/// constrains them only through the identity basis. Throws ValueError naming a missing mask.
torch::Tensor face_region_vertices(const flame::FlameModel& model);

}  // namespace pixel3dmm::eval
