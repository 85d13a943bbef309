#include "pixel3dmm/io/tensor_json.h"

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::io {

nlohmann::json tensor_to_json(const torch::Tensor& t) {
  PIXEL3DMM_CHECK(t.dim() == 1 || t.dim() == 2, "tensor_to_json: expected a 1-D or 2-D tensor, found ",
                  shape_string(t.sizes()));
  const auto d = t.detach().to(torch::kDouble).contiguous();
  const double* p = d.data_ptr<double>();
  if (d.dim() == 1) return nlohmann::json(std::vector<double>(p, p + d.size(0)));
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t i = 0; i < d.size(0); ++i) rows.push_back(std::vector<double>(p + i * d.size(1), p + (i + 1) * d.size(1)));
  return rows;
}

}  // namespace pixel3dmm::io
