#include "pixel3dmm/identity/alignment.h"

#include <opencv2/imgproc.hpp>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::identity {

torch::Tensor arcface_template() {
  static const float dst[5][2] = {
      {38.2946f, 51.6963f}, {73.5318f, 51.5014f}, {56.0252f, 71.7366f}, {41.5493f, 92.3655f}, {70.7299f, 92.2041f}};
  return torch::from_blob(const_cast<float*>(&dst[0][0]), {5, 2}, torch::kFloat32).clone();
}

torch::Tensor arcface_similarity(const torch::Tensor& keypoints) {
  PIXEL3DMM_CHECK(keypoints.dim() == 2 && keypoints.size(0) == 5 && keypoints.size(1) == 2,
                  "arcface keypoints: expected 5 x 2, found ", keypoints.sizes());
  PIXEL3DMM_CHECK(keypoints.is_floating_point(), "arcface keypoints: expected a floating-point tensor, found ",
                  keypoints.scalar_type());
  const auto src = keypoints.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  PIXEL3DMM_CHECK(torch::isfinite(src).all().item<bool>(), "arcface keypoints: non-finite values");
  const auto dst = arcface_template();
  // Means as numpy computes them for 5 rows: a sequential float32 sum, then / 5.
  auto mean = [](const torch::Tensor& p) {
    auto a = p.accessor<float, 2>();
    float sx = 0.f, sy = 0.f;
    for (int i = 0; i < 5; ++i) {
      sx += a[i][0];
      sy += a[i][1];
    }
    return std::array<float, 2>{sx / 5.f, sy / 5.f};
  };
  const auto sm = mean(src), dm = mean(dst);
  auto s = src.accessor<float, 2>(), d = dst.accessor<float, 2>();
  float sc[5][2], dc[5][2];
  for (int i = 0; i < 5; ++i)
    for (int k = 0; k < 2; ++k) {
      sc[i][k] = s[i][k] - sm[k];
      dc[i][k] = d[i][k] - dm[k];
    }
  // A = dst_cᵀ src_c / 5 (2 x 2, float32) through the same BLAS call as numpy's matmul (a hand-written loop
  // sums in another order and differs in the last bit).
  auto src_c = torch::from_blob(&sc[0][0], {5, 2}, torch::kFloat32);
  auto dst_c = torch::from_blob(&dc[0][0], {5, 2}, torch::kFloat32);
  const auto A = (dst_c.t().matmul(src_c) / 5).contiguous();
  auto a = A.accessor<float, 2>();
  // numpy's var of the centred source per axis, float32: it re-centres by the (tiny, non-zero) float32 mean.
  float var_sum = 0.f;
  for (int k = 0; k < 2; ++k) {
    float m = 0.f;
    for (int i = 0; i < 5; ++i) m += sc[i][k];
    m /= 5.f;
    float acc = 0.f;
    for (int i = 0; i < 5; ++i) acc += (sc[i][k] - m) * (sc[i][k] - m);
    var_sum += acc / 5.f;
  }
  PIXEL3DMM_CHECK(var_sum > 0.f, "arcface keypoints: all five points coincide");
  const float det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
  // scikit-image's d is float64: U diag(d) V and S . d are float64 products of the float32 SVD factors.
  const double sign = det < 0.f ? -1.0 : 1.0;
  // numpy's convention A = U diag(S) V; LibTorch's linalg_svd returns the same factors (float32, LAPACK gesdd).
  auto [U, S, Vh] = torch::linalg_svd(A, /*full_matrices=*/true);
  const auto Dd = torch::tensor({1.0, sign}, torch::kFloat64);
  const auto R = U.to(torch::kFloat64).matmul(torch::diag(Dd)).matmul(Vh.to(torch::kFloat64));
  const auto S64 = S.to(torch::kFloat64);
  const double s_dot_d = S64[0].item<double>() * 1.0 + S64[1].item<double>() * sign;
  // scale = 1.0 / (float32 variance sum) * (S . d): numpy 1.x makes the Python-float division float64.
  const double scale = (1.0 / static_cast<double>(var_sum)) * s_dot_d;
  auto src_mean = torch::tensor({static_cast<double>(sm[0]), static_cast<double>(sm[1])}, torch::kFloat64);
  auto dst_mean = torch::tensor({static_cast<double>(dm[0]), static_cast<double>(dm[1])}, torch::kFloat64);
  auto t = dst_mean - scale * R.matmul(src_mean);
  return torch::cat({R * scale, t.unsqueeze(1)}, 1);
}

torch::Tensor warp_arcface_crop(const torch::Tensor& image, const torch::Tensor& M, int64_t size) {
  PIXEL3DMM_CHECK(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == torch::kUInt8,
                  "arcface crop: expected an H x W x 3 uint8 image, found ", image.sizes(), " ", image.scalar_type());
  PIXEL3DMM_CHECK(M.dim() == 2 && M.size(0) == 2 && M.size(1) == 3, "arcface crop: expected a 2 x 3 matrix, found ",
                  M.sizes());
  PIXEL3DMM_CHECK(size > 0, "arcface crop: size must be positive, found ", size);
  const auto img = image.contiguous();
  const cv::Mat src(static_cast<int>(img.size(0)), static_cast<int>(img.size(1)), CV_8UC3, img.data_ptr<uint8_t>());
  const auto m = M.to(torch::kCPU, torch::kFloat64).contiguous();
  const cv::Mat mat(2, 3, CV_64F, m.data_ptr<double>());
  auto out = torch::empty({size, size, 3}, torch::kUInt8);
  cv::Mat dst(static_cast<int>(size), static_cast<int>(size), CV_8UC3, out.data_ptr<uint8_t>());
  cv::warpAffine(src, dst, mat, dst.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
  return out;
}

torch::Tensor arcface_blob(const torch::Tensor& crop_rgb) {
  PIXEL3DMM_CHECK(crop_rgb.dim() == 3 && crop_rgb.size(2) == 3 && crop_rgb.scalar_type() == torch::kUInt8,
                  "arcface blob: expected an H x W x 3 uint8 image, found ", crop_rgb.sizes(), " ",
                  crop_rgb.scalar_type());
  const float scale = static_cast<float>(1.0 / 127.5);
  return crop_rgb.permute({2, 0, 1}).to(torch::kFloat32).sub(127.5f).mul(scale).contiguous();
}

torch::Tensor arcface_input(const torch::Tensor& image_rgb, const torch::Tensor& keypoints) {
  return arcface_blob(warp_arcface_crop(image_rgb, arcface_similarity(keypoints)));
}

}  // namespace pixel3dmm::identity
