// Writes the seed corpora of the fuzz targets with the project's own writers:
//   fuzz_make_seeds <dir>   ->  <dir>/<target>/<seed files>
// A seed is a small valid file of each format (and of each variant a writer has: ASCII/binary PLY, stored/deflated
// npz, several dtypes), so the fuzzers start from the accepted grammar and mutate away from it.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "pixel3dmm/fit/fit_config.h"
#include "pixel3dmm/synth/synthetic_flame.h"
#include "pixel3dmm/io/config.h"
#include "pixel3dmm/io/mesh.h"
#include "pixel3dmm/io/npy.h"
#include "pixel3dmm/io/safetensors.h"

namespace fs = std::filesystem;
using namespace pixel3dmm;

namespace {

void put(const fs::path& file, const std::string& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << bytes;
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

io::Mesh small_mesh(bool extras) {
  io::Mesh m;
  m.vertices = torch::tensor({0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 1.f, 1.f, 0.5f}).view({4, 3});
  m.faces = torch::tensor({0, 1, 2, 1, 3, 2}, torch::kLong).view({2, 3});
  if (extras) {
    m.normals = torch::tensor({0.f, 0.f, 1.f}).repeat({4, 1});
    m.colors = torch::rand({4, 3});
    m.uvs = torch::rand({4, 2});
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_seeds <dir>\n";
    return 2;
  }
  const fs::path dir = argv[1];
  torch::manual_seed(0);
  for (const char* t : {"fuzz_safetensors", "fuzz_npy", "fuzz_npz", "fuzz_ply", "fuzz_obj", "fuzz_config",
                        "fuzz_manifest", "fuzz_flame"})
    fs::create_directories(dir / t);

  // Tensors of every dtype both formats share.
  io::TensorMap tensors{{"f32", torch::rand({2, 3})},
                        {"f64", torch::rand({3}, torch::kDouble)},
                        {"f16", torch::rand({2, 2}).to(torch::kHalf)},
                        {"i64", torch::arange(4, torch::kLong)},
                        {"i32", torch::arange(6, torch::kInt).view({2, 3})},
                        {"u8", torch::arange(5, torch::kByte)},
                        {"b", torch::tensor({true, false})},
                        {"scalar", torch::tensor(1.5f)},
                        {"empty", torch::zeros({0, 3})}};
  put(dir / "fuzz_safetensors" / "all.safetensors", io::serialize_safetensors(tensors, {{"format", "pt"}}));
  put(dir / "fuzz_safetensors" / "bf16.safetensors",
      io::serialize_safetensors({{"x", torch::rand({4}).to(torch::kBFloat16)}}));
  put(dir / "fuzz_safetensors" / "empty.safetensors", io::serialize_safetensors({}));
  for (const auto& [name, t] : tensors) put(dir / "fuzz_npy" / (name + ".npy"), io::serialize_npy(t));
  put(dir / "fuzz_npy" / "fortran.npy", io::serialize_npy(torch::rand({3, 2}).t()));
  io::TensorMap few{{"a", torch::rand({2, 2})}, {"idx", torch::arange(3, torch::kInt)}};
  io::write_npz((dir / "fuzz_npz" / "deflated.npz").string(), few, true);
  io::write_npz((dir / "fuzz_npz" / "stored.npz").string(), few, false);

  io::write_ply((dir / "fuzz_ply" / "binary.ply").string(), small_mesh(true), true);
  io::write_ply((dir / "fuzz_ply" / "ascii.ply").string(), small_mesh(true), false);
  io::write_ply((dir / "fuzz_ply" / "plain.ply").string(), small_mesh(false), false);
  io::write_obj((dir / "fuzz_obj" / "uv.obj").string(), small_mesh(true));
  io::write_obj((dir / "fuzz_obj" / "plain.obj").string(), small_mesh(false));
  put(dir / "fuzz_obj" / "quad.obj", "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 1\nf 1/1 2/2 3/1 4/2\nf -1 -2 -3\n");

  fit::FitConfig fit_config;
  io::save_config((dir / "fuzz_config" / "fit.json").string(), fit_config);
  const fs::path source = PIXEL3DMM_SOURCE_DIR;
  for (const char* f : {"configs/fit-robust.json", "training/recipes/demo-uv.json"}) {
    put(dir / "fuzz_config" / fs::path(f).filename(), "//fit.iters=3\n" + slurp(source / f));
  }
  put(dir / "fuzz_config" / "comments.json", "/* c */ {\"a\": [1, 2.5, -3e2, true, null, \"s\\u00e9\"], // x\n \"b\": {}}");

  nlohmann::json K = {{500, 0, 128}, {0, 500, 128}, {0, 0, 1}};
  nlohmann::json R = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  std::string manifest =
      nlohmann::json{{"id", "s0"}, {"image", "rgb/s0.png"}, {"uv", "uv/s0.png"}, {"normals", "n/s0.npy"},
                     {"mask", "mask/s0.png"}}.dump() + "\n" +
      nlohmann::json{{"id", "s1"}, {"image", "rgb/s1.png"}, {"mesh", "meshes/s1.ply"},
                     {"camera", {{"K", K}, {"R", R}, {"t", {0, 0, 1}}, {"znear", 0.01}}}}.dump() + "\n";
  put(dir / "fuzz_manifest" / "two.jsonl", manifest);
  put(dir / "fuzz_manifest" / "escape.jsonl", "{\"id\": \"x\", \"image\": \"../a.png\", \"mask\": \"m.npy\"}\n");

  auto model = synth::synthetic_flame(synth::SyntheticFlameOptions().vertices(101).n_shape(3).n_expr(2));
  put(dir / "fuzz_flame" / "synthetic.safetensors", io::serialize_safetensors(model.to_tensors(torch::kFloat)));
  std::cout << "seeds written to " << dir << "\n";
  return 0;
}
