// libFuzzer target: FLAME model files: a safetensors file's tensors through flame::FlameModel::from_tensors
// (every key's shape, dtype, index range and consistency with the others).
#include "fuzz_util.h"
#include "pixel3dmm/flame/flame_model.h"
#include "pixel3dmm/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_ok_or_error([&] {
    auto file = pixel3dmm::io::parse_safetensors(fuzz::view(data, size), "flame.safetensors");
    (void)pixel3dmm::flame::FlameModel::from_tensors(file.tensors, "flame.safetensors");
  });
  return 0;
}
