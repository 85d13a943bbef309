// libFuzzer target: io::read_mesh on a Wavefront .obj (v/vt/vn/f records, negative indices, polygons).
#include "fuzz_util.h"
#include "pixel3dmm/io/mesh.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("in.obj", data, size);
  pixel3dmm::io::Mesh mesh;
  try {
    mesh = pixel3dmm::io::read_mesh(path);
  } catch (const pixel3dmm::Error&) {
    return 0;  // a clear error: fine
  }
  // What read_mesh returns must be a valid mesh: a throw here escapes, aborts, and is a finding.
  pixel3dmm::io::validate_mesh(mesh);
  return 0;
}
