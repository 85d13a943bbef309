#include "pixel3dmm/fit/params.h"

#include <torch/torch.h>

#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::fit {
namespace {

torch::Tensor identity_6d(int64_t batch) {
  return torch::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 0.f}).repeat({batch, 1});
}

}  // namespace

FitParams FitParams::initial(int64_t batch, int64_t n_shape, int64_t n_expr, double focal_init,
                             const torch::Tensor& identity) {
  FitParams p;
  if (identity.defined()) check_shape(identity, {1, n_shape}, "FitParams::initial: identity");
  p.shape = identity.defined() ? identity.detach().to(torch::kFloat).clone() : torch::zeros({1, n_shape});
  p.expression = torch::zeros({batch, n_expr});
  p.jaw = identity_6d(batch);
  p.neck = identity_6d(batch);
  p.eyes = torch::cat({identity_6d(batch), identity_6d(batch)}, 1);
  p.eyelids = torch::zeros({batch, 2});
  p.rotation = identity_6d(batch);
  p.translation = torch::zeros({batch, 3});
  p.focal = torch::full({1, 1}, focal_init);
  p.principal_point = torch::zeros({1, 2});
  return p;
}

std::map<std::string, torch::Tensor> FitParams::named() const {
  return {{"shape", shape}, {"exp", expression}, {"jaw", jaw},           {"neck", neck},  {"eyes", eyes},
          {"eyelids", eyelids}, {"R", rotation}, {"t", translation}, {"fl", focal}, {"pp", principal_point}};
}

FitParams FitParams::clone() const {
  FitParams c;
  c.shape = shape.detach().clone();
  c.expression = expression.detach().clone();
  c.jaw = jaw.detach().clone();
  c.neck = neck.detach().clone();
  c.eyes = eyes.detach().clone();
  c.eyelids = eyelids.detach().clone();
  c.rotation = rotation.detach().clone();
  c.translation = translation.detach().clone();
  c.focal = focal.detach().clone();
  c.principal_point = principal_point.detach().clone();
  return c;
}

}  // namespace pixel3dmm::fit
