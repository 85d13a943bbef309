#include "pixel3dmm/synth/synthetic_benchmark.h"

#include <torch/torch.h>

#include <cstdio>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/synth/synthetic_dataset.h"

namespace pixel3dmm::synth {

SyntheticBenchmarkCase synthetic_benchmark_case(const fit::Fitter& fitter, const SyntheticBenchmarkOptions& o,
                                                int64_t index) {
  PIXEL3DMM_CHECK_T(ValueError, index >= 0, "synthetic_benchmark_case: index must be >= 0, got ", index);
  PIXEL3DMM_CHECK_T(ValueError, o.distance_min > 0 && o.distance_min <= o.distance_max,
                    "synthetic_benchmark_case: expected 0 < distance_min <= distance_max");
  SyntheticBenchmarkCase c;
  char name[32];
  std::snprintf(name, sizeof name, "case_%03lld", static_cast<long long>(index));
  c.name = name;
  c.seed = o.seed * 100003 + static_cast<uint64_t>(index);
  RandomParamsOptions rp;
  rp.yaw_deg = o.yaw_deg, rp.pitch_deg = o.pitch_deg, rp.roll_deg = o.roll_deg, rp.jaw_deg = o.jaw_deg;
  rp.expr_std = o.expr_std, rp.shape_std = o.shape_std, rp.focal_min = o.focal_min, rp.focal_max = o.focal_max;
  c.truth = random_params(1, fitter.config().n_shape, fitter.config().n_expr, c.seed, rp);
  // Camera distance: the camera sits at world z = 1 and the head moves; scaling the focal with the distance
  // keeps the head's size in the picture while the perspective changes.
  auto g = at::make_generator<at::CPUGeneratorImpl>(c.seed ^ 0x9e3779b97f4a7c15ULL);
  c.camera_distance = o.distance_min + (o.distance_max - o.distance_min) * torch::rand({1}, g).item<double>();
  c.truth.translation.select(1, 2).fill_(c.truth.translation[0][2].item<double>() + 1.0 - c.camera_distance);
  c.truth.focal = c.truth.focal * c.camera_distance;
  SyntheticTargetOptions so = o.target;
  so.size = o.size;
  so.seed = c.seed;
  c.target = render_synthetic_target(fitter, c.truth, 0, so);
  // The case's image is a photo-like render of the same head (what a network sees), not the shaded map render.
  SyntheticPhotoOptions po;
  po.size = o.size;
  c.target.target.image = render_synthetic_photo(fitter, c.truth, c.seed, po).image.unsqueeze(0);
  return c;
}

}  // namespace pixel3dmm::synth
