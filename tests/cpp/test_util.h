#pragma once
// Helpers shared by the C++ tests: seeding, tensor comparison with the tolerance in the claim, temp folders.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "pixel3dmm/core/shape.h"

namespace pixel3dmm::test {

/// A fresh folder under the system temp dir, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("pixel3dmm-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

/// Largest absolute difference (as double) of two tensors of equal shape.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  if (a.numel() == 0) return 0.0;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

/// Asserts equal shapes and max |a - b| <= tol, printing both when it fails.
inline void require_close(const torch::Tensor& a, const torch::Tensor& b, double tol) {
  INFO("shapes " << shape_string(a.sizes()) << " vs " << shape_string(b.sizes()));
  REQUIRE(a.sizes() == b.sizes());
  const double d = max_abs_diff(a, b);
  INFO("max abs diff " << d << " > tolerance " << tol);
  REQUIRE(d <= tol);
}

/// Asserts that `fn` throws an exception of type E whose message contains every fragment.
template <typename E, typename Fn>
void require_throws_with(Fn&& fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments) {
      INFO("message: " << msg);
      INFO("missing fragment: " << f);
      REQUIRE(msg.find(f) != std::string::npos);
    }
    return;
  } catch (const std::exception& e) {
    FAIL("threw the wrong exception type: " << e.what());
  }
  FAIL("did not throw");
}

}  // namespace pixel3dmm::test
