// The ops registered with PyTorch's dispatcher are reachable from a C++ program that links the library (no Python),
// and give the library functions' results.
#include <ATen/core/dispatch/Dispatcher.h>

#include "pixel3dmm/render/interpolate.h"
#include "pixel3dmm/render/rasterize.h"
#include "test_util.h"

using namespace pixel3dmm;

TEST_CASE("torch ops: pixel3dmm::rasterize and interpolate through the dispatcher", "[render][torch_ops]") {
  auto& dispatcher = c10::Dispatcher::singleton();
  for (const char* name : {"pixel3dmm::rasterize", "pixel3dmm::interpolate", "pixel3dmm::antialias",
                           "pixel3dmm::edge_topology", "pixel3dmm::blend", "pixel3dmm::skin"}) {
    INFO(name);
    REQUIRE(dispatcher.findSchema({name, ""}).has_value());
  }
  const auto pos = torch::tensor({-0.8, -0.7, 0.1, 1.0, 0.9, -0.6, 0.2, 1.0, 0.1, 0.8, 0.3, 1.2}, torch::kFloat64)
                       .reshape({1, 3, 4});
  const auto faces = torch::tensor({0, 1, 2}, torch::kInt64).reshape({1, 3});
  const auto rasterize_op = dispatcher.findSchemaOrThrow("pixel3dmm::rasterize", "")
                                .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                                    const at::Tensor&, const at::Tensor&, int64_t, int64_t)>();
  const auto [tri, bary, depth] = rasterize_op.call(pos, faces, 9, 12);
  const auto r = render::rasterize(pos, faces, 9, 12);
  REQUIRE(tri.sizes() == r.triangle_id.sizes());
  REQUIRE(torch::equal(tri, r.triangle_id));
  REQUIRE(torch::equal(bary, r.bary));
  REQUIRE(torch::equal(depth, r.depth));
  REQUIRE((tri == 0).sum().item<int64_t>() > 10);

  const auto attr = torch::tensor({1.0, 2.0, 4.0}, torch::kFloat64).reshape({1, 3, 1});
  const auto interpolate_op =
      dispatcher.findSchemaOrThrow("pixel3dmm::interpolate", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                            const at::Tensor&, const c10::optional<at::Tensor>&)>();
  REQUIRE(torch::equal(interpolate_op.call(attr, pos, faces, tri, bary, c10::nullopt), render::interpolate(attr, r)));
}
