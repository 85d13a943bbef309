#include "pixel3dmm/eval/vertex_error.h"

#include <torch/torch.h>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/eval/alignment.h"

namespace pixel3dmm::eval {

namespace {

void drop_eyeballs(const flame::FlameModel& model, torch::Tensor& keep) {
  for (const char* name : {"left_eyeball", "right_eyeball"}) {
    const auto it = model.masks.find(name);
    if (it != model.masks.end()) keep.index_fill_(0, it->second.to(torch::kLong), false);
  }
}

}  // namespace

double mean_vertex_error(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& vertices) {
  PIXEL3DMM_CHECK(a.sizes() == b.sizes(), "mean_vertex_error: shapes differ");
  auto d = (a - b).norm(2, -1);
  if (vertices.defined()) d = d.index_select(1, vertices);
  return d.mean().item<double>();
}

double aligned_vertex_error(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& vertices) {
  PIXEL3DMM_CHECK(a.sizes() == b.sizes() && a.dim() == 3 && a.size(2) == 3,
                  "aligned_vertex_error: expected two B x V x 3 tensors of the same shape");
  auto x = a.detach().to(torch::kDouble), y = b.detach().to(torch::kDouble);
  if (vertices.defined()) x = x.index_select(1, vertices), y = y.index_select(1, vertices);
  double sum = 0.0;  // every item has the same vertex count, so the mean of the item means is the overall mean
  for (int64_t i = 0; i < x.size(0); ++i) {
    const Similarity rigid = umeyama(x[i], y[i], /*with_scale=*/false);
    sum += (rigid.apply(x[i]) - y[i]).norm(2, -1).mean().item<double>();
  }
  return x.size(0) > 0 ? sum / static_cast<double>(x.size(0)) : 0.0;
}

torch::Tensor non_eyeball_vertices(const flame::FlameModel& model) {
  auto keep = torch::ones({model.n_vertices()}, torch::kBool);
  drop_eyeballs(model, keep);
  return keep.nonzero().squeeze(1);
}

torch::Tensor face_region_vertices(const flame::FlameModel& model) {
  auto keep = torch::zeros({model.n_vertices()}, torch::kBool);
  for (const char* name : {"face", "forehead", "eye_region", "nose", "lips", "left_ear", "right_ear"}) {
    const auto it = model.masks.find(name);
    PIXEL3DMM_CHECK_T(ValueError, it != model.masks.end(), model.source, ": the FLAME model has no vertex mask '",
                      name, "' (face_region_vertices)");
    keep.index_fill_(0, it->second.to(torch::kLong), true);
  }
  drop_eyeballs(model, keep);
  return keep.nonzero().squeeze(1);
}

}  // namespace pixel3dmm::eval
