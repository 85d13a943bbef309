#include "pixel3dmm/core/shape.h"

#include "pixel3dmm/core/error.h"

namespace pixel3dmm {

std::string shape_string(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] < 0 ? std::string("*") : std::to_string(shape[i]);
  }
  return s + "]";
}

bool shape_matches(c10::IntArrayRef shape, c10::IntArrayRef expected) {
  if (shape.size() != expected.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i)
    if (expected[i] >= 0 && expected[i] != shape[i]) return false;
  return true;
}

void check_shape(const torch::Tensor& t, c10::IntArrayRef expected, const std::string& what) {
  PIXEL3DMM_CHECK(t.defined(), what, ": expected a tensor of shape ", shape_string(expected), ", found none");
  PIXEL3DMM_CHECK(shape_matches(t.sizes(), expected), what, ": expected shape ", shape_string(expected),
                  ", found ", shape_string(t.sizes()));
}

void check_dtype(const torch::Tensor& t, torch::ScalarType expected, const std::string& what) {
  PIXEL3DMM_CHECK(t.scalar_type() == expected, what, ": expected dtype ", c10::toString(expected), ", found ",
                  c10::toString(t.scalar_type()));
}

void check_finite(const torch::Tensor& t, const std::string& what) {
  if (!t.is_floating_point()) return;
  const int64_t bad = (~torch::isfinite(t)).sum().item<int64_t>();
  PIXEL3DMM_CHECK(bad == 0, what, ": contains ", bad, " non-finite (NaN or Inf) value", bad == 1 ? "" : "s");
}

}  // namespace pixel3dmm
