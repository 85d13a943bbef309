// libFuzzer target: io::read_mesh on a Wavefront .obj (v/vt/vn/f records, negative indices, polygons).
#include "fuzz_util.h"
#include "pixel3dmm/io/mesh.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("in.obj", data, size);
  fuzz::expect_ok_or_error([&] {
    pixel3dmm::io::Mesh mesh = pixel3dmm::io::read_mesh(path);
    pixel3dmm::io::validate_mesh(mesh);
  });
  return 0;
}
