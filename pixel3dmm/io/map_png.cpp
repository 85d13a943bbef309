#include "pixel3dmm/io/map_png.h"

#include <torch/torch.h>

#include <string>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::io {

namespace {

/// [B x] C x H x W with C = channels (the channel axis is -3, so single maps and batches both pass).
void check_map(const torch::Tensor& t, int64_t channels, const char* what) {
  PIXEL3DMM_CHECK_T(ValueError, t.defined() && (t.dim() == 3 || t.dim() == 4) && t.size(-3) == channels, what,
                    ": expected [B x] ", channels, " x H x W, found ",
                    t.defined() ? shape_string(t.sizes()) : std::string("an undefined tensor"));
}

}  // namespace

torch::Tensor uv_png_image(const torch::Tensor& uv) {
  check_map(uv, 2, "uv_png_image: uv");
  return torch::cat({uv, torch::zeros_like(uv.narrow(-3, 0, 1))}, -3).clamp(0, 1);
}

torch::Tensor normals_png_image(const torch::Tensor& normals) {
  check_map(normals, 3, "normals_png_image: normals");
  return ((normals + 1) * 0.5).clamp(0, 1);
}

torch::Tensor uv_from_png_image(const torch::Tensor& image) {
  check_map(image, 3, "uv_from_png_image: image");
  return image.narrow(-3, 0, 2).contiguous();
}

torch::Tensor normals_from_png_image(const torch::Tensor& image) {
  check_map(image, 3, "normals_from_png_image: image");
  return (image * 2 - 1).contiguous();
}

}  // namespace pixel3dmm::io
