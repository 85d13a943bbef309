// Read and write rates of the tensor containers: a 100 MB safetensors file (25 float32 tensors of 1M values) and
// an .npz of the same arrays, stored and deflated. Random normal values: the worst case for deflate.
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "bench_util.h"
#include "pixel3dmm/io/npy.h"
#include "pixel3dmm/io/safetensors.h"

namespace {

// Times `fn` first, then reads the size of the file it wrote.
void row(const char* what, double megabytes, const std::string& file, int min_reps, const std::function<void()>& fn) {
  const double ms = pixel3dmm::bench::median_ms(fn, 1.0, min_reps);
  std::printf("%-32s %9.1f ms %8.0f MB/s %8.1f MB on disk\n", what, ms, megabytes / (ms / 1000.0),
              std::filesystem::file_size(file) / 1e6);
}

}  // namespace

int main() {
  using namespace pixel3dmm;
  bench::print_header("tensor files (safetensors, .npz)");
  const auto dir = std::filesystem::temp_directory_path() / ("pixel3dmm-bench-io-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  torch::manual_seed(0);
  io::TensorMap tensors;
  for (int i = 0; i < 25; ++i) tensors.emplace("t" + std::to_string(100 + i), torch::randn({1000, 1000}));
  const double mb = 25 * 1000 * 1000 * 4 / 1e6;
  std::printf("%.0f MB of float32 in %zu tensors; writes include the fsync of the atomic rename\n", mb, tensors.size());

  const std::string st = (dir / "a.safetensors").string();
  row("safetensors write", mb, st, 5, [&] { io::write_safetensors(st, tensors); });
  row("safetensors read", mb, st, 5, [&] { io::read_safetensors(st); });
  const std::string bytes = io::serialize_safetensors(tensors);
  row("safetensors parse (in memory)", mb, st, 5, [&] { io::parse_safetensors(bytes); });

  const std::string stored = (dir / "s.npz").string(), deflated = (dir / "d.npz").string();
  row("npz write, stored", mb, stored, 3, [&] { io::write_npz(stored, tensors, false); });
  row("npz read, stored", mb, stored, 3, [&] { io::read_npz(stored); });
  row("npz write, deflated", mb, deflated, 3, [&] { io::write_npz(deflated, tensors, true); });
  row("npz read, deflated", mb, deflated, 3, [&] { io::read_npz(deflated); });

  std::filesystem::remove_all(dir);
  return 0;
}
