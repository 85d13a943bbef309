// libFuzzer target: io::read_mesh on a .ply (ASCII and binary headers, element counts, list properties).
#include "fuzz_util.h"
#include "pixel3dmm/io/mesh.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("in.ply", data, size);
  fuzz::expect_ok_or_error([&] {
    pixel3dmm::io::Mesh mesh = pixel3dmm::io::read_mesh(path);
    pixel3dmm::io::validate_mesh(mesh);  // what read_mesh returns must be a valid mesh
  });
  return 0;
}
