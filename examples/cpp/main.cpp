// Links the installed pixel3dmm library: writes tensors to a safetensors file, reads them back and compares.
#include <iostream>

#include <pixel3dmm/core/runtime.h>
#include <pixel3dmm/io/safetensors.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: pixel3dmm_example OUT.safetensors\n";
    return 2;
  }
  pixel3dmm::init_runtime();
  const pixel3dmm::RuntimeInfo info = pixel3dmm::runtime_info();
  std::cout << "pixel3dmm " << info.pixel3dmm_version << " with LibTorch " << info.torch_version << ", BLAS "
            << info.blas_kind << "\n";

  pixel3dmm::io::TensorMap tensors{{"vertices", torch::randn({5023, 3})},
                                   {"faces", torch::randint(0, 5023, {9976, 3}, torch::kLong)}};
  pixel3dmm::io::write_safetensors(argv[1], tensors, {{"source", "pixel3dmm example"}});
  const auto file = pixel3dmm::io::read_safetensors(argv[1]);
  const bool same = file.tensors.at("vertices").equal(tensors.at("vertices")) &&
                    file.tensors.at("faces").equal(tensors.at("faces")) &&
                    file.metadata.at("source") == "pixel3dmm example";
  std::cout << (same ? "round trip ok" : "round trip FAILED") << "\n";
  return same ? 0 : 1;
}
