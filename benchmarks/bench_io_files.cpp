// Mesh and image file throughput: a FLAME-sized mesh (5023 vertices, 9976 faces, every attribute) and a 1M-vertex
// scan through each PLY/OBJ writer and reader, and 512 x 512 images through PNG (8/16-bit) and JPEG.
#include <cstdio>
#include <filesystem>

#include "bench_util.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/mesh.h"

namespace {

pixel3dmm::io::Mesh grid_mesh(int64_t side) {
  // A side x side vertex grid triangulated into 2 (side-1)^2 faces, with normals, colours and per-vertex UVs.
  using namespace torch::indexing;
  pixel3dmm::io::Mesh m;
  auto gen = torch::Generator(at::detail::createCPUGenerator(0));
  const auto u = torch::linspace(0, 1, side);
  const auto uv = torch::stack(torch::meshgrid({u, u}, "xy"), -1).reshape({-1, 2});
  m.vertices = torch::cat({uv, torch::rand({side * side, 1}, gen) * 0.01f}, 1);
  m.normals = torch::nn::functional::normalize(torch::randn({side * side, 3}, gen),
                                               torch::nn::functional::NormalizeFuncOptions().dim(1));
  m.colors = torch::rand({side * side, 3}, gen);
  m.uvs = uv.clone();
  const auto idx = torch::arange(side * side).reshape({side, side});
  const auto a = idx.index({Slice(0, -1), Slice(0, -1)}).reshape(-1), b = idx.index({Slice(0, -1), Slice(1)}).reshape(-1);
  const auto c = idx.index({Slice(1), Slice(0, -1)}).reshape(-1), d = idx.index({Slice(1), Slice(1)}).reshape(-1);
  m.faces = torch::cat({torch::stack({a, b, d}, 1), torch::stack({a, d, c}, 1)}, 0);
  return m;
}

}  // namespace

int main() {
  using namespace pixel3dmm;
  bench::print_header("I/O files: meshes (PLY/OBJ) and images");
  const auto dir = std::filesystem::temp_directory_path() / ("pixel3dmm-bench-io-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto file = [&](const char* name) { return (dir / name).string(); };

  std::printf("%-28s %10s %10s %12s\n", "mesh", "write ms", "read ms", "file MB");
  for (int64_t side : {71, 1000}) {  // 5041 and 1,000,000 vertices
    const io::Mesh m = grid_mesh(side);
    struct Case {
      const char* name;
      const char* file;
      std::function<void(const std::string&)> write;
    };
    const Case cases[] = {
        {"PLY binary", "m.ply", [&](const std::string& p) { io::write_ply(p, m, true); }},
        {"PLY ascii", "a.ply", [&](const std::string& p) { io::write_ply(p, m, false); }},
        {"OBJ", "m.obj", [&](const std::string& p) { io::write_obj(p, m); }},
    };
    for (const auto& c : cases) {
      const std::string p = file(c.file);
      const double budget = side > 100 ? 2.0 : 0.5;
      const double w = bench::median_ms([&] { c.write(p); }, budget, 3);
      const double r = bench::median_ms([&] { io::read_mesh(p); }, budget, 3);
      char label[64];
      std::snprintf(label, sizeof(label), "%s, %lld v", c.name, static_cast<long long>(side * side));
      std::printf("%-28s %10.2f %10.2f %12.2f\n", label, w, r, std::filesystem::file_size(p) / 1e6);
    }
  }

  std::printf("\n%-28s %10s %10s\n", "image 512 x 512 RGB", "write ms", "read ms");
  const auto img = torch::rand({1, 3, 512, 512}, torch::Generator(at::detail::createCPUGenerator(1)));
  const std::pair<const char*, int> images[] = {{"img8.png", 8}, {"img16.png", 16}, {"img.jpg", 8}};
  for (const auto& [name, depth] : images) {
    const std::string p = file(name);
    const double w = bench::median_ms([&] { io::write_image(p, img, depth); }, 0.5, 3);
    const double r = bench::median_ms([&] { io::read_image(p); }, 0.5, 3);
    std::printf("%-28s %10.2f %10.2f\n", name, w, r);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
