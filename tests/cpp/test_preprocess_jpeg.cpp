// The official pipeline's JPEG files reproduced in memory: the round trip equals writing the file with OpenCV's
// imwrite (quality 95, the official crop file) and reading it back, and it really compresses.
#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/preprocess/jpeg_round_trip.h"
#include "test_util.h"

using namespace pixel3dmm;
using pixel3dmm::test::require_throws_with;

TEST_CASE("preprocess: jpeg_round_trip is OpenCV's quality-95 file written and read back", "[preprocess][jpeg]") {
  // A photo-like image: smooth gradients, a sharp edge and noise (JPEG changes all of them a little).
  const auto g = torch::Generator(at::detail::createCPUGenerator(7));
  const auto y = torch::arange(61, torch::kFloat).view({61, 1, 1}),
             x = torch::arange(83, torch::kFloat).view({1, 83, 1});
  auto img = torch::cat(
      {2.0f * x + y, (3.0f * y).expand({61, 83, 1}), ((x > 40).to(torch::kFloat) * 200.0f + 20.0f).expand({61, 83, 1})},
      2);
  img = (img + 12.0f * torch::rand({61, 83, 3}, g)).clamp(0, 255).to(torch::kUInt8).contiguous();

  const auto out = preprocess::jpeg_round_trip(img);
  REQUIRE(out.sizes() == img.sizes());
  REQUIRE(out.dtype() == torch::kUInt8);
  const auto diff = (out.to(torch::kInt) - img.to(torch::kInt)).abs();
  REQUIRE(diff.max().item<int>() > 0);  // it is lossy
  REQUIRE(diff.to(torch::kFloat).mean().item<float>() < 4.0f);

  const auto file = (std::filesystem::temp_directory_path() / "pixel3dmm-test-jpeg-round-trip.jpg").string();
  const cv::Mat mat(61, 83, CV_8UC3, img.data_ptr());
  REQUIRE(cv::imwrite(file, mat));  // OpenCV's default JPEG quality is 95, as the official crop file is written
  const cv::Mat back = cv::imread(file, cv::IMREAD_COLOR);
  std::filesystem::remove(file);
  const auto from_file = torch::from_blob(back.data, {61, 83, 3}, torch::kUInt8);
  REQUIRE(torch::equal(out, from_file));

  const auto q50 = preprocess::jpeg_round_trip(img, 50), q100 = preprocess::jpeg_round_trip(img, 100);
  const auto err = [&](const torch::Tensor& t) {
    return (t.to(torch::kFloat) - img.to(torch::kFloat)).abs().mean().item<float>();
  };
  REQUIRE(err(q100) < err(out));
  REQUIRE(err(out) < err(q50));
}

TEST_CASE("preprocess: jpeg_round_trip refuses what it cannot encode", "[preprocess][jpeg]") {
  require_throws_with<ValueError>(
      [] {
        preprocess::jpeg_round_trip(torch::zeros({4, 4, 3}));
      },
      {"jpeg_round_trip: image: expected dtype Byte, found Float"});
  require_throws_with<ValueError>(
      [] {
        preprocess::jpeg_round_trip(torch::zeros({4, 4}, torch::kUInt8));
      },
      {"jpeg_round_trip: image: expected shape [*, *, 3], found [4, 4]"});
  require_throws_with<ValueError>(
      [] {
        preprocess::jpeg_round_trip(torch::zeros({4, 4, 3}, torch::kUInt8), 0);
      },
      {"quality must lie in [1, 100], found 0"});
}
